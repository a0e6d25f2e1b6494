// Status callbacks and receipts: the form service hears delivered / rejected / receipt, signed with
// HMAC-SHA512 and retried until it answers 2xx; a back office reports its file number, once.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { newToken, tokenHash } from '../src/auth/auth';
import { verifyCallback } from '../src/callbacks/signature';
import type { BackOffice } from '../src/demo/back-office';
import type { RunningRouter } from '../src/main';
import { eventually, FIXTURES, MODES, startCityRouter, variant } from './support/harness';
import { stopServices } from './support/services';

const MUENCHEN = readFileSync(path.join(FIXTURES, 'valid/xbau-0200-antrag-muenchen.xml'), 'utf8');
const SECRET = 'callback-secret-' + newToken();
process.env.TEST_CALLBACK_SECRET = SECRET;
const tokens = { formserver: newToken(), other: newToken(), lbk: newToken() };

interface Received { event: string; submissionId: string; target: string; reference?: string; reason?: string; receipt?: Record<string, string>; id: string }

/** The form service's end: verifies every callback as the README tells integrators to. */
async function formService() {
  const state = { received: [] as Received[], refused: 0, failNext: 0, seen: new Set<string>() };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (state.failNext > 0) {
        state.failNext -= 1;
        res.writeHead(500).end();
        return;
      }
      const verified = verifyCallback(SECRET, req.headers as Record<string, string>, body, { seen: state.seen });
      if (!verified.ok) {
        state.refused += 1;
        res.writeHead(verified.reason === 'replayed' ? 200 : 401).end();
        return;
      }
      state.received.push(JSON.parse(body.toString()) as Received);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { state, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/callbacks`, close: () => new Promise((resolve) => server.close(resolve)) };
}

afterAll(() => stopServices());

describe.each(MODES)('%s mode', (mode) => {
  let router: RunningRouter;
  let backOffice: BackOffice;
  let close: (() => Promise<void>) | undefined;
  let fs: Awaited<ReturnType<typeof formService>>;

  beforeAll(async () => {
    fs = await formService();
    ({ router, backOffice, close } = await startCityRouter(mode, {
      auth: {
        clients: {
          formserver: { tokenSha256: tokenHash(tokens.formserver), tenants: '*', callback: { url: fs.url, secret: { env: 'TEST_CALLBACK_SECRET' } } },
          other: { tokenSha256: tokenHash(tokens.other), tenants: '*' },
          'lbk-import': { tokenSha256: tokenHash(tokens.lbk), roles: ['receipt'], targets: ['muenchen-lbk'] },
        },
      },
    }));
  });
  afterAll(async () => {
    await close?.();
    await fs?.close();
  });
  beforeEach(() => backOffice.setBehaviour(undefined));

  const submit = async () => {
    const response = await fetch(`${router.url}/api/v1/submissions`, { method: 'POST', headers: { 'content-type': 'application/xml', authorization: `Bearer ${tokens.formserver}` }, body: variant(MUENCHEN) });
    expect(response.status).toBe(202);
    return ((await response.json()) as { submissionId: string }).submissionId;
  };
  const events = (id: string) => fs.state.received.filter((r) => r.submissionId === id);
  const receipt = (id: string, body: Record<string, unknown>, token = tokens.lbk) =>
    fetch(`${router.url}/api/v1/submissions/${id}/receipts`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify(body) });

  test('delivered: a signed callback with the reference; a receipt with the file number follows once', async () => {
    const id = await submit();
    const [delivered] = await eventually(() => events(id).length >= 1 && events(id), 20_000, 'delivered callback');
    expect(delivered).toMatchObject({ event: 'delivered', target: 'muenchen-lbk', reference: expect.stringMatching(/^MUENCHEN-LBK-/) });

    expect((await receipt(id, { target: 'muenchen-lbk', status: 'accepted', fileNumber: 'LBK-2026-0815' })).status).toBe(200);
    expect((await receipt(id, { target: 'muenchen-lbk', status: 'accepted', fileNumber: 'LBK-2026-0815' })).status).toBe(200);
    await eventually(() => events(id).length >= 2, 20_000, 'receipt callback');
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(events(id).map((e) => e.event)).toEqual(['delivered', 'receipt']);
    expect(events(id)[1]).toMatchObject({ reference: 'LBK-2026-0815', receipt: { status: 'accepted', fileNumber: 'LBK-2026-0815' } });
    expect(fs.state.refused).toBe(0);
  }, 60_000);

  test('rejected: the callback names the reason; it is retried until the form service answers', async () => {
    backOffice.setBehaviour((office) => (office === 'muenchen-lbk' ? 400 : 201));
    fs.state.failNext = 2;
    const id = await submit();
    const [rejected] = await eventually(() => events(id).length >= 1 && events(id), 30_000, 'rejected callback after two failures');
    expect(rejected).toMatchObject({ event: 'rejected', target: 'muenchen-lbk', reason: 'http-status' });
    expect(fs.state.failNext).toBe(0);
  }, 60_000);

  test('receipts: only for configured targets, only for delivered deliveries, only by receipt clients', async () => {
    backOffice.setBehaviour((office) => (office === 'muenchen-lbk' ? 400 : 201));
    const id = await submit();
    await eventually(() => events(id).length >= 1, 20_000, 'rejected callback');
    expect((await receipt(id, { target: 'muenchen-lbk', status: 'accepted' })).status).toBe(409);
    expect((await receipt(id, { target: 'augsburg-boa', status: 'accepted' })).status).toBe(403);
    expect((await receipt(id, { target: 'muenchen-lbk', status: 'rejected' })).status).toBe(400);
    expect((await receipt(id, { target: 'muenchen-lbk', status: 'accepted' }, tokens.formserver)).status).toBe(403);
  }, 60_000);

  test('a sender sees only its own submissions in the status API', async () => {
    const id = await submit();
    const get = (token: string) => fetch(`${router.url}/api/v1/submissions/${id}`, { headers: { authorization: `Bearer ${token}` } });
    expect((await get(tokens.formserver)).status).toBe(200);
    expect((await get(tokens.other)).status).toBe(404);
  });
});
