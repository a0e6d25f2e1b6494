// Who may call, and the operator's side: API tokens (stored hashed) with roles and tenants, refusals
// audited without content, and the admin API — list, inspect, replay, re-route, discard, audited content.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { newToken, tokenHash } from '../src/auth/auth';
import type { BackOffice } from '../src/demo/back-office';
import type { RunningRouter } from '../src/main';
import { eventually, FIXTURES, MODES, startCityRouter, variant } from './support/harness';
import { stopServices } from './support/services';

const MUENCHEN = readFileSync(path.join(FIXTURES, 'valid/xbau-0200-antrag-muenchen.xml'), 'utf8');
const AUGSBURG = readFileSync(path.join(FIXTURES, 'valid/xbau-0200-antrag-augsburg.xml'), 'utf8');
const MARKER = 'Zz9AdminMarker';

const tokens = { muenchen: newToken(), admin: newToken(), everywhere: newToken() };

afterAll(() => stopServices());

describe.each(MODES)('%s mode', (mode) => {
  let backOffice: BackOffice;
  let router: RunningRouter;
  let logText: () => string;
  let close: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    ({ router, backOffice, logText, close } = await startCityRouter(mode, {
      auth: {
        clients: {
          'formserver-muenchen': { tokenSha256: tokenHash(tokens.muenchen), tenants: ['09162000'] },
          'formserver-man': { tokenSha256: tokenHash(tokens.everywhere), tenants: '*' },
          'ops-anna': { tokenSha256: tokenHash(tokens.admin), roles: ['admin'] },
        },
      },
    }));
  });
  afterAll(() => close?.());
  beforeEach(() => backOffice.setBehaviour(undefined));

  const call = async (method: string, url: string, token: string | undefined, body?: unknown, type = 'application/json') => {
    const response = await fetch(`${router.url}${url}`, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body === undefined ? {} : { 'content-type': type }) },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, type: response.headers.get('content-type') ?? '', text, // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the test reads arbitrary JSON answers
      json: (text.startsWith('{') ? JSON.parse(text) : undefined) as Record<string, any> };
  };
  const submit = (xml: string, token: string | undefined = tokens.muenchen) => call('POST', '/api/v1/submissions', token, xml, 'application/xml');
  const status = (id: string) => call('GET', `/api/v1/admin/submissions/${id}`, tokens.admin);
  const settled = (id: string) => eventually(async () => {
    const s = (await status(id)).json;
    return ['delivered', 'failed', 'parked', 'discarded'].includes(s.state) && s;
  }, 20_000, `submission ${id}`);

  test('no token or an unknown one gets 401; a client outside its tenants gets 403, audited, nothing stored', async () => {
    const before = await router.store.countByState();
    expect(await submit(variant(MUENCHEN), '')).toMatchObject({ status: 401, json: { code: 'unauthenticated' } });
    expect(await submit(variant(MUENCHEN), newToken())).toMatchObject({ status: 401, json: { code: 'unauthenticated' } });
    const refused = await submit(variant(AUGSBURG).replace(/<familienname>\s*<name>[^<]*<\/name>/, `<familienname><name>${MARKER}</name>`));
    expect(refused).toMatchObject({ status: 403, type: expect.stringContaining('application/problem+json'), json: { code: 'tenant-not-allowed' } });
    expect(refused.json.detail).toBe('client formserver-muenchen may not submit for tenant 09761000');
    expect(await router.store.countByState()).toEqual(before);
    const audit = (await call('GET', '/api/v1/admin/audit?limit=5', tokens.admin)).json.items as Array<Record<string, string>>;
    expect(audit[0]).toMatchObject({ actor: 'formserver-muenchen', action: 'submission-refused', detail: expect.stringContaining('tenant-not-allowed') });
    expect(JSON.stringify(audit) + logText()).not.toContain(MARKER);
    // The status API needs a client too.
    expect((await call('GET', '/api/v1/submissions/00000000-0000-4000-8000-000000000000', undefined)).status).toBe(401);
  });

  test('a client for its own tenant, and one for any tenant, are accepted', async () => {
    expect((await submit(variant(MUENCHEN))).status).toBe(202);
    expect((await submit(variant(AUGSBURG), tokens.everywhere)).status).toBe(202);
  });

  test('the admin API needs role admin', async () => {
    expect((await call('GET', '/api/v1/admin/submissions', undefined)).status).toBe(401);
    expect(await call('GET', '/api/v1/admin/submissions', tokens.muenchen)).toMatchObject({ status: 403, json: { code: 'forbidden' } });
    expect(await submit(variant(MUENCHEN), tokens.admin)).toMatchObject({ status: 403, json: { code: 'forbidden' } });
  });

  test('an operator finds a dead delivery, replays it after the back office is fixed, and it is delivered; audited', async () => {
    backOffice.setBehaviour((office) => (office === 'muenchen-lbk' ? 400 : 201));
    const { json } = await submit(variant(MUENCHEN));
    const id = json.submissionId as string;
    expect(await settled(id)).toMatchObject({ state: 'failed', deliveries: [{ target: 'muenchen-lbk', state: 'dead', reason: 'http-status' }] });

    const dead = await call('GET', '/api/v1/admin/submissions?deliveryState=dead&target=muenchen-lbk&tenant=09162000', tokens.admin);
    expect(dead.status).toBe(200);
    expect((dead.json.items as Array<{ id: string }>).map((i) => i.id)).toContain(id);
    expect(JSON.stringify(dead.json)).not.toContain('Beispielhuber');

    backOffice.setBehaviour(undefined);
    expect(await call('POST', `/api/v1/admin/submissions/${id}/replay`, tokens.admin, { target: 'muenchen-lbk', note: 'back office fixed its import' })).toMatchObject({ status: 200, json: { ok: true } });
    const done = await eventually(async () => {
      const s = (await status(id)).json;
      return s.state === 'delivered' && s;
    }, 20_000, 'delivery after replay');
    expect(done.deliveries[0]).toMatchObject({ state: 'delivered', attempts: 1 });
    expect(done.audit).toMatchObject([{ actor: 'ops-anna', action: 'replay', target: 'muenchen-lbk', detail: 'back office fixed its import' }]);
    expect(backOffice.received.filter((r) => r.submissionId === id)).toHaveLength(1);
    // Replaying what is delivered is refused.
    expect(await call('POST', `/api/v1/admin/submissions/${id}/replay`, tokens.admin, { target: 'muenchen-lbk' })).toMatchObject({ status: 409, json: { code: 'wrong-state' } });
  });

  test('a dead delivery can be replayed to another target', async () => {
    backOffice.setBehaviour((office) => (office === 'muenchen-lbk' ? 400 : 201));
    const id = (await submit(variant(MUENCHEN))).json.submissionId as string;
    await settled(id);
    expect(await call('POST', `/api/v1/admin/submissions/${id}/replay`, tokens.admin, { target: 'muenchen-lbk', toTarget: 'nope' })).toMatchObject({ status: 400, json: { code: 'unknown-target' } });
    expect((await call('POST', `/api/v1/admin/submissions/${id}/replay`, tokens.admin, { target: 'muenchen-lbk', toTarget: 'augsburg-boa' })).status).toBe(200);
    const done = await eventually(async () => {
      const s = (await status(id)).json;
      return s.state === 'delivered' && s;
    }, 20_000, 'delivery to the other target');
    expect(done.deliveries.map((d: Record<string, string>) => [d.target, d.state])).toEqual([['muenchen-lbk', 'discarded'], ['augsburg-boa', 'delivered']]);
  });

  test('parked submissions are re-routed or discarded with a reason; bad requests name the field', async () => {
    const parked = (await submit(variant(MUENCHEN, { ags: '09564000' }).replace(/bab:09564000/g, 'bab:01001000').replace(/09564000/g, '01001000'), tokens.everywhere)).json.submissionId as string;
    expect(await settled(parked)).toMatchObject({ state: 'parked', reason: 'no-route' });
    expect((await call('POST', `/api/v1/admin/submissions/${parked}/reroute`, tokens.admin, { note: 'after config fix' })).status).toBe(200);
    const again = await eventually(async () => {
      const s = (await status(parked)).json;
      return s.history.some((h: Record<string, string>) => h.event === 'rerouted') && s.state === 'parked' && s;
    }, 10_000, 're-routed (and parked again: still no route)');
    expect(again.history.map((h: Record<string, string>) => h.event)).toEqual(['received', 'parked', 'rerouted', 'parked']);

    expect(await call('POST', `/api/v1/admin/submissions/${parked}/discard`, tokens.admin, {})).toMatchObject({ status: 400, json: { code: 'invalid-request', detail: expect.stringContaining('reason') } });
    expect((await call('POST', `/api/v1/admin/submissions/${parked}/discard`, tokens.admin, { reason: 'test message from a training' })).status).toBe(200);
    expect((await status(parked)).json).toMatchObject({ state: 'discarded' });
    expect(await call('POST', '/api/v1/admin/submissions/not-an-id/discard', tokens.admin, { reason: 'x' })).toMatchObject({ status: 404 });
  });

  test('content only through an explicit request with a reason, which is audited', async () => {
    const id = (await submit(variant(MUENCHEN))).json.submissionId as string;
    expect(await call('POST', `/api/v1/admin/submissions/${id}/content`, tokens.admin, {})).toMatchObject({ status: 400 });
    expect((await call('GET', `/api/v1/admin/submissions/${id}/content`, tokens.admin)).status).toBe(404);
    const content = await call('POST', `/api/v1/admin/submissions/${id}/content`, tokens.admin, { reason: 'citizen asked what was sent (ticket 4711)' });
    expect(content.status).toBe(200);
    expect(content.text).toContain('Beispielhuber');
    expect((await status(id)).json.audit).toMatchObject([{ actor: 'ops-anna', action: 'view-content', detail: 'citizen asked what was sent (ticket 4711)' }]);
    expect(logText()).not.toContain('Beispielhuber');
  });
});
