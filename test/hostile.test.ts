// Hostile input at the HTTP intake and the APIs around it, in both modes: every attack is refused with a
// specific problem, nothing is stored, nothing is fetched, and nothing of the attack's payload (or of the
// machine's files) comes back in an answer or a log line.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { newToken, tokenHash } from '../src/auth/auth';
import type { RunningRouter } from '../src/main';
import { FIXTURES, MODES, startCityRouter, variant } from './support/harness';
import { stopServices } from './support/services';

const MUENCHEN = readFileSync(path.join(FIXTURES, 'valid/xbau-0200-antrag-muenchen.xml'), 'utf8');
const TOKEN = newToken();
const ADMIN = newToken();
const HEAD = MUENCHEN.slice(0, MUENCHEN.indexOf('<xbau:baugenehmigung.antrag.0200'));
const ROOT = MUENCHEN.slice(MUENCHEN.indexOf('<xbau:baugenehmigung.antrag.0200'));
const PROLOG = '<?xml version="1.0" encoding="UTF-8"?>\n';

/** A server that must never be called: external entities, DTDs, XInclude and schema locations point here. */
let canary: http.Server;
let canaryUrl = '';
let canaryHits = 0;

beforeAll(async () => {
  canary = http.createServer((_req, res) => {
    canaryHits += 1;
    res.end('<!ENTITY leak "CANARY-CONTENT">');
  });
  await new Promise<void>((resolve) => canary.listen(0, '127.0.0.1', resolve));
  canaryUrl = `http://127.0.0.1:${(canary.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => canary.close(resolve));
  await stopServices();
});

/** name → [body, expected status, expected code]. */
function attacks(): Array<[string, string | Buffer, number, string, string?]> {
  const deep = `${PROLOG}<a>${'<b>'.repeat(5000)}${'</b>'.repeat(5000)}</a>`;
  const wide = `${PROLOG}<a>${'<b/>'.repeat(300_000)}</a>`;
  return [
    ['XXE: external entity to a file', `${PROLOG}<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>${ROOT.replace('<code>0200</code>', '<code>&x;</code>')}`, 400, 'xml-doctype-forbidden'],
    ['XXE: external entity over HTTP', `${PROLOG}<!DOCTYPE r [<!ENTITY x SYSTEM "${canaryUrl}/x">]>${ROOT}`, 400, 'xml-doctype-forbidden'],
    ['XXE: parameter entity and external DTD', `${PROLOG}<!DOCTYPE r SYSTEM "${canaryUrl}/dtd" [<!ENTITY % p SYSTEM "${canaryUrl}/p"> %p;]>${ROOT}`, 400, 'xml-doctype-forbidden'],
    ['billion laughs', `${PROLOG}<!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><l>&c;</l>`, 400, 'xml-doctype-forbidden'],
    ['DOCTYPE after a comment', `${PROLOG}<!-- x --><!DOCTYPE r>${ROOT}`, 400, 'xml-doctype-forbidden'],
    ['undeclared entity reference', HEAD + ROOT.replace('<code>0200</code>', '<code>&xxe;</code>'), 400, 'xml-not-well-formed'],
    ['XInclude of a local file', HEAD + ROOT.replace('<nachrichtenkopf.g2g>', `<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="file:///etc/passwd" parse="text"/><nachrichtenkopf.g2g>`), 202, ''],
    ['schemaLocation pointing out', HEAD + ROOT.replace('<xbau:baugenehmigung.antrag.0200 ', `<xbau:baugenehmigung.antrag.0200 xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="http://www.xleitstelle.de/xbau/2/6 ${canaryUrl}/s.xsd" `), 202, ''],
    ['deeply nested elements', deep, 400, 'xml-too-deep'],
    ['too many elements', wide, 400, 'xml-too-many-elements'],
    ['second root element', `${MUENCHEN}<x/>`, 400, 'xml-multiple-roots'],
    ['trailing text', `${MUENCHEN}garbage`, 400, 'xml-trailing-content'],
    ['processing instruction smuggling a stylesheet', HEAD.replace('?>', `?><?xml-stylesheet type="text/xsl" href="${canaryUrl}/x.xsl"?>`) + ROOT, 202, ''],
    ['invalid UTF-8', Buffer.concat([Buffer.from(`${PROLOG}<a>`), Buffer.from([0xc3, 0x28, 0xff]), Buffer.from('</a>')]), 400, 'xml-not-well-formed'],
    ['NUL byte', `${PROLOG}<a>\u0000</a>`, 400, 'xml-not-well-formed'],
    ['empty body', '', 400, 'empty-body'],
    ['not XML at all', '{"json": true}', 400, 'xml-not-well-formed'],
  ];
}

describe.each(MODES)('%s mode', (mode) => {
  let router: RunningRouter;
  let logText: () => string;
  let close: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    ({ router, logText, close } = await startCityRouter(mode, {
      server: { port: 0, maxBodySize: '2MB' },
      auth: { clients: { fs: { tokenSha256: tokenHash(TOKEN), tenants: '*' }, ops: { tokenSha256: tokenHash(ADMIN), roles: ['admin'] } } },
    }));
  });
  afterAll(() => close?.());

  const post = async (body: string | Buffer, headers: Record<string, string> = {}) => {
    const response = await fetch(`${router.url}/api/v1/submissions`, {
      method: 'POST', headers: { 'content-type': 'application/xml', authorization: `Bearer ${TOKEN}`, ...headers }, body: typeof body === 'string' ? body : new Uint8Array(body),
    });
    return { status: response.status, type: response.headers.get('content-type') ?? '', text: await response.text() };
  };

  test.each(attacks())('%s', async (_name, body, status, code) => {
    const total = async () => Object.values(await router.store.countByState()).reduce((a, b) => a + b, 0);
    const before = await total();
    const answer = await post(typeof body === 'string' ? body.replace(/<nachrichtenUUID>[^<]+/, `<nachrichtenUUID>${crypto.randomUUID()}`) : body);
    expect(answer.status).toBe(status);
    if (status >= 400) {
      expect(answer.type).toContain('application/problem+json');
      expect(JSON.parse(answer.text)).toMatchObject({ code, status });
      expect(await total()).toBe(before);
    }
    expect(answer.text).not.toMatch(/root:x:0:0|CANARY-CONTENT/);
    expect(canaryHits).toBe(0);
  });

  test('an oversized body is refused before it is read whole', async () => {
    const answer = await post(`${PROLOG}<a>${'x'.repeat(3 * 1024 * 1024)}</a>`);
    expect(answer).toMatchObject({ status: 413 });
    expect(JSON.parse(answer.text).code).toBe('payload-too-large');
  });

  test('content types that are not XML are refused', async () => {
    expect((await post(variant(MUENCHEN), { 'content-type': 'application/json' })).status).toBe(415);
    expect((await post(variant(MUENCHEN), { 'content-type': 'multipart/form-data; boundary=x' })).status).toBe(415);
  });

  test('wrong, malformed and missing tokens are refused; the admin API does not take a sender token', async () => {
    for (const authorization of ['', 'Bearer ', `Bearer ${newToken()}`, `Basic ${Buffer.from('admin:admin').toString('base64')}`, `Bearer ${TOKEN} x`, `Bearer ${TOKEN.slice(0, -1)}`]) {
      const response = await fetch(`${router.url}/api/v1/submissions`, { method: 'POST', headers: { 'content-type': 'application/xml', ...(authorization ? { authorization } : {}) }, body: variant(MUENCHEN) });
      expect([authorization, response.status]).toEqual([authorization, 401]);
    }
    const admin = await fetch(`${router.url}/api/v1/admin/submissions`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(admin.status).toBe(403);
  });

  test('ids, filters and bodies of the admin API are validated, not interpolated', async () => {
    const get = (url: string) => fetch(`${router.url}${url}`, { headers: { authorization: `Bearer ${ADMIN}` } });
    expect((await get("/api/v1/admin/submissions?tenant=1' OR '1'='1")).status).toBe(400);
    expect((await get('/api/v1/admin/submissions?state=received&state=x;DROP TABLE submissions')).status).toBe(400);
    expect((await get('/api/v1/admin/submissions/..%2F..%2Fetc%2Fpasswd')).status).toBe(404);
    expect((await get('/api/v1/admin/submissions?limit=100000')).status).toBe(400);
    const proto = await fetch(`${router.url}/api/v1/admin/submissions/00000000-0000-4000-8000-000000000000/discard`, {
      method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: '{"reason":"x","__proto__":{"admin":true}}',
    });
    expect(proto.status).toBe(400);
    expect(({} as Record<string, unknown>).admin).toBeUndefined();
    expect((await get('/api/v1/admin/submissions?state=received')).status).toBe(200);
  });

  test('no log line carries a piece of an attack or of a local file', () => {
    expect(logText()).not.toMatch(/root:x:0:0|CANARY-CONTENT|DROP TABLE|etc\/passwd/);
  });
});
