// Mutual TLS against a real node:https server that verifies client certificates (requestCert,
// rejectUnauthorized), with a throwaway CA, server and client certificates made by node-forge.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import type { Adapter, DeliveryRequest } from '../../src/deliver/adapter';
import { HttpBackOffice } from '../../src/testkit/http-back-office';
import httpAdapter from './index';
import { readPkcs12 } from './tls';
import { createPki } from './test-pki';

const log = pino({ level: 'silent' });
const pki = createPki();
process.env.TLS_TEST_P12_PASSPHRASE = pki.client.p12Passphrase;
const backOffice = new HttpBackOffice({ tls: { key: pki.server.key, cert: pki.server.cert, ca: pki.caPem, requestCert: true, rejectUnauthorized: true } });
beforeAll(() => backOffice.start());
afterAll(async () => {
  await backOffice.stop();
  rmSync(pki.dir, { recursive: true, force: true });
});
beforeEach(() => backOffice.reset());

const request = (): DeliveryRequest => ({
  submissionId: 's-1',
  target: 'bo',
  idempotencyKey: 's-1/bo',
  attempt: 1,
  payload: { body: Buffer.from('<a/>'), contentType: 'application/xml', extension: 'xml' },
  attachments: [],
  facts: {},
  log,
});

const adapters: Adapter[] = [];
async function adapterFor(config: Record<string, unknown>): Promise<Adapter> {
  const adapter = httpAdapter.create(httpAdapter.configSchema.parse({ url: `${backOffice.url}/in`, ...config }), { target: 'bo', log });
  adapters.push(adapter);
  await adapter.connect();
  return adapter;
}
afterEach(async () => {
  await Promise.all(adapters.splice(0).map((a) => a.close()));
});

const p12 = { pkcs12: { file: pki.client.p12File }, passphrase: { env: 'TLS_TEST_P12_PASSPHRASE' } };

it('client certificate from a PKCS#12 file with passphrase: delivered, the server saw the client', async () => {
  const adapter = await adapterFor({ tls: { caFile: pki.caFile, clientCertificate: p12 } });
  expect(await adapter.deliver(request())).toEqual({ status: 'delivered', reference: undefined, detail: 'HTTP 201' });
  const [got] = await backOffice.received();
  expect((got as { clientCertificateCN?: string }).clientCertificateCN).toBe('antragsrouter-test-client');
  expect(await adapter.check()).toEqual({ ok: true, detail: 'OPTIONS answered 204' });
});

it('client certificate from a PEM pair', async () => {
  const adapter = await adapterFor({ tls: { caFile: pki.caFile, clientCertificate: { cert: { file: pki.client.certFile }, key: { file: pki.client.keyFile } } } });
  expect(await adapter.deliver(request())).toMatchObject({ status: 'delivered' });
  expect(await backOffice.received()).toHaveLength(1);
});

it('without a client certificate the server refuses the handshake: retryable, nothing received, check not ok', async () => {
  const adapter = await adapterFor({ tls: { caFile: pki.caFile } });
  const outcome = await adapter.deliver(request());
  // TLS 1.3 sends the server's alert after the handshake; the client keeps it as the reason (client.ts).
  expect(outcome).toEqual({ status: 'retryable', reason: 'tls-failed', detail: 'TLS error ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED' });
  expect(await backOffice.received()).toEqual([]);
  expect((await adapter.check()).ok).toBe(false);
});

it('a certificate from a CA the server does not trust is refused', async () => {
  const adapter = await adapterFor({ tls: { caFile: pki.caFile, clientCertificate: { cert: { file: pki.stranger.certFile }, key: { file: pki.stranger.keyFile } } } });
  expect((await adapter.deliver(request())).status).toBe('retryable');
  expect(await backOffice.received()).toEqual([]);
});

it('without the custom CA the server certificate is not trusted: retryable tls-failed, check not ok', async () => {
  const adapter = await adapterFor({ tls: { clientCertificate: p12 } });
  expect(await adapter.deliver(request())).toEqual({ status: 'retryable', reason: 'tls-failed', detail: 'TLS error SELF_SIGNED_CERT_IN_CHAIN' });
  expect(await adapter.check()).toEqual({ ok: false, detail: 'unreachable (SELF_SIGNED_CERT_IN_CHAIN)' });
  expect(await backOffice.received()).toEqual([]);
});

it('a wrong PKCS#12 passphrase fails connect without showing the passphrase', async () => {
  process.env.TLS_TEST_WRONG = 'falsch-4711';
  const adapter = httpAdapter.create(httpAdapter.configSchema.parse({ url: backOffice.url, tls: { clientCertificate: { ...p12, passphrase: { env: 'TLS_TEST_WRONG' } } } }), { target: 'bo', log });
  const error = await adapter.connect().then(() => undefined, (e: Error) => e);
  expect(error?.message).toMatch(/^PKCS#12 file cannot be read \(wrong passphrase or not PKCS#12\)/);
  expect(error?.message).not.toContain('falsch-4711');
});

it('a missing PKCS#12 file fails connect naming the file', async () => {
  const adapter = httpAdapter.create(httpAdapter.configSchema.parse({ url: backOffice.url, tls: { clientCertificate: { pkcs12: { file: '/nonexistent/client.p12' } } } }), { target: 'bo', log });
  await expect(adapter.connect()).rejects.toThrow('secret file /nonexistent/client.p12 cannot be read (ENOENT)');
});

describe('readPkcs12', () => {
  it('gives the key and the chain with the leaf first', () => {
    const { key, cert } = readPkcs12(readFileSync(pki.client.p12File), pki.client.p12Passphrase);
    expect(key).toMatch(/^-----BEGIN RSA PRIVATE KEY-----/);
    const certs = cert.match(/-----BEGIN CERTIFICATE-----/g);
    expect(certs).toHaveLength(2);
    expect(cert.startsWith(pki.client.cert.trim().split('\n')[0]!)).toBe(true);
    expect(cert.replace(/\r/g, '').startsWith(pki.client.cert.replace(/\r/g, ''))).toBe(true);
  });

  it('refuses a file that is not PKCS#12', () => {
    const file = path.join(pki.dir, 'kein.p12');
    writeFileSync(file, 'kein pkcs12');
    expect(() => readPkcs12(readFileSync(file), 'x')).toThrow(/^PKCS#12 file cannot be read/);
  });
});
