// The http adapter's HTTP client: one undici Agent per adapter instance (keep-alive connections of its own,
// so that close() ends exactly these), used for the deliveries, the OPTIONS check and the OAuth2 token
// requests alike, with the target's TLS options. undici rather than axios: on the hot path of every
// delivery it costs a fraction of axios's CPU per request. What axios did for us is done here:
//   - every status is returned (the adapter classifies it); redirects are never followed (undici follows
//     none without its redirect interceptor); no proxy from the environment (a plain Agent reads none)
//   - one timeout for the whole attempt, connect to the last byte of the answer
//   - answers read up to 1 MiB: a larger one is cut off (the connection dropped, `tooLarge`), never buffered
//     whole; its status still counts
//   - the answer parsed as JSON when it is JSON, else kept as text ('' when empty)
//   - header names merged case-insensitively (the last value wins); Accept as axios sent it, and a
//     User-Agent of our own (axios sent its own name; no Accept-Encoding, so answers come uncompressed)
// Errors are HttpClientError with one code: the errno or TLS code (also from under undici's wrappers);
// a timeout is named ECONNABORTED, as axios named it.
import type { Readable } from 'node:stream';
import type { ConnectionOptions } from 'node:tls';
import { Agent, buildConnector } from 'undici';

export interface HttpRequest {
  url: string;
  method: 'GET' | 'POST' | 'PUT' | 'OPTIONS';
  headers?: Record<string, string>;
  /** A Buffer or string is sent with its Content-Length; a stream as it comes (give its Content-Length). */
  body?: Buffer | string | Readable;
  /** This request's timeout instead of the client's. */
  timeoutMs?: number;
}

export interface HttpResponse {
  status: number;
  /** Lower-case names; a repeated header is an array. */
  headers: Record<string, string | string[] | undefined>;
  /** Parsed JSON, else the text; '' for an empty answer; undefined when the answer was too large. */
  data: unknown;
  /** The answer exceeded the limit: not read further (the connection is dropped), `data` undefined. */
  tooLarge?: boolean;
}

export interface HttpClient {
  request(request: HttpRequest): Promise<HttpResponse>;
  /** Ends this client's connections, also those of requests still running. */
  close(): Promise<void>;
}

export interface HttpClientOptions {
  /** For the whole attempt: connecting, sending, the answer to its last byte. */
  timeoutMs: number;
  /** TLS options of https connections (CA, client certificate, server name): tls.ts. */
  tls?: ConnectionOptions;
  /** Longest answer read; default 1 MiB. */
  maxResponseBytes?: number;
}

/** `timeout`: no answer in time; `failed`: anything else. */
export type HttpFailure = 'timeout' | 'failed';

/** A request that got no (usable) answer. `code` is an errno or TLS code (ECONNREFUSED, CERT_HAS_EXPIRED, …). */
export class HttpClientError extends Error {
  constructor(readonly code: string, readonly failure: HttpFailure, options?: { cause?: unknown }) {
    super(`HTTP request failed (${code})`, options);
    this.name = 'HttpClientError';
  }
}

const MiB = 1024 * 1024;
const DEFAULT_HEADERS: Record<string, string> = { Accept: 'application/json, text/plain, */*', 'User-Agent': 'antragsrouter' };
const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

const codeOf = (error: unknown): unknown => (error as { code?: unknown } | undefined)?.code;

/** The client's error for whatever undici or a socket threw. */
function failure(error: unknown): HttpClientError {
  if (error instanceof HttpClientError) return error;
  const code = codeOf(error);
  // Named as axios named a timeout, so that check and token details read as before.
  if (typeof code === 'string' && TIMEOUT_CODES.has(code)) return new HttpClientError('ECONNABORTED', 'timeout', { cause: error });
  // undici wraps socket errors (SocketError, UND_ERR_SOCKET) with the errno or TLS error as cause.
  const cause = codeOf((error as { cause?: unknown } | undefined)?.cause);
  if (typeof code === 'string' && !code.startsWith('UND_ERR_')) return new HttpClientError(code, 'failed', { cause: error });
  if (typeof cause === 'string') return new HttpClientError(cause, 'failed', { cause: error });
  // The other side closed the connection without an answer: Node's http calls it a hang-up, ECONNRESET.
  if (code === 'UND_ERR_SOCKET') return new HttpClientError('ECONNRESET', 'failed', { cause: error });
  return new HttpClientError(typeof code === 'string' ? code : 'error', 'failed', { cause: error });
}

/** Header names case-insensitively: the first spelling, the last value (as axios merged them). */
function mergedHeaders(headers: Record<string, string> | undefined): Record<string, string> {
  const merged: Record<string, string> = {};
  const spelling = new Map<string, string>();
  for (const source of [DEFAULT_HEADERS, headers ?? {}]) {
    for (const [name, value] of Object.entries(source)) {
      const lower = name.toLowerCase();
      const first = spelling.get(lower);
      if (first === undefined) spelling.set(lower, name);
      merged[first ?? name] = value;
    }
  }
  return merged;
}

function parsed(text: string): unknown {
  if (text === '') return '';
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/**
 * undici's connector, with one addition: when a connection that already failed (e.g. the server's TLS alert
 * `certificate required`, which TLS 1.3 delivers after the handshake) fails again with undici's own
 * SocketError ('other side closed'), the first error becomes its cause: undici keeps only the last one.
 */
function connector(options: buildConnector.BuildOptions): buildConnector.connector {
  const connect = buildConnector(options);
  return (target, callback) => connect(target, (...result) => {
    const [, socket] = result;
    let first: Error | undefined;
    socket?.on('error', (error: Error) => {
      if (!first) first = error;
      else if (error !== first && error.cause === undefined) error.cause = first;
    });
    callback(...result);
  });
}

/** The client with a keep-alive Agent of its own. */
export function createHttpClient(options: HttpClientOptions): HttpClient {
  const agent = new Agent({
    connect: connector({ ...options.tls, timeout: options.timeoutMs }),
    headersTimeout: options.timeoutMs,
    bodyTimeout: options.timeoutMs,
  });

  return {
    async request(request) {
      const timeoutMs = request.timeoutMs ?? options.timeoutMs;
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(new HttpClientError('ECONNABORTED', 'timeout')), timeoutMs);
      try {
        const { origin, pathname, search } = new URL(request.url);
        const response = await agent.request({
          origin,
          path: `${pathname}${search}`,
          method: request.method,
          headers: mergedHeaders(request.headers),
          body: request.body,
          signal: controller.signal,
        });
        // Read up to the limit ourselves (not undici's maxResponseSize, which fails the request): the status
        // of a too large answer still counts — a 2xx means the back office took the delivery.
        const limit = options.maxResponseBytes ?? MiB;
        const chunks: Buffer[] = [];
        let size = 0;
        for await (const chunk of response.body as AsyncIterable<Buffer>) {
          size += chunk.length;
          if (size > limit) {
            response.body.destroy();
            return { status: response.statusCode, headers: response.headers, data: undefined, tooLarge: true };
          }
          chunks.push(chunk);
        }
        // (TextDecoder drops a byte order mark, as undici's text() did.)
        return { status: response.statusCode, headers: response.headers, data: parsed(new TextDecoder().decode(Buffer.concat(chunks))) };
      } catch (error) {
        throw failure(controller.signal.aborted ? controller.signal.reason : error);
      } finally {
        clearTimeout(timer);
      }
    },
    async close() {
      await agent.destroy();
    },
  };
}
