// Pure helpers of the benchmark: percentiles, rates and the one JSON line printed per scenario and mode.

/** The p-th percentile (0..100) of `values` by the nearest-rank method; undefined for no values. */
export function percentile(values: readonly number[], p: number): number | undefined {
  if (!values.length) return undefined;
  if (p < 0 || p > 100 || Number.isNaN(p)) throw new RangeError(`percentile must be within 0..100 (got ${p})`);
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1];
}

/** Rounds to `digits` decimals (undefined stays undefined, so absent figures stay absent in the line). */
export function round(value: number | undefined, digits = 1): number | undefined {
  if (value === undefined || !Number.isFinite(value)) return undefined;
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

/** Events per second over a span in milliseconds (undefined for an empty span). */
export function perSecond(count: number, spanMs: number): number | undefined {
  return spanMs > 0 && count > 0 ? (count * 1000) / spanMs : undefined;
}

export type Mode = 'embedded' | 'production' | 'reference';

/** What one scenario run measured; turned into its JSON line by `resultLine`. */
export interface Measurement {
  scenario: string;
  mode: Mode;
  instances: number;
  sent: number;
  accepted: number;
  /** Distinct submissions that reached the sink. */
  delivered: number;
  /** Receipts at the sink beyond the first of a submission. */
  duplicates: number;
  /** Accepted but never received by the sink before the scenario's deadline. */
  lost: number;
  /** Answers other than 202 (status → count). */
  refused: Record<string, number>;
  /** Latencies of the 202 answers, ms from request start. */
  intakeLatencies: number[];
  /** First request start to last 202, ms. */
  intakeSpanMs: number;
  /** Intake request start to the sink's receipt, ms (first receipt of each submission). */
  e2eLatencies: number[];
  /** First request start to the last receipt, ms. */
  e2eSpanMs: number;
  /** CPU seconds of the router process(es) (or the reference) while the scenario ran. */
  cpuSeconds: number;
  /** CPU seconds of the PostgreSQL and RabbitMQ servers meanwhile (other clients of theirs included). */
  servicesCpuSeconds?: { postgres: number; rabbitmq: number };
  /** Highest peak resident set (VmHWM) of the router process(es), MB. */
  peakRssMb: number;
  /** A measured process ended before the measurement did (how): its figures are incomplete. */
  exitedEarly?: string;
  /** Scenario-specific figures (offered rate, rate limit, drain rate, bytes …). */
  extra?: Record<string, unknown>;
}

export interface ResultLine extends Pick<Measurement, 'scenario' | 'mode' | 'instances' | 'sent' | 'accepted' | 'delivered' | 'duplicates' | 'lost' | 'cpuSeconds' | 'peakRssMb'> {
  refused?: Record<string, number>;
  intake: { perSec?: number; p50Ms?: number; p99Ms?: number };
  e2e: { perSec?: number; p50Ms?: number; p99Ms?: number };
  cpuMsPerSubmission?: number;
  /** PostgreSQL server CPU per delivered submission. */
  postgresCpuMsPerSubmission?: number;
  /** RabbitMQ server CPU per delivered submission. */
  rabbitmqCpuMsPerSubmission?: number;
  /** Router e2e throughput ÷ the thin reference's in the same run (router lines, where the reference ran). */
  ratio?: number;
  /** Router CPU per submission ÷ the reference's. */
  cpuRatio?: number;
  [extra: string]: unknown;
}

/** The JSON line of one measurement, with ratios against the reference's line of the same scenario. */
export function resultLine(m: Measurement, reference?: ResultLine): ResultLine {
  const perSubmission = (seconds: number | undefined) => (m.delivered && seconds !== undefined ? round((seconds * 1000) / m.delivered, 3) : undefined);
  const line: ResultLine = {
    scenario: m.scenario,
    mode: m.mode,
    instances: m.instances,
    sent: m.sent,
    accepted: m.accepted,
    delivered: m.delivered,
    duplicates: m.duplicates,
    lost: m.lost,
    ...(Object.keys(m.refused).length ? { refused: m.refused } : {}),
    intake: { perSec: round(perSecond(m.accepted, m.intakeSpanMs)), p50Ms: round(percentile(m.intakeLatencies, 50), 2), p99Ms: round(percentile(m.intakeLatencies, 99), 2) },
    e2e: { perSec: round(perSecond(m.delivered, m.e2eSpanMs)), p50Ms: round(percentile(m.e2eLatencies, 50), 2), p99Ms: round(percentile(m.e2eLatencies, 99), 2) },
    cpuSeconds: round(m.cpuSeconds, 2)!,
    cpuMsPerSubmission: perSubmission(m.cpuSeconds),
    postgresCpuMsPerSubmission: perSubmission(m.servicesCpuSeconds?.postgres),
    rabbitmqCpuMsPerSubmission: perSubmission(m.servicesCpuSeconds?.rabbitmq),
    peakRssMb: round(m.peakRssMb, 1)!,
    ...(m.exitedEarly ? { exitedEarly: m.exitedEarly } : {}),
    ...m.extra,
  };
  if (reference && m.mode !== 'reference') {
    if (line.e2e.perSec && reference.e2e.perSec) line.ratio = round(line.e2e.perSec / reference.e2e.perSec, 2);
    if (line.cpuMsPerSubmission && reference.cpuMsPerSubmission) line.cpuRatio = round(line.cpuMsPerSubmission / reference.cpuMsPerSubmission, 2);
  }
  return line;
}

/** A scenario that could not run here, and why. */
export function skippedLine(scenario: string, mode: Mode, reason: string): { scenario: string; mode: Mode; skipped: string } {
  return { scenario, mode, skipped: reason };
}
