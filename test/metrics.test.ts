// Prometheus metrics: the numbers move with the traffic, labelled by tenant, route, target and reason,
// queue depth and states are read at scrape time, and no id or personal content ever becomes a label.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { BackOffice } from '../src/demo/back-office';
import type { RunningRouter } from '../src/main';
import { eventually, FIXTURES, getStatus, MODES, post, startCityRouter, variant } from './support/harness';
import { stopServices } from './support/services';

const MUENCHEN = readFileSync(path.join(FIXTURES, 'valid/xbau-0200-antrag-muenchen.xml'), 'utf8');
/** A marker in the applicant's fields: it must not reach any log line or metric. */
const MARKER = 'Zz9PrivacyMarker';

afterAll(() => stopServices());

/** The value of one series in the exposition text, 0 when absent. */
function sample(text: string, name: string, labels: Record<string, string>): number {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && wanted.every((w) => l.includes(w)));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

describe.each(MODES)('%s mode', (mode) => {
  let backOffice: BackOffice;
  let router: RunningRouter;
  let logText: () => string;
  let close: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    ({ router, backOffice, logText, close } = await startCityRouter(mode));
  });
  afterAll(() => close?.());

  const scrape = async () => {
    const response = await fetch(`${router.url}/metrics`);
    expect(response.headers.get('content-type')).toContain('text/plain');
    return response.text();
  };
  const settle = (id: string) => eventually(async () => {
    const status = await getStatus(router.url, id);
    return ['delivered', 'failed'].includes(status.state) && status;
  }, 20_000, `submission ${id}`);

  test('counters and histograms move with deliveries, refusals and failures', async () => {
    const before = await scrape();
    const labels = { tenant: '09162000', route: 'muenchen', target: 'muenchen-lbk' };
    const marked = variant(MUENCHEN).replace(/<familienname>\s*<name>[^<]*<\/name>/, `<familienname><name>${MARKER}</name>`);
    expect(marked).toContain(MARKER);

    const ok = await post(router.url, marked);
    expect(ok.status).toBe(202);
    await settle(ok.json.submissionId as string);
    backOffice.setBehaviour((office) => (office === 'muenchen-lbk' ? 400 : 201));
    const second = variant(MUENCHEN);
    const rejected = await post(router.url, second);
    await settle(rejected.json.submissionId as string);
    backOffice.setBehaviour(undefined);
    expect((await post(router.url, '<a><b></a>')).status).toBe(400);

    const after = await scrape();
    const delta = (name: string, l: Record<string, string>) => sample(after, name, l) - sample(before, name, l);
    expect(delta('antragsrouter_submissions_received_total', { source: 'http' })).toBe(2);
    expect(delta('antragsrouter_submissions_refused_total', { source: 'http', reason: 'xml-not-well-formed' })).toBe(1);
    expect(delta('antragsrouter_submissions_routed_total', { tenant: '09162000', route: 'muenchen' })).toBe(2);
    expect(delta('antragsrouter_deliveries_total', { ...labels, outcome: 'delivered' })).toBe(1);
    expect(delta('antragsrouter_deliveries_total', { ...labels, outcome: 'rejected', reason: 'http-status' })).toBe(1);
    expect(delta('antragsrouter_end_to_end_seconds_count', { tenant: '09162000', target: 'muenchen-lbk' })).toBe(1);
    expect(delta('antragsrouter_step_duration_seconds_count', { step: 'deliver', target: 'muenchen-lbk' })).toBe(2);
    expect(delta('antragsrouter_step_duration_seconds_count', { step: 'intake' })).toBe(2);

    // Read at scrape time from transport and store.
    expect(after).toMatch(/^antragsrouter_queue_depth\{queue="deliver\.muenchen-lbk"\} \d+$/m);
    expect(after).toMatch(/^antragsrouter_queue_depth\{queue="delayed"\} \d+$/m);
    expect(sample(after, 'antragsrouter_submissions', { state: 'failed' })).toBeGreaterThanOrEqual(1);
    expect(after).toMatch(/^antragsrouter_backbone_up 1$/m);
    expect(sample(after, 'antragsrouter_payload_store_bytes', { kind: 'payloads' }) - sample(before, 'antragsrouter_payload_store_bytes', { kind: 'payloads' })).toBe(Buffer.byteLength(marked) + Buffer.byteLength(second));

    // No ids, no content: not in metrics, not in logs.
    for (const id of [ok.json.submissionId, rejected.json.submissionId] as string[]) expect(after).not.toContain(id);
    expect(after).not.toContain(MARKER);
    expect(logText()).not.toContain(MARKER);
  }, 60_000);

  test('a tenant the configuration does not route is labelled other, not by its value', async () => {
    const before = await scrape();
    const foreign = variant(MUENCHEN, { ags: '01001000' });
    const { json } = await post(router.url, foreign);
    await eventually(async () => (await getStatus(router.url, json.submissionId as string)).state !== 'received', 10_000, 'routing');
    const after = await scrape();
    expect(after).not.toContain('01001000');
    expect(sample(after, 'antragsrouter_submissions_parked_total', { tenant: 'other' }) - sample(before, 'antragsrouter_submissions_parked_total', { tenant: 'other' })).toBe(1);
  }, 30_000);
});
