// W3C Trace Context (the propagation format of OpenTelemetry): a submission's trace id travels from the
// intake (taken from the sender's `traceparent`, or started here) through the queues to the adapters, which
// pass it on to the back office (e.g. the http adapter's `traceparent` header). Each step is a span of its
// own (a new parent id); logs carry `traceId`, so one search finds a submission's way through every system.
import { randomFillSync } from 'node:crypto';

export interface TraceContext {
  traceId: string;
  spanId: string;
  /** Trace flags, e.g. `01` for sampled. */
  flags: string;
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** Parses a `traceparent` header (version 00); an invalid one, or all-zero ids, gives undefined. */
export function parseTraceparent(header: string | undefined): TraceContext | undefined {
  const match = header ? TRACEPARENT.exec(header.trim().toLowerCase()) : null;
  if (!match || /^0+$/.test(match[1]!) || /^0+$/.test(match[2]!)) return undefined;
  return { traceId: match[1]!, spanId: match[2]!, flags: match[3]! };
}

export const formatTraceparent = (context: TraceContext): string => `00-${context.traceId}-${context.spanId}-${context.flags}`;

/**
 * Random ids from a pool refilled 4 KiB at a time: one call into the CSPRNG per ~340 spans instead of one or
 * two per span (as `randomUUID` pools its bytes; per call, `randomBytes` cost ≈ 1.5 % of the router's CPU).
 */
const pool = Buffer.alloc(4096);
let used = pool.length;

function randomHex(bytes: number): string {
  if (used + bytes > pool.length) {
    randomFillSync(pool);
    used = 0;
  }
  used += bytes;
  return pool.toString('hex', used - bytes, used);
}

/** A new span in the same trace (or a new trace when there is none). */
export function childSpan(parent: TraceContext | undefined): TraceContext {
  return { traceId: parent?.traceId ?? randomHex(16), spanId: randomHex(8), flags: parent?.flags ?? '01' };
}
