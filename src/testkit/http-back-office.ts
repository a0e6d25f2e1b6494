// A real HTTP(S) back office on loopback for adapter tests, usable as a conformance counterpart.
// It records every request: headers, the payload (the raw body, or the multipart part named `payloadField`)
// and every other multipart part as an attachment whose size and SHA-256 are computed while streaming
// (a 20 MiB attachment is never held in memory). It answers according to its mode:
//   accept → 201 {"aktenzeichen": "AZ-<n>"} (with header X-Aktenzeichen); fail → 503; reject → 422;
//   down → the server stops listening (same port again on accept).
// `authorize` can refuse requests with 401 (to test credentials server-side).
import { createHash } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import busboy from 'busboy';
import { listenOnLoopback } from './listen';
import { createHold, pauseAtHold, type Hold } from './hold';
import type { ConformanceCounterpart, CounterpartMode, ReceivedAttachment, ReceivedDelivery } from './conformance';

export interface ReceivedRequest extends ReceivedDelivery {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  /** For TLS with client certificates: the subject CN of the certificate the client presented. */
  clientCertificateCN?: string;
}

export interface HttpBackOfficeOptions {
  /** Serve HTTPS with these options (key, cert, ca, requestCert, rejectUnauthorized ...). */
  tls?: https.ServerOptions;
  /** Multipart part carrying the payload; default `payload`. */
  payloadField?: string;
  /** Header the back office recognises repeats by; default `idempotency-key`. */
  idempotencyHeader?: string;
  /** Return false to answer 401 (checked before the body is read). */
  authorize?: (request: http.IncomingMessage) => boolean;
  /** Credential values that must never appear in logs (passed on to the conformance suite). */
  secrets?: readonly string[];
}

export class HttpBackOffice implements ConformanceCounterpart {
  readonly requests: ReceivedRequest[] = [];
  mode: CounterpartMode = 'accept';
  /** Requests refused with 401 by `authorize`. */
  unauthorized = 0;
  readonly secrets: readonly string[];
  private hold?: Hold;
  private server?: http.Server;
  private port = 0;
  private fileNumber = 0;

  constructor(private readonly options: HttpBackOfficeOptions = {}) {
    this.secrets = options.secrets ?? [];
  }

  /** Base URL (`http://127.0.0.1:<port>` or `https://...`), valid after start(). */
  get url(): string {
    return `${this.options.tls ? 'https' : 'http'}://127.0.0.1:${this.port}`;
  }

  /** Listens (again: on the same port after a stop, with a fresh server). */
  async start(): Promise<void> {
    const handler = (request: http.IncomingMessage, response: http.ServerResponse) => this.handle(request, response);
    const server = this.options.tls ? https.createServer(this.options.tls, handler) : http.createServer(handler);
    this.port = await listenOnLoopback(server, this.port);
    this.server = server;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  async behave(mode: CounterpartMode): Promise<void> {
    if (mode === 'down') await this.stop();
    else if (!this.server) await this.start();
    this.mode = mode;
  }

  /** Stops reading the next request body after `bytes` until release() (see ConformanceCounterpart.holdAfter). */
  async holdAfter(bytes: number): Promise<{ reached: Promise<void>; release: () => void }> {
    const { hold, handle } = createHold(bytes, (released) => {
      if (this.hold === released) this.hold = undefined;
    });
    this.hold = hold;
    return handle;
  }

  /** Feeds the request body to `onChunk`, pausing at the hold limit if one is set. */
  private feed(request: http.IncomingMessage, onChunk: (chunk: Buffer) => void): void {
    request.on('data', onChunk);
    pauseAtHold(this.hold, request);
  }

  async received(): Promise<ReceivedDelivery[]> {
    return this.requests.filter((r) => r.method !== 'OPTIONS');
  }

  async reset(): Promise<void> {
    this.requests.length = 0;
    this.unauthorized = 0;
    await this.behave('accept');
  }

  private handle(request: http.IncomingMessage, response: http.ServerResponse): void {
    if (request.method === 'OPTIONS') {
      this.requests.push({ ...this.meta(request), payload: Buffer.alloc(0), attachments: [] });
      response.writeHead(this.mode === 'accept' ? 204 : 503).end();
      return;
    }
    if (this.options.authorize && !this.options.authorize(request)) {
      this.unauthorized += 1;
      request.resume();
      response.writeHead(401, { 'WWW-Authenticate': 'Bearer' }).end();
      return;
    }
    this.readBody(request).then(
      ({ payload, attachments }) => {
        this.requests.push({ ...this.meta(request), payload, attachments });
        this.answer(response);
      },
      () => response.writeHead(400).end(),
    );
  }

  private meta(request: http.IncomingMessage) {
    const header = request.headers[this.options.idempotencyHeader ?? 'idempotency-key'];
    const socket = request.socket as { getPeerCertificate?: () => { subject?: { CN?: string } } };
    const cn = socket.getPeerCertificate?.()?.subject?.CN;
    return { method: request.method!, url: request.url!, headers: request.headers, key: typeof header === 'string' ? header : undefined, clientCertificateCN: cn };
  }

  private answer(response: http.ServerResponse): void {
    if (this.mode === 'fail') response.writeHead(503, { 'Retry-After': '1' }).end();
    else if (this.mode === 'reject') response.writeHead(422, { 'Content-Type': 'application/json' }).end('{"fehler":"unvollständig"}');
    else {
      this.fileNumber += 1;
      const aktenzeichen = `AZ-${this.fileNumber}`;
      response.writeHead(201, { 'Content-Type': 'application/json', 'X-Aktenzeichen': aktenzeichen }).end(JSON.stringify({ aktenzeichen, vorgang: { aktenzeichen } }));
    }
  }

  private readBody(request: http.IncomingMessage): Promise<{ payload: Buffer; attachments: ReceivedAttachment[] }> {
    if (!/^multipart\/form-data/i.test(request.headers['content-type'] ?? '')) {
      return new Promise((resolve, reject) => {
        const chunks: Buffer[] = [];
        this.feed(request, (chunk) => chunks.push(chunk));
        request.on('end', () => resolve({ payload: Buffer.concat(chunks), attachments: [] }));
        request.on('error', reject);
      });
    }
    return new Promise((resolve, reject) => {
      const parser = busboy({ headers: request.headers, limits: { fileSize: Infinity } });
      const payloadField = this.options.payloadField ?? 'payload';
      const parts: Promise<void>[] = [];
      let payload = Buffer.alloc(0);
      const attachments: ReceivedAttachment[] = [];
      parser.on('file', (field, stream, info) => {
        parts.push(new Promise((done, fail) => {
          const hash = createHash('sha256');
          const chunks: Buffer[] = [];
          let size = 0;
          stream.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (field === payloadField) chunks.push(chunk);
            else hash.update(chunk);
          });
          stream.on('error', fail);
          stream.on('end', () => {
            if (field === payloadField) payload = Buffer.concat(chunks);
            else attachments.push({ name: info.filename ?? '', size, sha256: hash.digest('hex') });
            done();
          });
        }));
      });
      parser.on('field', (field, value) => {
        if (field === payloadField) payload = Buffer.from(value, 'utf8');
      });
      parser.on('error', reject);
      parser.on('close', () => Promise.all(parts).then(() => resolve({ payload, attachments }), reject));
      this.feed(request, (chunk) => parser.write(chunk));
      request.on('end', () => parser.end());
      request.on('error', reject);
    });
  }
}
