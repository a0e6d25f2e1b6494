// `npm run bench`: runs the selected scenarios in each of their modes (the thin reference first, so that
// the router's lines carry the ratio against it) and prints one JSON line per scenario and mode.
//
//   npm run bench                                   all scenarios, full size (long: minutes per scenario)
//   BENCH_SCALE=0.05 npm run bench -- steady-small  one scenario, 5 % of the full counts
//
// Environment: BENCH_SCENARIOS (comma list; or as arguments), BENCH_MODES (reference,embedded,production),
// BENCH_SCALE (1), BENCH_WARMUP (submissions before each measurement, 300), BENCH_DRAIN_RATE (backlog rate limit, 200/s), BENCH_MAPPING (xbau-bauantrag-json),
// BENCH_ROUTER_MAIN (another build's dist/src/cli.js), BENCH_LOG_LEVEL (the router's LOG_LEVEL, info), BENCH_CONCURRENCY (the target's concurrency), BENCH_CPU_PROF (directory: profile the routers with
// --cpu-prof), BENCH_NODE_FLAGS (node options of routers and reference,
// --max-semi-space-size=32 as deployed; empty: none), BENCH_SINK_DELAY (ms the back office takes to answer, 0), AMQP_URL and DATABASE_URL (default: RabbitMQ and PostgreSQL on 127.0.0.1).
import { existsSync } from 'node:fs';
import path from 'node:path';
import { REPO, stopAll } from './deployments';
import { SCENARIOS, type Settings } from './scenarios';
import { startSink } from './sink';
import { resultLine, skippedLine, type Mode, type ResultLine } from './stats';

const MODES: Mode[] = ['reference', 'embedded', 'production'];

const list = (value: string | undefined): string[] | undefined => (value ? value.split(',').map((v) => v.trim()).filter(Boolean) : undefined);

function number(name: string, fallback: number): number {
  const value = process.env[name];
  if (value === undefined || value === '') return fallback;
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed <= 0) throw new Error(`${name} must be a positive number (got "${value}")`);
  return parsed;
}

async function main(): Promise<void> {
  const names = process.argv.slice(2).length ? process.argv.slice(2) : list(process.env.BENCH_SCENARIOS) ?? SCENARIOS.map((s) => s.name);
  const unknown = names.filter((n) => !SCENARIOS.some((s) => s.name === n));
  if (unknown.length) throw new Error(`unknown scenario(s) ${unknown.join(', ')}; known: ${SCENARIOS.map((s) => s.name).join(', ')}`);
  const modes = (list(process.env.BENCH_MODES) ?? MODES) as Mode[];
  const badModes = modes.filter((m) => !MODES.includes(m));
  if (badModes.length) throw new Error(`unknown mode(s) ${badModes.join(', ')}; known: ${MODES.join(', ')}`);
  for (const built of [process.env.BENCH_ROUTER_MAIN ? path.resolve(process.env.BENCH_ROUTER_MAIN) : path.join(REPO, 'dist/src/cli.js'), path.join(REPO, 'dist/bench/reference/pipeline.js')]) {
    if (!existsSync(built)) throw new Error(`${built} is missing: run the benchmark with npm run bench (it builds first)`);
  }
  const settings: Settings = {
    scale: number('BENCH_SCALE', 1),
    services: {
      amqpUrl: process.env.AMQP_URL || 'amqp://guest:guest@127.0.0.1:5672',
      databaseUrl: process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test',
    },
    mapping: process.env.BENCH_MAPPING || 'xbau-bauantrag-json',
    logLevel: process.env.BENCH_LOG_LEVEL || 'info',
    drainRate: number('BENCH_DRAIN_RATE', 200),
    targetConcurrency: process.env.BENCH_CONCURRENCY ? number('BENCH_CONCURRENCY', 8) : undefined,
    warmup: process.env.BENCH_WARMUP === '0' ? 0 : number('BENCH_WARMUP', 300),
    cpuProfDir: process.env.BENCH_CPU_PROF ? path.resolve(process.env.BENCH_CPU_PROF) : undefined,
  };

  const sink = await startSink(process.env.BENCH_SINK_DELAY === '0' ? 0 : number('BENCH_SINK_DELAY', 0));
  let interrupted = false;
  // Interrupted: stop the children and remove their schemas and queues before leaving.
  // A second signal leaves at once.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (interrupted) process.exit(130);
      interrupted = true;
      console.error(`bench: ${signal}, stopping and cleaning up (again to leave at once)`);
      void stopAll().finally(() => process.exit(130));
    });
  }
  let failed = 0;
  const references = new Map<string, ResultLine>();
  try {
    for (const scenario of SCENARIOS.filter((s) => names.includes(s.name))) {
      for (const mode of MODES.filter((m) => modes.includes(m) && scenario.modes.includes(m))) {
        sink.reset();
        const started = Date.now();
        console.error(`bench: ${scenario.name} (${mode}) …`);
        try {
          const outcome = await scenario.run(mode, sink, settings);
          if ('skipped' in outcome) {
            console.log(JSON.stringify(skippedLine(scenario.name, mode, outcome.skipped)));
            continue;
          }
          const line = resultLine(outcome.measurement, references.get(scenario.compareWith ?? scenario.name));
          if (mode === 'reference') references.set(scenario.name, line);
          console.log(JSON.stringify(line));
        } catch (error) {
          failed += 1;
          console.log(JSON.stringify({ scenario: scenario.name, mode, error: (error as Error).message }));
        }
        console.error(`bench: ${scenario.name} (${mode}) took ${((Date.now() - started) / 1000).toFixed(1)} s`);
      }
    }
  } finally {
    await sink.close();
  }
  // Explicitly: a cleanup given up on (a hanging broker) may still hold a socket open.
  process.exit(failed ? 1 : 0);
}

main().catch((error: unknown) => {
  console.error(`bench: ${(error as Error).message}`);
  process.exit(2);
});
