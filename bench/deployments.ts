// What the benchmark measures, started as child processes: the router (embedded or production mode, one or
// more instances, with a generated configuration) and the thin reference. Production runs get a schema
// and queue prefix of their own, removed again afterwards.
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { Topology } from '../src/transport/rabbitmq-topology';
import { cityConfig } from '../test/support/harness';
import { deleteTopology, dropSchema, runId } from '../test/support/services';
import { freePort, startMeasured, waitHealthy, type Measured } from './proc';
import type { Mode } from './stats';

/** The repository root, from bench/ (tsx) or from dist/bench/ (compiled). */
export const REPO = [path.resolve(__dirname, '..'), path.resolve(__dirname, '../..')].find((dir) => existsSync(path.join(dir, 'package.json')))!;
/** The router's entry point: this checkout's build, or another one's (BENCH_ROUTER_MAIN, e.g. to compare branches). */
const ROUTER_MAIN = process.env.BENCH_ROUTER_MAIN ? path.resolve(process.env.BENCH_ROUTER_MAIN) : path.join(REPO, 'dist/src/cli.js');
const REFERENCE_MAIN = path.join(REPO, 'dist/bench/reference/pipeline.js');
export const TARGET = 'muenchen-lbk';
/**
 * Node options of the routers, as the Dockerfile (NODE_OPTIONS) and `npm start` run them; the reference gets
 * the same, so that the ratio compares the code. BENCH_NODE_FLAGS replaces them (space-separated; empty: none).
 */
const NODE_FLAGS = (process.env.BENCH_NODE_FLAGS ?? '--max-semi-space-size=32').split(' ').filter(Boolean);

export interface Services {
  amqpUrl: string;
  databaseUrl: string;
}

export interface TargetOptions {
  /** Attempts started per second across all instances. */
  rateLimitPerSecond?: number;
  /** Adapter timeout (the backlog scenario holds requests at a stalled sink). */
  timeoutMs?: number;
  concurrency?: number;
}

export interface Deployment {
  mode: Mode;
  /** Intake base URL of each instance. */
  urls: string[];
  processes: Measured[];
  cpuSeconds(): number;
  peakRssMb(): number;
  /** How a process that should still run ended (e.g. `exit 1`, `SIGTERM`), else undefined: the figures are then incomplete. */
  exitedEarly(): string | undefined;
  /** Stops the processes and removes what the run left in RabbitMQ / PostgreSQL. */
  stop(): Promise<void>;
}

/** A setting given by an environment variable, if set (`0` as the number: off). */
function fromEnv(key: string, value: string | undefined): Record<string, string | number> {
  return value ? { [key]: value === '0' ? 0 : value } : {};
}

/** The router configuration of a benchmark run: the test deployment's facts, one route, one http target at the sink. */
export function benchConfig(dir: string, sinkUrl: string, target: TargetOptions, ids: { schema: string; prefix: string }, mapping: string): Record<string, unknown> {
  const timeoutMs = target.timeoutMs ?? 10_000;
  return cityConfig(dir, sinkUrl, {
    instance: 'bench',
    server: { host: '127.0.0.1', port: 0 },
    store: { path: path.join(dir, 'store.db'), postgres: { schema: ids.schema } },
    transport: { amqp: { prefix: ids.prefix } },
    // (the harness finds mappings relative to its own file, which is elsewhere once compiled)
    mappingsDir: path.join(REPO, 'mappings'),
    delivery: {
      retry: { maxAttempts: 10, initialDelay: '200ms', maxDelay: '5s' },
      leaseTime: Math.max(120_000, timeoutMs * 2),
      ...fromEnv('documentCache', process.env.BENCH_DOCUMENT_CACHE),
      ...fromEnv('immediateWait', process.env.BENCH_IMMEDIATE_WAIT),
    },
    targets: {
      [TARGET]: {
        adapter: 'http',
        mapping,
        ...(target.concurrency ? { concurrency: target.concurrency } : {}),
        ...(target.rateLimitPerSecond ? { rateLimit: { perSecond: target.rateLimitPerSecond } } : {}),
        config: { url: `${sinkUrl}/${TARGET}`, timeoutMs },
      },
    },
    routes: [{ name: 'muenchen', match: { tenant: '09162000' }, deliver: [TARGET] }],
  });
}

/** Deployments running now: stopped and cleaned up by `stopAll` when the benchmark is interrupted. */
const running = new Set<Deployment>();

export async function stopAll(): Promise<void> {
  await Promise.allSettled([...running].map((deployment) => deployment.stop()));
}

/** How long removing a run's schema and queues may take before the benchmark goes on without it. */
const CLEANUP_TIMEOUT_MS = 30_000;

/** Runs `cleanup`, but gives up after CLEANUP_TIMEOUT_MS (a broker that hangs must not hang the benchmark). */
async function bounded(cleanup: () => Promise<void>, what: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), CLEANUP_TIMEOUT_MS);
  });
  try {
    const outcome = await Promise.race([cleanup().then(() => 'done' as const), timeout]);
    if (outcome === 'timeout') console.error(`bench: removing ${what} did not finish within ${CLEANUP_TIMEOUT_MS / 1000} s; remove it by hand`);
  } catch (error) {
    console.error(`bench: removing ${what} failed (${(error as Error).message}); remove it by hand`);
  } finally {
    clearTimeout(timer);
  }
}

function aggregate(mode: Mode, urls: string[], processes: Measured[], cleanup: () => Promise<void>): Deployment {
  let stopping: Promise<void> | undefined;
  const deployment: Deployment = {
    mode,
    urls,
    processes,
    cpuSeconds: () => processes.reduce((sum, p) => sum + p.cpuSeconds(), 0),
    peakRssMb: () => Math.max(...processes.map((p) => p.peakRssMb())),
    exitedEarly: () => processes.map((p) => p.child.signalCode ?? (p.child.exitCode === null ? undefined : `exit ${p.child.exitCode}`)).find(Boolean),
    stop() {
      stopping ??= (async () => {
        await Promise.all(processes.map((p) => p.stop()));
        await cleanup();
        running.delete(deployment);
      })();
      return stopping;
    },
  };
  running.add(deployment);
  return deployment;
}

export interface RouterOptions {
  mode: 'embedded' | 'production';
  instances: number;
  sinkUrl: string;
  services: Services;
  target: TargetOptions;
  mapping: string;
  logLevel: string;
  /** Directory for V8 CPU profiles (`--cpu-prof`) of the router processes. */
  cpuProfDir?: string;
}

/** Starts router instance(s) as child processes on free loopback ports and waits until each is healthy. */
export async function startRouters(options: RouterOptions): Promise<Deployment> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'antragsrouter-bench-'));
  const id = runId('bench');
  const file = path.join(dir, 'antragsrouter.yaml');
  writeFileSync(file, stringify(benchConfig(dir, options.sinkUrl, options.target, { schema: id, prefix: id }, options.mapping)));
  const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: options.logLevel };
  delete env.AMQP_URL;
  delete env.DATABASE_URL;
  if (options.mode === 'production') Object.assign(env, { AMQP_URL: options.services.amqpUrl, DATABASE_URL: options.services.databaseUrl });
  const flags = [...NODE_FLAGS, ...(options.cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', options.cpuProfDir] : [])];
  const processes: Measured[] = [];
  const urls: string[] = [];
  const cleanup = async () => {
    if (options.mode !== 'production') return;
    const topology = new Topology(id, 0);
    await bounded(() => Promise.all([dropSchema(options.services.databaseUrl, id), deleteTopology(options.services.amqpUrl, topology.names(['route', `deliver.${TARGET}`]))]).then(() => undefined),
      `PostgreSQL schema ${id} and RabbitMQ prefix ${id}`);
  };
  const deployment = aggregate(options.mode, urls, processes, cleanup);
  try {
    // One after the other: the first instance creates the schema and topology.
    for (let i = 0; i < options.instances; i += 1) {
      const port = await freePort();
      const process_ = startMeasured([...flags, ROUTER_MAIN, 'start', '--config', file, '--port', String(port)], { env, cwd: dir, logFile: path.join(dir, `router-${i}.log`) });
      processes.push(process_);
      urls.push(`http://127.0.0.1:${port}`);
      await waitHealthy(`http://127.0.0.1:${port}/healthz`, process_);
    }
  } catch (error) {
    await deployment.stop();
    throw new Error(`router did not start (log in ${dir}): ${(error as Error).message}`, { cause: error });
  }
  return deployment;
}

/** Starts the thin reference (bench/reference/pipeline.ts) with a queue of its own. */
export async function startReference(options: { sinkUrl: string; services: Services }): Promise<Deployment> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'antragsrouter-reference-'));
  const queue = runId('bench_reference');
  const port = await freePort();
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: String(port), QUEUE: queue, SINK_URL: `${options.sinkUrl}/${TARGET}`, AMQP_URL: options.services.amqpUrl };
  const process_ = startMeasured([...NODE_FLAGS, REFERENCE_MAIN], { env, cwd: dir, logFile: path.join(dir, 'reference.log') });
  const deployment = aggregate('reference', [`http://127.0.0.1:${port}`], [process_], () => bounded(() => deleteTopology(options.services.amqpUrl, { exchanges: [], queues: [queue] }), `RabbitMQ queue ${queue}`));
  try {
    await waitHealthy(`http://127.0.0.1:${port}/healthz`, process_);
  } catch (error) {
    await deployment.stop();
    throw new Error(`reference did not start (log in ${dir}): ${(error as Error).message}`, { cause: error });
  }
  return deployment;
}
