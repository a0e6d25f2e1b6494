// The benchmark's pure helpers: percentiles, /proc parsing and the shape of the JSON line (no timing here).
import { cpuSecondsFromStat, peakRssFromStatus, servicesCpu, servicesCpuBetween } from '../bench/proc';
import { smallApplication, withAttachment } from '../bench/scenarios';
import { percentile, perSecond, resultLine, skippedLine, type Measurement } from '../bench/stats';
import { markdownRow } from '../bench/table';
import { median, medianLines } from '../bench/median';
import { moduleOf, summarise, type CpuProfile } from '../bench/profile';

describe('percentile (nearest rank)', () => {
  test('picks the value at the rank, independent of input order', () => {
    const values = [5, 1, 4, 2, 3, 10, 9, 8, 7, 6];
    expect(percentile(values, 50)).toBe(5);
    expect(percentile(values, 90)).toBe(9);
    expect(percentile(values, 99)).toBe(10);
    expect(percentile(values, 100)).toBe(10);
    expect(percentile(values, 0)).toBe(1);
    expect(values[0]).toBe(5);
  });

  test('p99 of 1000 values is the 990th smallest', () => {
    const values = Array.from({ length: 1000 }, (_, i) => 1000 - i);
    expect(percentile(values, 99)).toBe(990);
  });

  test('no values: undefined; out of range: error', () => {
    expect(percentile([], 50)).toBeUndefined();
    expect(() => percentile([1], 101)).toThrow(RangeError);
  });
});

describe('/proc parsing', () => {
  test('utime and stime of a stat line whose command contains spaces and parentheses', () => {
    const stat = '4242 (node (bench) x) S 1 4242 4242 0 -1 4194304 1234 0 0 0 250 75 0 0 20 0 11 0 100 0 0';
    expect(cpuSecondsFromStat(stat)).toBeCloseTo(3.25);
  });

  test('server CPU between snapshots: per process, ended ones left out, new ones in full', () => {
    const at = (entries: Array<[string, 'postgres' | 'rabbitmq', number]>) => new Map(entries.map(([pid, service, seconds]) => [pid, { service, seconds }]));
    const before = at([['1', 'postgres', 5], ['2', 'postgres', 7], ['9', 'rabbitmq', 100]]);
    const after = at([['1', 'postgres', 6.5], ['3', 'postgres', 0.25], ['9', 'rabbitmq', 100.5]]);
    const between = servicesCpuBetween(before, after);
    expect(between.postgres).toBeCloseTo(1.75);
    expect(between.rabbitmq).toBeCloseTo(0.5);
    expect(servicesCpuBetween(after, after)).toEqual({ postgres: 0, rabbitmq: 0 });
    for (const { seconds } of servicesCpu().values()) expect(seconds).toBeGreaterThanOrEqual(0);
  });

  test('VmHWM in MB', () => {
    expect(peakRssFromStatus('Name:\tnode\nVmPeak:\t 1000 kB\nVmHWM:\t  204800 kB\nVmRSS:\t 1 kB\n')).toBe(200);
    expect(peakRssFromStatus('Name:\tnode\n')).toBe(0);
  });
});

describe('JSON line', () => {
  const measurement = (over: Partial<Measurement> = {}): Measurement => ({
    scenario: 'steady-small', mode: 'production', instances: 1, sent: 4, accepted: 4, delivered: 3, duplicates: 1, lost: 1, refused: {},
    intakeLatencies: [1, 2, 3, 4], intakeSpanMs: 2000, e2eLatencies: [10, 20, 30], e2eSpanMs: 1500, cpuSeconds: 0.3, peakRssMb: 123.456, ...over,
  });

  test('carries counts, rates, percentiles, CPU per submission and extra fields', () => {
    const line = resultLine({ ...measurement(), servicesCpuSeconds: { postgres: 0.6, rabbitmq: 0.15 }, extra: { offeredPerSec: 200 } });
    expect(line).toEqual({
      scenario: 'steady-small', mode: 'production', instances: 1, sent: 4, accepted: 4, delivered: 3, duplicates: 1, lost: 1,
      intake: { perSec: 2, p50Ms: 2, p99Ms: 4 }, e2e: { perSec: 2, p50Ms: 20, p99Ms: 30 },
      cpuSeconds: 0.3, cpuMsPerSubmission: 100, postgresCpuMsPerSubmission: 200, rabbitmqCpuMsPerSubmission: 50, peakRssMb: 123.5, offeredPerSec: 200,
    });
    expect(JSON.parse(JSON.stringify(line))).toEqual(line);
  });

  test('router lines get the ratios against the reference line of the same run', () => {
    const reference = resultLine(measurement({ mode: 'reference', delivered: 4, e2eSpanMs: 1000, cpuSeconds: 0.2 }));
    expect(reference.e2e.perSec).toBe(4);
    const line = resultLine(measurement(), reference);
    expect(line.ratio).toBe(0.5);
    expect(line.cpuRatio).toBe(2);
    expect(resultLine(measurement({ mode: 'reference' }), reference).ratio).toBeUndefined();
  });

  test('refusals by status; nothing delivered leaves rates and CPU per submission out', () => {
    const line = resultLine(measurement({ accepted: 0, delivered: 0, lost: 0, refused: { 415: 4 }, intakeLatencies: [], e2eLatencies: [] }));
    expect(line.refused).toEqual({ 415: 4 });
    expect(line.e2e).toEqual({ perSec: undefined, p50Ms: undefined, p99Ms: undefined });
    expect(line.cpuMsPerSubmission).toBeUndefined();
    expect(perSecond(0, 1000)).toBeUndefined();
  });

  test('a process that ended during the measurement is named in the line', () => {
    expect(resultLine(measurement({ exitedEarly: 'SIGTERM' })).exitedEarly).toBe('SIGTERM');
    expect('exitedEarly' in resultLine(measurement())).toBe(false);
  });

  test('a skipped scenario says why', () => {
    expect(skippedLine('attach-1mb', 'embedded', 'no multipart')).toEqual({ scenario: 'attach-1mb', mode: 'embedded', skipped: 'no multipart' });
    expect(markdownRow(skippedLine('attach-1mb', 'embedded', 'no multipart'))).toBe('| attach-1mb | embedded | skipped: no multipart | | | | | | | | |');
  });

  test('the Markdown row of a line (for BENCHMARKS.md) has the 11 columns of the table', () => {
    const row = markdownRow({ ...resultLine({ ...measurement(), instances: 2, servicesCpuSeconds: { postgres: 0.6, rabbitmq: 0.15 }, extra: { offeredPerSec: 200 } }), ratio: 0.5 });
    expect(row).toBe('| steady-small | production ×2 | 4 / 4 / 3 / 1 / 1 | 2 | 2 / 4 | 2 | 20 / 30 | 100 / 200 / 50 | 123.5 | 0.5 | offeredPerSec 200 |');
    expect(row.split('|')).toHaveLength(13);
  });
});

test('each small application carries a fresh nachrichtenUUID and is otherwise the fixture', () => {
  const make = smallApplication();
  const [a, b] = [make(), make()];
  const uuid = (xml: string) => /<nachrichtenUUID>([^<]+)<\/nachrichtenUUID>/.exec(xml)![1];
  expect(uuid(a)).toMatch(/^[0-9a-f-]{36}$/);
  expect(uuid(a)).not.toBe(uuid(b));
  expect(a.replace(uuid(a)!, '')).toBe(b.replace(uuid(b)!, ''));
});

test('an attachment submission is multipart/form-data: the XML as part "application", then exactly the attachment bytes', async () => {
  const { body, contentType } = withAttachment(200_000)();
  const boundary = /boundary=(.+)$/.exec(contentType)![1]!;
  expect(contentType.startsWith('multipart/form-data;')).toBe(true);
  const chunks: Buffer[] = [];
  for await (const chunk of body as AsyncIterable<Buffer>) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString('latin1');
  const parts = text.split(`--${boundary}`);
  expect(parts).toHaveLength(4);
  expect(parts[0]).toBe('');
  expect(parts[1]).toMatch(/^\r\nContent-Disposition: form-data; name="application"; filename="antrag.xml"\r\nContent-Type: application\/xml\r\n\r\n<\?xml/);
  const attachment = parts[2]!.split('\r\n\r\n');
  expect(attachment[0]).toContain('name="anlage"');
  expect(attachment.slice(1).join('\r\n\r\n')).toHaveLength(200_000 + 2);
  expect(parts[3]).toBe('--\r\n');
});

describe('CPU profile summary', () => {
  test('modules: npm packages by name (scoped too), node internals, repository paths from src or dist', () => {
    expect(moduleOf('file:///work/x/node_modules/@xmldom/xmldom/lib/sax.js')).toBe('pkg:@xmldom/xmldom');
    expect(moduleOf('file:///work/x/node_modules/pg/lib/client.js')).toBe('pkg:pg');
    expect(moduleOf('node:internal/streams/writable')).toBe('node:internal');
    expect(moduleOf('file:///work/x/dist/src/pipeline.js')).toBe('src/pipeline.js');
    expect(moduleOf('')).toBe('(vm)');
  });

  test('self time per category goes to the innermost categorised frame; idle and GC stay apart', () => {
    const frame = (id: number, functionName: string, url: string, children: number[] = []) => ({ id, callFrame: { functionName, url, lineNumber: 0 }, children });
    const profile: CpuProfile = {
      nodes: [
        frame(1, '(root)', '', [2, 5, 6]),
        frame(2, 'query', 'file:///r/node_modules/pg/lib/client.js', [3]),
        frame(3, 'writev', '', []),
        frame(4, 'parse', 'file:///r/node_modules/@xmldom/xmldom/lib/sax.js'),
        frame(5, 'route', 'file:///r/dist/src/pipeline.js', [4]),
        frame(6, '(idle)', ''),
      ],
      samples: [3, 3, 4, 5, 6],
      timeDeltas: [1000, 1000, 2000, 500, 4000],
      startTime: 0,
      endTime: 8500,
    };
    const summary = summarise([profile]);
    expect(summary.totalMs).toBe(9);
    expect(Object.fromEntries(summary.byCategory.map((row) => [row.name, row.ms]))).toEqual({
      'postgres (pg, kysely)': 2, 'xml parse (xmldom)': 2, '(idle)': 4, 'other (node, pipeline)': 1,
    });
    expect(summary.byFunction[0]).toEqual({ name: '(idle) (vm)', ms: 4, share: 47.1 });
  });
});

describe('median of several runs', () => {
  test('median of odd and even counts; none is undefined', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeUndefined();
  });

  test('one line per scenario, mode and instances: every number the median over the runs, nested ones too', () => {
    const line = (e2e: number, p99: number, lost: number, instances = 1) => ({ scenario: 'max-small', mode: 'production', instances, sent: 100, lost, e2e: { perSec: e2e, p99Ms: p99 }, cpuMsPerSubmission: e2e / 10 });
    const runs = [
      [line(100, 9, 0), line(150, 1, 0, 2), { scenario: 'attach-1mb', mode: 'embedded', skipped: 'no multipart' }],
      [line(120, 5, 3)],
      [line(90, 7, 0), line(170, 3, 0, 2)],
    ];
    expect(medianLines(runs)).toEqual([
      { scenario: 'max-small', mode: 'production', instances: 1, sent: 100, lost: 0, e2e: { perSec: 100, p99Ms: 7 }, cpuMsPerSubmission: 10, runs: 3 },
      { scenario: 'max-small', mode: 'production', instances: 2, sent: 100, lost: 0, e2e: { perSec: 160, p99Ms: 2 }, cpuMsPerSubmission: 16, runs: 2 },
      { scenario: 'attach-1mb', mode: 'embedded', skipped: 'no multipart', runs: 1 },
    ]);
  });
});
