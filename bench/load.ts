// The load generator: POSTs submissions over bounded undici connection pools, either open loop at a fixed
// rate (requests start on schedule whatever the answers do) or closed loop at a fixed concurrency (as fast
// as the service answers). Records per request its start, the 202 latency and the submission id.
import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import { Pool } from 'undici';

export interface Outgoing {
  body: string | Buffer | Readable;
  contentType: string;
}

export interface Sent {
  start: number;
  /** ms until the answer's body was read. */
  latency: number;
  status: number;
  submissionId?: string;
}

export interface LoadResult {
  sent: Sent[];
  /** performance.now() of the first request start and the last answer. */
  firstStart: number;
  lastAnswer: number;
}

export interface LoadOptions {
  /** Base URLs of the intake(s); requests go round robin. */
  targets: string[];
  count: number;
  make: (index: number) => Outgoing;
  /** Open loop: requests per second. Closed loop (max throughput) when absent. */
  rate?: number;
  /** Closed loop: requests outstanding at once. */
  concurrency?: number;
  /** Connections per target (bounded pool). */
  connections?: number;
  /** Stop starting requests after this long (ms; default 10 minutes); what was started is still awaited. */
  maxDurationMs?: number;
}

const PATH = '/api/v1/submissions';

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const pools = options.targets.map((url) => new Pool(url, { connections: options.connections ?? 64, pipelining: 1, keepAliveTimeout: 30_000 }));
  const sent: Sent[] = [];
  const firstStart = performance.now();
  let lastAnswer = firstStart;
  const deadline = firstStart + (options.maxDurationMs ?? 600_000);

  const one = async (index: number): Promise<void> => {
    const { body, contentType } = options.make(index);
    const pool = pools[index % pools.length]!;
    const start = performance.now();
    const record: Sent = { start, latency: 0, status: 0 };
    sent.push(record);
    try {
      const response = await pool.request({ path: PATH, method: 'POST', headers: { 'content-type': contentType }, body });
      const text = await response.body.text();
      record.status = response.statusCode;
      if (response.statusCode === 202) record.submissionId = (JSON.parse(text) as { submissionId?: string }).submissionId;
    } catch {
      record.status = -1;
    }
    const end = performance.now();
    record.latency = end - start;
    if (end > lastAnswer) lastAnswer = end;
  };

  const running = new Set<Promise<void>>();
  const track = (promise: Promise<void>) => {
    running.add(promise);
    void promise.finally(() => running.delete(promise));
  };

  if (options.rate) {
    const interval = 1000 / options.rate;
    let index = 0;
    while (index < options.count && performance.now() < deadline) {
      const due = firstStart + index * interval;
      const now = performance.now();
      if (due > now) {
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - now - 0.5)));
        continue;
      }
      // Every request that is due starts now, even if the service is behind (open loop).
      while (index < options.count && firstStart + index * interval <= performance.now()) track(one(index++));
    }
  } else {
    let index = 0;
    const worker = async () => {
      while (index < options.count && performance.now() < deadline) await one(index++);
    };
    await Promise.all(Array.from({ length: options.concurrency ?? 32 }, worker));
  }
  while (running.size) await Promise.all([...running]);
  await Promise.all(pools.map((pool) => pool.close()));
  return { sent, firstStart, lastAnswer };
}
