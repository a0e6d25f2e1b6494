// The back office of the benchmark: plain node:http on loopback. Records when each submission (header
// X-Submission-Id, sent by the http adapter and by the reference) has been received completely, counts
// repeated receipts, can take a while to answer (a slower back office), and can stall (accept requests,
// answer none) to build a backlog in front of it.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';

export interface Sink {
  url: string;
  /** First complete receipt of each submission id, performance.now() ms. */
  readonly arrivals: Map<string, number>;
  /** Receipts beyond the first of a submission. */
  duplicates(): number;
  /** Requests received without a submission id (should stay 0). */
  anonymous(): number;
  /** Body bytes received in all. */
  bytes(): number;
  /** Stops answering: requests are held (the back office hangs) until `resume`. */
  stall(): void;
  /** Answers the held requests and every later one at once. */
  resume(): void;
  /** Forgets what was received (between scenarios). */
  reset(): void;
  close(): Promise<void>;
}

const ANSWER = JSON.stringify({ ok: true });

/** `delayMs`: how long the back office takes to answer each request (received, and recorded, at once). */
export async function startSink(delayMs = 0): Promise<Sink> {
  const arrivals = new Map<string, number>();
  let duplicates = 0;
  let anonymous = 0;
  let bytes = 0;
  let stalled = false;
  let held: ServerResponse[] = [];

  const answer = (res: ServerResponse) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(ANSWER) });
    res.end(ANSWER);
  };

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.method !== 'POST' && req.method !== 'PUT') {
      // OPTIONS from the adapter's readiness check, and anything else: fine, nothing recorded.
      req.resume();
      res.writeHead(204).end();
      return;
    }
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
    });
    req.on('end', () => {
      const at = performance.now();
      const id = req.headers['x-submission-id'];
      if (typeof id !== 'string') anonymous += 1;
      else if (arrivals.has(id)) duplicates += 1;
      else arrivals.set(id, at);
      if (stalled) held.push(res);
      else if (delayMs > 0) setTimeout(() => (stalled ? held.push(res) : answer(res)), delayMs);
      else answer(res);
    });
  });
  server.keepAliveTimeout = 60_000;
  // Held requests must not be cut off by the server's own timeouts.
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const resume = () => {
    stalled = false;
    const waiting = held;
    held = [];
    for (const res of waiting) answer(res);
  };
  return {
    url: `http://127.0.0.1:${port}`,
    arrivals,
    duplicates: () => duplicates,
    anonymous: () => anonymous,
    bytes: () => bytes,
    stall() {
      stalled = true;
    },
    resume,
    reset() {
      arrivals.clear();
      duplicates = 0;
      anonymous = 0;
      bytes = 0;
    },
    async close() {
      resume();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
