// Turns the JSON lines of `npm run bench` (stdin) into the Markdown results table of BENCHMARKS.md.
//
//   npm run bench 2>/dev/null | tee results.jsonl; node dist/bench/table.js < results.jsonl
import { readFileSync } from 'node:fs';
import type { ResultLine } from './stats';

type Line = ResultLine | { scenario: string; mode: string; skipped?: string; error?: string };

const HEADER = [
  '| scenario | mode | sent / accepted / delivered / lost / dup | intake /s | intake p50 / p99 ms | e2e /s | e2e p50 / p99 ms | CPU ms per submission: router / PostgreSQL / RabbitMQ | peak RSS MB | ratio (e2e/s ÷ reference) | notes |',
  '|---|---|---|---|---|---|---|---|---|---|---|',
];

const show = (value: unknown) => (value === undefined ? '–' : String(value));

const NOTE_FIELDS = ['runs', 'offeredPerSec', 'concurrency', 'backlog', 'fillPerSec', 'rateLimitPerSec', 'drainPerSec', 'drainSeconds', 'attachmentBytes', 'cpuRatio', 'exitedEarly'];

export function markdownRow(line: Line): string {
  if ('skipped' in line && line.skipped) return `| ${line.scenario} | ${line.mode} | skipped: ${line.skipped} | | | | | | | | |`;
  if ('error' in line && line.error) return `| ${line.scenario} | ${line.mode} | failed: ${line.error} | | | | | | | | |`;
  const l = line as ResultLine;
  const notes = NOTE_FIELDS.filter((key) => l[key] !== undefined).map((key) => `${key} ${String(l[key])}`).join(', ');
  return `| ${l.scenario} | ${l.mode}${l.instances > 1 ? ` ×${l.instances}` : ''} | ${l.sent} / ${l.accepted} / ${l.delivered} / ${l.lost} / ${l.duplicates} | ${show(l.intake.perSec)} | ${show(l.intake.p50Ms)} / ${show(l.intake.p99Ms)} | ${show(l.e2e.perSec)} | ${show(l.e2e.p50Ms)} / ${show(l.e2e.p99Ms)} | ${show(l.cpuMsPerSubmission)} / ${show(l.postgresCpuMsPerSubmission)} / ${show(l.rabbitmqCpuMsPerSubmission)} | ${l.peakRssMb} | ${show(l.ratio)} | ${notes} |`;
}

if (require.main === module) {
  const lines = readFileSync(0, 'utf8').split('\n').filter((text) => text.startsWith('{')).map((text) => JSON.parse(text) as Line);
  console.log([...HEADER, ...lines.map(markdownRow)].join('\n'));
}
