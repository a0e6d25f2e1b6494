// End to end: intake → store → route → map → deliver → status, against a real demo back office, in both modes:
// embedded (SQLite) and production (PostgreSQL + RabbitMQ, each run in its own schema and queue prefix).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { startBackOffice, type BackOffice } from '../src/demo/back-office';
import type { RunningRouter } from '../src/main';
import { BAD_FIXTURE_REASONS, captureLog, cityConfig, eventually, FIXTURES, getStatus, MODES, post, startTestRouter, tempDir, variant } from './support/harness';
import { stopServices } from './support/services';

const valid = (name: string) => readFileSync(path.join(FIXTURES, 'valid', name), 'utf8');
const MUENCHEN = 'xbau-0200-antrag-muenchen.xml';
const AUGSBURG = 'xbau-0200-antrag-augsburg.xml';
const AUGSBURG_0202 = 'xbau-0202-antragGeaendert-augsburg.xml';

afterAll(() => stopServices());

describe.each(MODES)('%s mode', (mode) => {
  let backOffice: BackOffice;
  let router: RunningRouter;
  let dir: string;
  let logText: () => string;

  beforeAll(async () => {
    backOffice = await startBackOffice();
    dir = tempDir();
    const captured = captureLog();
    logText = captured.text;
    router = await startTestRouter(cityConfig(dir, backOffice.url), captured.log, mode);
  });

  afterAll(async () => {
    await router?.close();
    await backOffice?.close();
  });

  beforeEach(() => backOffice.setBehaviour(undefined));

  const delivered = (id: string) => eventually(async () => {
    const status = await getStatus(router.url, id);
    return ['delivered', 'failed', 'parked'].includes(status.state) && status;
  }, 15_000, `submission ${id} to settle`);

  describe('valid messages', () => {
    test('each fixture is accepted with 202 and lands at its city target, mapped', async () => {
      const answers = await Promise.all([MUENCHEN, AUGSBURG, AUGSBURG_0202].map(async (name) => post(router.url, valid(name))));
      for (const answer of answers) {
        expect(answer.status).toBe(202);
        expect(answer.json).toEqual({ submissionId: expect.stringMatching(/^[0-9a-f-]{36}$/), status: 'received', duplicate: false });
      }
      const [muenchen, augsburg, augsburg0202] = await Promise.all(answers.map((a) => delivered(a.json.submissionId as string)));

      // München: JSON over HTTP, the back office's Aktenzeichen recorded.
      expect(muenchen!.state).toBe('delivered');
      const atLbk = backOffice.received.find((r) => r.submissionId === muenchen!.submissionId)!;
      expect(atLbk.office).toBe('muenchen-lbk');
      expect(atLbk.idempotencyKey).toBe(`${muenchen!.submissionId}/muenchen-lbk`);
      expect(atLbk.contentType).toBe('application/json; charset=utf-8');
      const mapped = JSON.parse(atLbk.body.toString()) as { nachricht: { uuid: string }; gemeinde: { ags: string; name: string }; anlagen: unknown[] };
      expect(mapped.nachricht.uuid).toBe('d3503a22-6b7d-4dc7-9319-b29f17c29b73');
      expect(mapped.gemeinde).toEqual({ ags: '09162000', name: 'Landeshauptstadt München' });
      expect(mapped.anlagen).toHaveLength(4);
      expect(muenchen!.deliveries).toEqual([expect.objectContaining({ target: 'muenchen-lbk', route: 'muenchen', state: 'delivered', attempts: 1, reference: atLbk.aktenzeichen })]);

      // Augsburg: JSON files in the drop directory, 0202 routed by the AGS in its reader id.
      const files = readdirSync(path.join(dir, 'out/augsburg')).sort();
      expect(files).toEqual([`0200-${augsburg!.submissionId}.json`, `0202-${augsburg0202!.submissionId}.json`].sort());
      const file0202 = JSON.parse(readFileSync(path.join(dir, 'out/augsburg', `0202-${augsburg0202!.submissionId}.json`), 'utf8')) as { bezug: { vorgang: string }; gemeinde: { ags: string } };
      expect(file0202.bezug.vorgang).toBe('BOA/2026/04711');
      expect(file0202.gemeinde.ags).toBe('09761000');
    });

    test('status shows facts, deliveries and history without personal content', async () => {
      const { json } = await post(router.url, variant(valid(MUENCHEN)));
      const status = await delivered(json.submissionId as string);
      expect(status.facts).toMatchObject({ messageType: '0200', reader: 'bab:09162000', standard: 'XBau-Hochbau', version: '2.6', ags: '09162000' });
      expect(status.routes).toEqual(['muenchen']);
      expect((status.history as Array<{ event: string; outcome?: string }>).map((h) => h.outcome ? `${h.event}:${h.outcome}` : h.event)).toEqual(['received', 'routed', 'attempt:delivered']);
      const text = JSON.stringify(status);
      for (const personal of ['Beispielhuber', 'Johanna', 'Am Probeacker', 'johanna.beispielhuber@example.org', 'Beispielweg']) expect(text).not.toContain(personal);
    });

    test('a resend of the same nachrichtenUUID gets the same submission and is not delivered twice', async () => {
      const message = variant(valid(MUENCHEN));
      const first = await post(router.url, message);
      await delivered(first.json.submissionId as string);
      const second = await post(router.url, message);
      expect(second.status).toBe(202);
      expect(second.json).toEqual({ submissionId: first.json.submissionId, status: 'delivered', duplicate: true });
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(backOffice.received.filter((r) => r.submissionId === first.json.submissionId)).toHaveLength(1);
      const status = await getStatus(router.url, first.json.submissionId as string);
      expect(status.history.map((h) => h.event)).toEqual(['received', 'routed', 'attempt', 'resent']);
    });

    test('a message for no configured city is parked with reason no-route, never dropped', async () => {
      const { status, json } = await post(router.url, variant(valid(MUENCHEN), { ags: '09999999' }));
      expect(status).toBe(202);
      const settled = await delivered(json.submissionId as string);
      expect(settled).toMatchObject({ state: 'parked', reason: 'no-route', deliveries: [] });
      expect(settled.history.map((h) => h.event)).toEqual(['received', 'parked']);
    });
  });

  describe('failing back offices', () => {
    test('a back office answering 503 for a while receives the submission once it recovers', async () => {
      let refusals = 0;
      backOffice.setBehaviour((office) => (office === 'muenchen-lbk' && refusals++ < 3 ? 503 : 201));
      const { json } = await post(router.url, variant(valid(MUENCHEN)));
      const status = await delivered(json.submissionId as string);
      expect(status.state).toBe('delivered');
      expect(status.deliveries[0]).toMatchObject({ state: 'delivered', attempts: 4 });
      const outcomes = status.history.filter((h) => h.event === 'attempt').map((h) => `${h.outcome}:${h.reason ?? ''}`);
      expect(outcomes).toEqual(['retry:http-status', 'retry:http-status', 'retry:http-status', 'delivered:']);
      expect(backOffice.received.filter((r) => r.submissionId === json.submissionId)).toHaveLength(1);
    });

    test('a back office answering 400 sends the submission to the dead letters with the reason, without retrying', async () => {
      backOffice.setBehaviour((office) => (office === 'muenchen-lbk' ? 400 : 201));
      const failuresBefore = backOffice.failures;
      const { json } = await post(router.url, variant(valid(MUENCHEN)));
      const status = await delivered(json.submissionId as string);
      expect(status.state).toBe('failed');
      expect(status.deliveries[0]).toMatchObject({ state: 'dead', attempts: 1, reason: 'http-status', detail: 'HTTP 400' });
      expect(backOffice.failures - failuresBefore).toBe(1);
    });

    test('a back office that does not answer times out, is retried, and receives the submission once it answers', async () => {
      let hung = 0;
      backOffice.setBehaviour((office) => (office === 'muenchen-lbk' && hung++ < 2 ? 'hang' : 201));
      const { json } = await post(router.url, variant(valid(MUENCHEN)));
      const status = await eventually(async () => {
        const s = await getStatus(router.url, json.submissionId as string);
        return ['delivered', 'failed'].includes(s.state) && s;
      }, 20_000, 'delivery after two timeouts');
      expect(status.deliveries[0]).toMatchObject({ state: 'delivered', attempts: 3 });
      const outcomes = status.history.filter((h) => h.event === 'attempt').map((h) => `${h.outcome}:${h.reason ?? ''}`);
      expect(outcomes).toEqual(['retry:http-timeout', 'retry:http-timeout', 'delivered:']);
      expect(backOffice.received.filter((r) => r.submissionId === json.submissionId)).toHaveLength(1);
    });

    test('retryable failures stop at maxAttempts and dead-letter with max-attempts-exceeded', async () => {
      backOffice.setBehaviour((office) => (office === 'muenchen-lbk' ? 500 : 201));
      const { json } = await post(router.url, variant(valid(MUENCHEN)));
      const status = await delivered(json.submissionId as string);
      expect(status.state).toBe('failed');
      expect(status.deliveries[0]).toMatchObject({ state: 'dead', attempts: 5, reason: 'max-attempts-exceeded' });
      expect(String(status.deliveries[0]!.detail)).toContain('HTTP 500');
    });
  });

  describe('bad input', () => {
    const bad = readdirSync(path.join(FIXTURES, 'bad')).filter((f) => f.endsWith('.xml'));
    const expected = BAD_FIXTURE_REASONS;

    test('covers every bad fixture', () => {
      expect(bad.sort()).toEqual(Object.keys(expected).sort());
    });

    test.each(bad)('%s is refused with a 400 problem and leaves nothing behind', async (file) => {
      const before = await router.store.countByState();
      const answer = await post(router.url, readFileSync(path.join(FIXTURES, 'bad', file)));
      expect(answer.status).toBe(400);
      expect(answer.type).toBe('application/problem+json; charset=utf-8');
      expect(answer.json).toMatchObject({ status: 400, code: expected[file], type: `urn:antragsrouter:problem:${expected[file]}`, instance: '/api/v1/submissions' });
      expect(String(answer.json.detail).length).toBeGreaterThan(10);
      expect(await router.store.countByState()).toEqual(before);
      expect(JSON.stringify(answer.json)).not.toContain('root:x:0:0');
    });

    test('a body that is not XML by content type gets 415', async () => {
      const answer = await post(router.url, '{"a":1}', 'application/json');
      expect(answer).toMatchObject({ status: 415, json: { code: 'unsupported-media-type' } });
    });

    test('a body over the configured size gets 413', async () => {
      const big = `<?xml version="1.0"?><a>${'x'.repeat(11 * 1024 * 1024)}</a>`;
      const answer = await post(router.url, big);
      expect(answer).toMatchObject({ status: 413, json: { code: 'payload-too-large' } });
    });

    test('an unknown submission id gets a 404 problem', async () => {
      const response = await fetch(`${router.url}/api/v1/submissions/00000000-0000-4000-8000-000000000000`);
      expect(response.status).toBe(404);
      expect(await response.json()).toMatchObject({ code: 'submission-not-found' });
    });
  });

  test('the sender\'s trace context reaches the back office through the queues, one span per step', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const response = await fetch(`${router.url}/api/v1/submissions`, {
      method: 'POST', headers: { 'content-type': 'application/xml', traceparent: `00-${traceId}-00f067aa0ba902b7-01` }, body: variant(valid(MUENCHEN)),
    });
    const { submissionId } = (await response.json()) as { submissionId: string };
    await delivered(submissionId);
    const received = backOffice.received.find((r) => r.submissionId === submissionId)!;
    expect(received.traceparent).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
    expect(received.traceparent).not.toContain('00f067aa0ba902b7');
    expect(logText()).toContain(`"traceId":"${traceId}"`);
  });

  test('logs carry submission ids but no personal content', async () => {
    const { json } = await post(router.url, variant(valid(MUENCHEN)));
    await delivered(json.submissionId as string);
    const text = logText();
    expect(text).toContain(`"submissionId":"${json.submissionId}"`);
    for (const personal of ['Beispielhuber', 'Johanna', 'Am Probeacker', 'example.org', 'Beispielweg', 'Planmann']) expect(text).not.toContain(personal);
  });

  test('readiness reports each target', async () => {
    const response = await fetch(`${router.url}/readyz`);
    const body = (await response.json()) as { status: string; targets: Array<{ target: string; ok: boolean }> };
    expect(response.status).toBe(200);
    expect(body.targets.map((t) => [t.target, t.ok])).toEqual([['muenchen-lbk', true], ['augsburg-boa', true], ['nuernberg-bob', true]]);
    expect(body).toMatchObject({ mode, store: { ok: true }, transport: { ok: true } });
    // The embedded store is the SQLite file; production mode leaves no such file.
    expect(existsSync(path.join(dir, 'store.db'))).toBe(mode === 'embedded');
  });

  describe('documents without XÖV header, where the deployment accepts them', () => {
    const FIM = '<?xml version="1.0"?><fim:S00000092 xmlns:fim="urn:example:fim" version="1.1"><fim:feld>x</fim:feld></fim:S00000092>';
    let fimRouter: RunningRouter;
    let fimDir: string;

    beforeAll(async () => {
      fimDir = tempDir();
      const base = cityConfig(fimDir, backOffice.url);
      fimRouter = await startTestRouter({
        ...base,
        envelope: { requireXoevHeader: false },
        routes: [...(base.routes as object[]), { name: 'fim', match: { rootElement: 'S00000092' }, deliver: ['nuernberg-bob'] }],
      }, undefined, mode);
    });
    afterAll(async () => fimRouter?.close());

    test('are accepted, routed by root element, and deduplicated by body hash or Idempotency-Key', async () => {
      const first = await post(fimRouter.url, FIM);
      expect(first).toMatchObject({ status: 202, json: { duplicate: false } });
      const status = await eventually(async () => {
        const s = await getStatus(fimRouter.url, first.json.submissionId as string);
        return s.state === 'delivered' && s;
      });
      expect(status).toMatchObject({ routes: ['fim'], facts: { messageType: 'S00000092', header: '' } });
      expect((await post(fimRouter.url, FIM)).json).toMatchObject({ submissionId: first.json.submissionId, duplicate: true });

      const keyed = await fetch(`${fimRouter.url}/api/v1/submissions`, { method: 'POST', headers: { 'content-type': 'application/xml', 'idempotency-key': 'form-4711' }, body: FIM.replace('>x<', '>y<') });
      const again = await fetch(`${fimRouter.url}/api/v1/submissions`, { method: 'POST', headers: { 'content-type': 'application/xml', 'idempotency-key': 'form-4711' }, body: FIM.replace('>x<', '>z<') });
      const [a, b] = (await Promise.all([keyed.json(), again.json()])) as Array<{ submissionId: string; duplicate: boolean }>;
      expect(a!.submissionId).toBe(b!.submissionId);
      expect(b!.duplicate).toBe(true);
    });

    test('the default deployment still refuses them', async () => {
      expect(await post(router.url, FIM)).toMatchObject({ status: 400, json: { code: 'xoev-header-missing' } });
    });
  });
});
