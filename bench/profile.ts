// Summarises V8 CPU profiles (`node --cpu-prof`, e.g. from BENCH_CPU_PROF=dir npm run bench): self time per
// function and per package / source file, highest first.
//
//   node dist/bench/profile.js <file.cpuprofile>... [--top 25]
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface Summary {
  totalMs: number;
  /** Self time by what the nearest categorised frame on the stack does (PostgreSQL, XML, logging …). */
  byCategory: Array<{ name: string; ms: number; share: number }>;
  byFunction: Array<{ name: string; ms: number; share: number }>;
  byModule: Array<{ name: string; ms: number; share: number }>;
}

/** Where a script belongs: `pkg:<npm package>` for node_modules, `node:` internals, else the path from the repository. */
export function moduleOf(url: string): string {
  if (!url) return '(vm)';
  if (url.startsWith('node:')) return url.split('/')[0]!;
  const path = url.replace(/^file:\/\//, '');
  const modules = path.lastIndexOf('/node_modules/');
  if (modules >= 0) {
    const [scopeOrName, name] = path.slice(modules + '/node_modules/'.length).split('/');
    return `pkg:${scopeOrName!.startsWith('@') ? `${scopeOrName}/${name}` : scopeOrName}`;
  }
  const repo = /\/(dist\/)?((src|adapters|bench)\/.*)$/.exec(path);
  return repo ? repo[2]! : path;
}

/** Categories by the script of a frame, tried in order; a sample counts for the innermost categorised frame. */
const CATEGORIES: Array<[string, RegExp]> = [
  ['postgres (pg, kysely)', /node_modules\/(pg|pg-protocol|pg-pool|kysely|postgres-array|pg-types)\/|store\/postgres-/],
  ['sqlite', /node_modules\/better-sqlite3\/|store\/sqlite|embedded-transport/],
  ['amqp (amqplib)', /node_modules\/amqplib\/|rabbitmq-transport/],
  ['xml parse (xmldom)', /node_modules\/@xmldom\//],
  ['xpath', /node_modules\/xpath\/|envelope\/xpath/],
  ['xml tokenizer (saxes: gate, element tree)', /node_modules\/saxes\/|envelope\/(xml-gate|xoev-header|decode|element-tree|stream-path)/],
  ['mapping (incl. luxon)', /node_modules\/luxon\/|src\/map\//],
  ['logging (pino)', /node_modules\/(pino|sonic-boom|pino-std-serializers)\//],
  ['http out (undici; axios in callbacks)', /node_modules\/(undici|axios|follow-redirects|form-data|proxy-from-env)\/|adapters\/http\//],
  ['http in (express)', /node_modules\/(express|body-parser|raw-body|router|type-is|content-type|finalhandler|send|on-finished)\/|src\/intake\//],
  ['config / zod', /node_modules\/(zod|yaml)\//],
];

/** The category of each node: its own script's, else its nearest categorised caller's, else by V8 pseudo-frame. */
function categorise(profile: CpuProfile): Map<number, string> {
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const result = new Map<number, string>();
  const of = (id: number): string => {
    const known = result.get(id);
    if (known) return known;
    const frame = nodes.get(id)!.callFrame;
    const own = CATEGORIES.find(([, pattern]) => pattern.test(frame.url))?.[0];
    const up = parent.get(id);
    const category = own ?? (up === undefined || !frame.url && ['(garbage collector)', '(idle)', '(program)'].includes(frame.functionName)
      ? frame.functionName || 'other' : of(up));
    result.set(id, category === '(root)' ? 'other (node, pipeline)' : category);
    return result.get(id)!;
  };
  for (const node of profile.nodes) of(node.id);
  return result;
}

function ranked(totals: Map<string, number>, totalMs: number, top: number) {
  return [...totals].sort((a, b) => b[1] - a[1]).slice(0, top).map(([name, ms]) => ({ name, ms: Math.round(ms), share: Math.round((ms / totalMs) * 1000) / 10 }));
}

/** Self time per function and per module, summed over the profiles. */
export function summarise(profiles: CpuProfile[], top = 25): Summary {
  const byFunction = new Map<string, number>();
  const byModule = new Map<string, number>();
  const byCategory = new Map<string, number>();
  let totalMs = 0;
  for (const profile of profiles) {
    const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
    const categories = categorise(profile);
    profile.samples.forEach((id, index) => {
      const ms = (profile.timeDeltas[index] ?? 0) / 1000;
      const frame = nodes.get(id)!.callFrame;
      const module = moduleOf(frame.url);
      const fn = `${frame.functionName || '(anonymous)'} ${module}${frame.url ? `:${frame.lineNumber + 1}` : ''}`;
      byFunction.set(fn, (byFunction.get(fn) ?? 0) + ms);
      byModule.set(module === '(vm)' ? frame.functionName || '(vm)' : module, (byModule.get(module === '(vm)' ? frame.functionName || '(vm)' : module) ?? 0) + ms);
      const category = categories.get(id)!;
      byCategory.set(category, (byCategory.get(category) ?? 0) + ms);
      totalMs += ms;
    });
  }
  return { totalMs: Math.round(totalMs), byCategory: ranked(byCategory, totalMs, top), byFunction: ranked(byFunction, totalMs, top), byModule: ranked(byModule, totalMs, top) };
}

if (require.main === module) {
  const args = process.argv.slice(2);
  const topAt = args.indexOf('--top');
  const top = topAt >= 0 ? Number(args.splice(topAt, 2)[1]) : 25;
  if (!args.length) {
    console.error('usage: node dist/bench/profile.js <file.cpuprofile>... [--top N]');
    process.exit(2);
  }
  const summary = summarise(args.map((file) => JSON.parse(readFileSync(file, 'utf8')) as CpuProfile), top);
  console.log(`sampled ${summary.totalMs} ms in ${args.length} profile(s)`);
  // V8 samples on a wall-clock timer: a native call such as a socket write that wakes a peer on the same
  // cores and then waits for a CPU counts whole (perf's cpu-clock put the kernel at 11.5 % of the router's
  // on-CPU time where this profile gave writev 20 %). Read the shares as wall time, not CPU.
  console.log('(wall-clock samples: native calls include time spent waiting for a CPU)');
  console.log('\nself time by category (innermost categorised frame on the stack):');
  for (const row of summary.byCategory) console.log(`${String(row.ms).padStart(8)} ms ${String(row.share).padStart(5)} %  ${row.name}`);
  console.log('\nself time by module:');
  for (const row of summary.byModule) console.log(`${String(row.ms).padStart(8)} ms ${String(row.share).padStart(5)} %  ${row.name}`);
  console.log('\nself time by function:');
  for (const row of summary.byFunction) console.log(`${String(row.ms).padStart(8)} ms ${String(row.share).padStart(5)} %  ${row.name}`);
}
