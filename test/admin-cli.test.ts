// The operator's command line against a running router: list dead deliveries, bulk replay with progress,
// discard, audit trail; and `token` making a token whose SHA-256 the configuration takes.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { newToken, tokenHash } from '../src/auth/auth';
import type { BackOffice } from '../src/demo/back-office';
import type { RunningRouter } from '../src/main';
import { eventually, FIXTURES, REPO, startCityRouter, variant } from './support/harness';

const run = promisify(execFile);
const MUENCHEN = readFileSync(path.join(FIXTURES, 'valid/xbau-0200-antrag-muenchen.xml'), 'utf8');
const ADMIN = newToken();
const SUBMITTER = newToken();

let router: RunningRouter;
let backOffice: BackOffice;
let close: (() => Promise<void>) | undefined;

beforeAll(async () => {
  ({ router, backOffice, close } = await startCityRouter('embedded', {
    auth: { clients: { ops: { tokenSha256: tokenHash(ADMIN), roles: ['admin', 'submit'], tenants: '*' }, fs: { tokenSha256: tokenHash(SUBMITTER), tenants: '*' } } },
  }));
});
afterAll(() => close?.());

const cli = (args: string[], token = ADMIN) =>
  run(process.execPath, ['--import', 'tsx', path.join(REPO, 'src/cli.ts'), ...args], {
    cwd: REPO, env: { ...process.env, ANTRAGSROUTER_URL: router.url, ANTRAGSROUTER_TOKEN: token }, timeout: 60_000,
  });

test('token prints a token and the SHA-256 the configuration needs', async () => {
  const { stdout } = await cli(['token', 'formserver-augsburg']);
  const token = stdout.match(/arx_[A-Za-z0-9_-]{43}/)![0];
  expect(stdout).toContain(`tokenSha256: ${tokenHash(token)}`);
  expect(stdout).toContain('formserver-augsburg:');
});

test('send uses the token from the environment', async () => {
  const file = path.join(FIXTURES, 'valid/xbau-0200-antrag-augsburg.xml');
  await expect(cli(['send', file], 'arx_wrong')).rejects.toMatchObject({ stdout: expect.stringContaining('401') });
  const { stdout } = await cli(['send', file], SUBMITTER);
  expect(stdout).toContain(': 202 ');
});

test('list, bulk replay with progress, discard and audit', async () => {
  backOffice.setBehaviour((office) => (office === 'muenchen-lbk' ? 400 : 201));
  const ids: string[] = [];
  for (let i = 0; i < 4; i += 1) {
    const response = await fetch(`${router.url}/api/v1/submissions`, { method: 'POST', headers: { 'content-type': 'application/xml', authorization: `Bearer ${SUBMITTER}` }, body: variant(MUENCHEN) });
    ids.push(((await response.json()) as { submissionId: string }).submissionId);
  }
  const status = (id: string) => fetch(`${router.url}/api/v1/submissions/${id}`, { headers: { authorization: `Bearer ${ADMIN}` } }).then((r) => r.json() as Promise<{ state: string }>);
  await eventually(async () => (await Promise.all(ids.map(status))).every((s) => s.state === 'failed'), 20_000, 'four dead deliveries');

  const listed = await cli(['admin', 'list', '--dead', '--target', 'muenchen-lbk']);
  for (const id of ids) expect(listed.stdout).toContain(id);
  expect(listed.stdout).toContain('muenchen-lbk:dead(http-status)');

  // One is given up; the other three are replayed once the back office is fixed.
  expect((await cli(['admin', 'discard', ids[0]!, '--target', 'muenchen-lbk', '--reason', 'sent twice by the citizen'])).stdout).toContain('discarded');
  backOffice.setBehaviour(undefined);
  const replayed = await cli(['admin', 'replay', '--all', '--target', 'muenchen-lbk', '--note', 'LBK import fixed']);
  expect(replayed.stdout).toContain('3 replayed, 0 failed');
  expect(replayed.stdout + replayed.stderr).toMatch(/replay \[.*\] 3\/3/);
  await eventually(async () => (await Promise.all(ids.slice(1).map(status))).every((s) => s.state === 'delivered'), 20_000, 'replayed deliveries');
  expect((await status(ids[0]!)).state).toBe('discarded');
  for (const id of ids.slice(1)) expect(backOffice.received.filter((r) => r.submissionId === id)).toHaveLength(1);

  const audit = await cli(['admin', 'audit', '--limit', '10']);
  expect(audit.stdout.split('\n').filter((l) => l.includes('  ops  replay  ')).length).toBe(3);
  expect(audit.stdout).toContain(`ops  discard  ${ids[0]}  muenchen-lbk  sent twice by the citizen`);
}, 120_000);

test('an operator action without the admin role is refused with the problem named', async () => {
  await expect(cli(['admin', 'list'], SUBMITTER)).rejects.toMatchObject({ stderr: expect.stringContaining('403 forbidden') });
});
