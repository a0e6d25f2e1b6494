// Combines several runs of `npm run bench` (JSON lines) into one line per scenario and mode whose every
// number is the median of that figure over the runs — the acceptance check takes the median of
// three runs. Counts that must agree (sent, accepted …) are medians too, so a run that lost something
// still shows in `lost` when it was not the only one; `runs` says how many runs had the line.
//
//   node dist/bench/median.js run1.jsonl run2.jsonl run3.jsonl | node dist/bench/table.js
import { readFileSync } from 'node:fs';

type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

/** The median of numbers (mean of the middle two for an even count); undefined for none. */
export function median(values: readonly number[]): number | undefined {
  if (!values.length) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  const value = sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
  return Math.round(value * 1000) / 1000;
}

/** Field by field: numbers → their median, objects → recursively, anything else → the first run's value. */
function combine(values: Json[]): Json {
  const present = values.filter((v) => v !== undefined && v !== null);
  if (!present.length) return null;
  if (present.every((v) => typeof v === 'number')) return median(present as number[])!;
  if (present.every((v) => typeof v === 'object' && !Array.isArray(v))) {
    const objects = present as Array<Record<string, Json>>;
    const keys = [...new Set(objects.flatMap((o) => Object.keys(o)))];
    return Object.fromEntries(keys.map((key) => [key, combine(objects.map((o) => o[key]!).filter((v) => v !== undefined))]));
  }
  return present[0]!;
}

/** One median line per scenario, mode and instance count, in the order first seen. */
export function medianLines(runs: ReadonlyArray<ReadonlyArray<Record<string, Json>>>): Array<Record<string, Json>> {
  const groups = new Map<string, Array<Record<string, Json>>>();
  for (const run of runs) {
    for (const line of run) {
      const key = `${String(line.scenario)}|${String(line.mode)}|${String(line.instances ?? 1)}`;
      groups.set(key, [...(groups.get(key) ?? []), line]);
    }
  }
  return [...groups.values()].map((lines) => ({ ...(combine(lines) as Record<string, Json>), runs: lines.length }));
}

if (require.main === module) {
  const files = process.argv.slice(2);
  if (!files.length) {
    console.error('usage: node dist/bench/median.js <run1.jsonl> <run2.jsonl> …');
    process.exit(2);
  }
  const runs = files.map((file) => readFileSync(file, 'utf8').split('\n').filter((text) => text.startsWith('{')).map((text) => JSON.parse(text) as Record<string, Json>));
  for (const line of medianLines(runs)) console.log(JSON.stringify(line));
}
