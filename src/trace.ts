// W3C Trace Context (the propagation format of OpenTelemetry): a submission's trace id travels from the
// intake (taken from the sender's `traceparent`, or started here) through the queues to the adapters, which
// pass it on to the back office (e.g. the http adapter's `traceparent` header). Each step is a span of its
// own (a new parent id); logs carry `traceId`, so one search finds a submission's way through every system.
import { randomBytes } from 'node:crypto';

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

/** A new span in the same trace (or a new trace when there is none). */
export function childSpan(parent: TraceContext | undefined): TraceContext {
  return { traceId: parent?.traceId ?? randomBytes(16).toString('hex'), spanId: randomBytes(8).toString('hex'), flags: parent?.flags ?? '01' };
}
