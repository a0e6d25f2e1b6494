// The scenarios: each starts its deployment, drives load at it, waits for the sink to receive what was
// accepted (bounded in time), measures and stops. One Measurement (or a skip reason) per scenario and mode.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { Pool } from 'undici';
import { REPO, startReference, startRouters, type Deployment, type Services, type TargetOptions } from './deployments';
import { runLoad, type LoadOptions, type LoadResult, type Outgoing } from './load';
import { servicesCpu, servicesCpuBetween, type Service } from './proc';
import type { Sink } from './sink';
import type { Measurement, Mode } from './stats';

export interface Settings {
  scale: number;
  services: Services;
  mapping: string;
  logLevel: string;
  /** Backlog scenario: the target's rate limit (submissions/s). */
  drainRate: number;
  /** The target's `concurrency` (deliveries at once per instance); default: the http adapter's (8). */
  targetConcurrency?: number;
  /** Submissions sent before each measurement (JIT and pools warm), not counted. */
  warmup: number;
  cpuProfDir?: string;
}

export type Outcome = { measurement: Measurement } | { skipped: string };

export interface Scenario {
  name: string;
  modes: Mode[];
  /** The scenario whose reference line this one's ratio is taken against (default: its own). */
  compareWith?: string;
  run(mode: Mode, sink: Sink, settings: Settings): Promise<Outcome>;
}

const FIXTURE = readFileSync(path.join(REPO, 'test/fixtures/valid/xbau-0200-antrag-muenchen.xml'), 'utf8');
const UUID = /<nachrichtenUUID>[^<]+<\/nachrichtenUUID>/;

/** The München 0200 application (~13 KB) with a fresh nachrichtenUUID each time. */
export function smallApplication(): () => string {
  const match = UUID.exec(FIXTURE)!;
  const head = FIXTURE.slice(0, match.index);
  const tail = FIXTURE.slice(match.index + match[0].length);
  return () => `${head}<nachrichtenUUID>${randomUUID()}</nachrichtenUUID>${tail}`;
}

const xml = smallApplication();
const small = (): Outgoing => ({ body: xml(), contentType: 'application/xml' });

const BOUNDARY = 'antragsrouter-bench-boundary';
const MULTIPART = `multipart/form-data; boundary=${BOUNDARY}`;

/** multipart/form-data: the XML as part `application`, one attachment of `bytes`, generated as it is sent. */
export function withAttachment(bytes: number): () => Outgoing {
  const chunk = Buffer.alloc(64 * 1024, 'antragsrouter attachment bytes ');
  return () => {
    const head = Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="application"; filename="antrag.xml"\r\nContent-Type: application/xml\r\n\r\n${xml()}\r\n`
      + `--${BOUNDARY}\r\nContent-Disposition: form-data; name="anlage"; filename="lageplan.pdf"\r\nContent-Type: application/pdf\r\n\r\n`);
    const tail = Buffer.from(`\r\n--${BOUNDARY}--\r\n`);
    async function* parts() {
      yield head;
      for (let left = bytes; left > 0; left -= chunk.length) yield left >= chunk.length ? chunk : chunk.subarray(0, left);
      yield tail;
    }
    return { body: Readable.from(parts(), { objectMode: false }), contentType: MULTIPART };
  };
}

/**
 * Whether the intake takes multipart bodies: a multipart body without an `application` part is refused as
 * malformed (400) by an intake that reads multipart, and as an unsupported media type (415) by one that does not.
 */
async function multipartRefused(url: string): Promise<string | undefined> {
  const pool = new Pool(url, { connections: 1 });
  try {
    const body = `--${BOUNDARY}\r\nContent-Disposition: form-data; name="probe"\r\n\r\nprobe\r\n--${BOUNDARY}--\r\n`;
    const response = await pool.request({ path: '/api/v1/submissions', method: 'POST', headers: { 'content-type': MULTIPART }, body });
    const text = await response.body.text();
    if (response.statusCode !== 415) return undefined;
    const code = (JSON.parse(text) as { code?: string }).code ?? 'unknown';
    return `the router refuses multipart at intake (415 ${code}): attachment support at intake is not merged yet`;
  } finally {
    await pool.close();
  }
}

/** Waits until the sink holds `expected` submissions, nothing new arrived for `quietMs`, or `deadline`. */
async function settle(sink: Sink, expected: number, deadline: number, quietMs = 20_000): Promise<void> {
  let seen = -1;
  let changed = performance.now();
  while (sink.arrivals.size < expected && performance.now() < deadline) {
    if (sink.arrivals.size !== seen) {
      seen = sink.arrivals.size;
      changed = performance.now();
    } else if (performance.now() - changed > quietMs) {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** CPU seconds of the deployment and of the PostgreSQL/RabbitMQ servers from now on. */
function cpuMeter(deployment: Deployment): () => { own: number; services: Record<Service, number> } {
  const own = deployment.cpuSeconds();
  const services = servicesCpu();
  return () => ({ own: deployment.cpuSeconds() - own, services: servicesCpuBetween(services, servicesCpu()) });
}

/** Joins what was sent with what the sink received. `from`: e2e figures start there (default: each request's start). */
function measure(scenario: string, deployment: Deployment, load: LoadResult, sink: Sink, cpu: { own: number; services: Record<Service, number> }, from?: number): Measurement {
  const refused: Record<string, number> = {};
  const intakeLatencies: number[] = [];
  const e2eLatencies: number[] = [];
  let accepted = 0;
  let delivered = 0;
  let lastAccepted = load.firstStart;
  let lastArrival = load.firstStart;
  for (const sent of load.sent) {
    if (sent.status !== 202 || !sent.submissionId) {
      refused[String(sent.status)] = (refused[String(sent.status)] ?? 0) + 1;
      continue;
    }
    accepted += 1;
    intakeLatencies.push(sent.latency);
    lastAccepted = Math.max(lastAccepted, sent.start + sent.latency);
    const arrival = sink.arrivals.get(sent.submissionId);
    if (arrival === undefined) continue;
    delivered += 1;
    lastArrival = Math.max(lastArrival, arrival);
    if (from === undefined) e2eLatencies.push(arrival - sent.start);
  }
  return {
    scenario,
    mode: deployment.mode,
    instances: deployment.urls.length,
    sent: load.sent.length,
    accepted,
    delivered,
    duplicates: sink.duplicates(),
    lost: accepted - delivered,
    refused,
    intakeLatencies,
    intakeSpanMs: lastAccepted - load.firstStart,
    e2eLatencies,
    e2eSpanMs: lastArrival - (from ?? load.firstStart),
    cpuSeconds: cpu.own,
    servicesCpuSeconds: cpu.services,
    peakRssMb: deployment.peakRssMb(),
    ...(deployment.exitedEarly() ? { exitedEarly: deployment.exitedEarly() } : {}),
  };
}

/** Starts the deployment and warms it up (JIT, connection pools) with `settings.warmup` submissions, not counted. */
async function deploy(mode: Mode, sink: Sink, settings: Settings, target: TargetOptions = {}, instances = 1): Promise<Deployment> {
  const deployment = mode === 'reference'
    ? await startReference({ sinkUrl: sink.url, services: settings.services })
    : await startRouters({ mode, instances, sinkUrl: sink.url, services: settings.services, target: { concurrency: settings.targetConcurrency, ...target }, mapping: settings.mapping, logLevel: settings.logLevel, cpuProfDir: settings.cpuProfDir });
  try {
    if (settings.warmup) {
      const load = await runLoad({ targets: deployment.urls, count: settings.warmup, make: small, concurrency: 8 });
      await settle(sink, load.sent.filter((s) => s.status === 202).length, performance.now() + 60_000);
    }
  } catch (error) {
    await deployment.stop();
    throw error;
  }
  sink.reset();
  return deployment;
}

const scaled = (full: number, scale: number, min: number) => Math.max(min, Math.round(full * scale));

/** A load profile against a fresh deployment: send, wait for the sink, measure. */
function loadScenario(name: string, modes: Mode[], profile: (scale: number) => Omit<LoadOptions, 'targets'>, instances = 1, compareWith?: string): Scenario {
  return {
    name,
    modes,
    compareWith,
    async run(mode, sink, settings) {
      const options = profile(settings.scale);
      const deployment = await deploy(mode, sink, settings, {}, instances);
      try {
        const cpu = cpuMeter(deployment);
        const load = await runLoad({ ...options, targets: deployment.urls });
        const accepted = load.sent.filter((s) => s.status === 202).length;
        await settle(sink, accepted, performance.now() + 60_000 + accepted * 20);
        const measurement = measure(name, deployment, load, sink, cpu());
        measurement.extra = { ...measurement.extra, ...(options.rate ? { offeredPerSec: options.rate } : { concurrency: options.concurrency ?? 32 }) };
        return { measurement };
      } finally {
        await deployment.stop();
      }
    },
  };
}

/** Backlog: the sink stalls while N are accepted, then answers; the drain runs at the target's rate limit. */
const backlog: Scenario = {
  name: 'backlog',
  modes: ['embedded', 'production'],
  async run(mode, sink, settings) {
    const count = scaled(100_000, settings.scale, 200);
    const rate = settings.drainRate;
    const deployment = await deploy(mode, sink, settings, { rateLimitPerSecond: rate, timeoutMs: 600_000 });
    try {
      sink.stall();
      const cpu = cpuMeter(deployment);
      const load = await runLoad({ targets: deployment.urls, count, make: small, concurrency: 16 });
      const fillMs = load.lastAnswer - load.firstStart;
      // Let what the router took up before the stall settle at the sink, then bring the back office up.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const heldAtStall = sink.arrivals.size;
      const up = performance.now();
      sink.resume();
      const accepted = load.sent.filter((s) => s.status === 202).length;
      await settle(sink, accepted, up + 60_000 + (accepted / rate) * 2000);
      const measurement = measure('backlog', deployment, load, sink, cpu(), up);
      const drained = measurement.delivered - heldAtStall;
      const drainMs = measurement.e2eSpanMs;
      measurement.extra = {
        ...measurement.extra,
        backlog: accepted,
        fillPerSec: Math.round((accepted * 1000) / fillMs),
        rateLimitPerSec: rate,
        drainPerSec: drainMs > 0 ? Math.round((drained * 10_000) / drainMs) / 10 : undefined,
        drainSeconds: Math.round(drainMs / 100) / 10,
      };
      return { measurement };
    } finally {
      sink.resume();
      await deployment.stop();
    }
  },
};

/** Attachments: skipped while the intake refuses multipart; otherwise sends `count` submissions of `bytes`. */
function attachmentScenario(name: string, bytes: number, fullCount: number, concurrency: number): Scenario {
  return {
    name,
    modes: ['embedded', 'production'],
    async run(mode, sink, settings) {
      const count = scaled(fullCount, settings.scale, Math.min(fullCount, 3));
      const deployment = await deploy(mode, sink, settings, { timeoutMs: 300_000 });
      try {
        const refusal = await multipartRefused(deployment.urls[0]!);
        if (refusal) return { skipped: refusal };
        const cpu = cpuMeter(deployment);
        const load = await runLoad({ targets: deployment.urls, count, make: withAttachment(bytes), concurrency });
        const accepted = load.sent.filter((s) => s.status === 202).length;
        await settle(sink, accepted, performance.now() + 120_000 + accepted * (bytes / 1e6) * 200);
        const measurement = measure(name, deployment, load, sink, cpu());
        measurement.extra = { ...measurement.extra, attachmentBytes: bytes, concurrency, sinkBytes: sink.bytes() };
        return { measurement };
      } finally {
        await deployment.stop();
      }
    },
  };
}

export const SCENARIOS: Scenario[] = [
  // End-to-end latency at a steady 200/s (target: p99 < 15 ms in production mode).
  loadScenario('steady-small', ['reference', 'embedded', 'production'], (scale) => ({ count: scaled(6000, scale, 100), rate: 200, make: small })),
  // Intake latency at a steady 300/s (target: p99 of the 202 < 25 ms).
  loadScenario('intake-small', ['reference', 'embedded', 'production'], (scale) => ({ count: scaled(9000, scale, 150), rate: 300, make: small })),
  // Maximum throughput: closed loop, 32 requests outstanding.
  loadScenario('max-small', ['reference', 'embedded', 'production'], (scale) => ({ count: scaled(20_000, scale, 200), concurrency: 32, make: small })),
  backlog,
  attachmentScenario('attach-1mb', 1024 ** 2, 200, 4),
  attachmentScenario('attach-100mb', 100 * 1024 ** 2, 3, 1),
  // Two production instances as competing consumers, load split between their intakes.
  // (ratio against the reference of max-small, the same load on one reference process)
  loadScenario('two-instances', ['production'], (scale) => ({ count: scaled(20_000, scale, 200), concurrency: 32, make: small }), 2, 'max-small'),
];
