// Mutual TLS at the door: HTTPS with a client CA; a client certificate on the allow-list (by SHA-256
// fingerprint) authenticates its client, an unknown certificate or none does not; tokens still work.
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { newToken, tokenHash } from '../src/auth/auth';
import type { RunningRouter } from '../src/main';
import { FIXTURES, startCityRouter, tempDir, variant } from './support/harness';

const dir = tempDir('antragsrouter-mtls-');
const file = (name: string) => path.join(dir, name);
const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });

/** A CA, the router's server certificate and two client certificates (one from the CA, one self-signed). */
function makePki(): void {
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', file('ca.key'), '-out', file('ca.pem'), '-days', '2', '-subj', '/CN=Test Stadt CA');
  for (const [name, cn] of [['server', 'localhost'], ['client', 'formserver-muenchen']]) {
    openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', file(`${name}.key`), '-out', file(`${name}.csr`), '-subj', `/CN=${cn}`);
    openssl('x509', '-req', '-in', file(`${name}.csr`), '-CA', file('ca.pem'), '-CAkey', file('ca.key'), '-CAcreateserial', '-out', file(`${name}.pem`), '-days', '2',
      ...(name === 'server' ? ['-extfile', writeExt()] : []));
  }
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', file('stranger.key'), '-out', file('stranger.pem'), '-days', '2', '-subj', '/CN=formserver-muenchen');
}
function writeExt(): string {
  const ext = file('server.ext');
  writeFileSync(ext, 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  return ext;
}

let router: RunningRouter;
let close: (() => Promise<void>) | undefined;
const TOKEN = newToken();

beforeAll(async () => {
  makePki();
  const fingerprint = new X509Certificate(readFileSync(file('client.pem'))).fingerprint256.replace(/:/g, '');
  ({ router, close } = await startCityRouter('embedded', {
    server: { port: 0, tls: { cert: { file: file('server.pem') }, key: { file: file('server.key') }, clientCa: { file: file('ca.pem') } } },
    auth: {
      clients: {
        'formserver-muenchen': { certificateSha256: fingerprint, tenants: ['09162000'] },
        'formserver-token': { tokenSha256: tokenHash(TOKEN), tenants: '*' },
      },
    },
  }));
}, 30_000);
afterAll(() => close?.());

function post(options: { cert?: string; key?: string; token?: string }): Promise<{ status: number; body: string }> {
  const body = variant(readFileSync(path.join(FIXTURES, 'valid/xbau-0200-antrag-muenchen.xml'), 'utf8'));
  return new Promise((resolve, reject) => {
    const request = https.request(`${router.url}/api/v1/submissions`, {
      method: 'POST', ca: readFileSync(file('ca.pem')),
      cert: options.cert ? readFileSync(file(options.cert)) : undefined, key: options.key ? readFileSync(file(options.key)) : undefined,
      headers: { 'content-type': 'application/xml', ...(options.token ? { authorization: `Bearer ${options.token}` } : {}) },
    }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (c: Buffer) => chunks.push(c));
      response.on('end', () => resolve({ status: response.statusCode!, body: Buffer.concat(chunks).toString() }));
    });
    request.on('error', reject);
    request.end(body);
  });
}

test('the router serves HTTPS', () => {
  expect(router.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
});

test('a client certificate on the allow-list authenticates its client', async () => {
  expect(await post({ cert: 'client.pem', key: 'client.key' })).toMatchObject({ status: 202 });
});

test('a certificate not from the client CA, or none, is not accepted', async () => {
  expect(await post({ cert: 'stranger.pem', key: 'stranger.key' })).toMatchObject({ status: 401, body: expect.stringContaining('unauthenticated') });
  expect(await post({})).toMatchObject({ status: 401 });
});

test('token callers work over the same port', async () => {
  expect(await post({ token: TOKEN })).toMatchObject({ status: 202 });
});
