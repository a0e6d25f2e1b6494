// Secrets never reach the logs: a router (in-process, embedded mode) delivers through the http adapter
// with OAuth2 client credentials and a PKCS#12 client certificate to an HTTPS back office that verifies
// client certificates, and with basic auth to another; the back office revokes the first token, so the
// 401 refresh path runs too. Every log line (debug level) is captured and searched for every secret.
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { HttpBackOffice } from '../src/testkit/http-back-office';
import type { RunningRouter } from '../src/main';
import { createPki } from '../adapters/http/test-pki';
import { TokenServer } from '../adapters/http/test-token-server';
import { captureLog, cityConfig, eventually, FIXTURES, getStatus, post, startTestRouter, tempDir, variant } from './support/harness';

const CLIENT_SECRET = 'oauth-Client-Secret-31415';
const PASSWORD = 'basic-Passwort-27182';
const pki = createPki();
const tokens = new TokenServer('router-muc', CLIENT_SECRET);
const lbk = new HttpBackOffice({
  tls: { key: pki.server.key, cert: pki.server.cert, ca: pki.caPem, requestCert: true, rejectUnauthorized: true },
  authorize: (request) => tokens.accepts(request.headers.authorization),
});
const bob = new HttpBackOffice({ authorize: (request) => request.headers.authorization === `Basic ${Buffer.from(`router:${PASSWORD}`).toString('base64')}` });
let router: RunningRouter;
let logText: () => string;

beforeAll(async () => {
  process.env.LOGTEST_CLIENT_SECRET = CLIENT_SECRET;
  process.env.LOGTEST_P12_PASSPHRASE = pki.client.p12Passphrase;
  process.env.LOGTEST_PASSWORD = PASSWORD;
  const tokenUrl = await tokens.start();
  await Promise.all([lbk.start(), bob.start()]);
  const dir = tempDir();
  const config = cityConfig(dir, 'http://127.0.0.1:9');
  const targets = config.targets as Record<string, Record<string, unknown>>;
  targets['muenchen-lbk'] = {
    adapter: 'http',
    mapping: 'xbau-bauantrag-json',
    config: {
      url: `${lbk.url}/antraege`,
      referenceField: 'aktenzeichen',
      auth: { type: 'oauth2', tokenUrl, clientId: 'router-muc', clientSecret: { env: 'LOGTEST_CLIENT_SECRET' } },
      tls: { caFile: pki.caFile, clientCertificate: { pkcs12: { file: pki.client.p12File }, passphrase: { env: 'LOGTEST_P12_PASSPHRASE' } } },
    },
  };
  targets['nuernberg-bob'] = { adapter: 'http', mapping: 'xml-passthrough', config: { url: `${bob.url}/in`, auth: { type: 'basic', username: 'router', password: { env: 'LOGTEST_PASSWORD' } } } };
  const captured = captureLog();
  logText = captured.text;
  router = await startTestRouter(config, captured.log);
});

afterAll(async () => {
  await router?.close();
  await Promise.all([lbk.stop(), bob.stop(), tokens.stop()]);
  rmSync(pki.dir, { recursive: true, force: true });
});

const settled = (id: string) => eventually(async () => {
  const status = await getStatus(router.url, id);
  return ['delivered', 'failed', 'parked'].includes(status.state) && status;
}, 15_000, `submission ${id} to settle`);

it('delivers with OAuth2 + client certificate and with basic auth, records the Aktenzeichen, and logs no secret', async () => {
  const muenchen = readFileSync(path.join(FIXTURES, 'valid', 'xbau-0200-antrag-muenchen.xml'), 'utf8');
  const first = await post(router.url, variant(muenchen));
  expect((await settled(first.json.submissionId as string)).state).toBe('delivered');
  tokens.valid.clear(); // the back office forgets every token: the next delivery gets a 401 and refreshes
  const second = await post(router.url, variant(muenchen));
  const status = await settled(second.json.submissionId as string);
  expect(status.state).toBe('delivered');
  expect(status.deliveries).toEqual([expect.objectContaining({ target: 'muenchen-lbk', state: 'delivered', reference: expect.stringMatching(/^AZ-\d+$/) })]);
  expect(lbk.unauthorized).toBe(1);
  expect(tokens.requests).toBe(2);
  expect(lbk.requests.filter((r) => r.method === 'POST').map((r) => r.clientCertificateCN)).toEqual(['antragsrouter-test-client', 'antragsrouter-test-client']);

  const third = await post(router.url, variant(muenchen, { ags: '09564000' }));
  expect((await settled(third.json.submissionId as string)).state).toBe('delivered');
  expect(bob.unauthorized).toBe(0);

  const text = logText();
  expect(text).toContain('delivered');
  expect(text).toContain('http-auth-refused'); // the adapter's own lines are in the capture too
  for (const secret of [CLIENT_SECRET, PASSWORD, pki.client.p12Passphrase, Buffer.from(`router:${PASSWORD}`).toString('base64'), Buffer.from(`router-muc:${CLIENT_SECRET}`).toString('base64')]) {
    expect(text.includes(secret)).toBe(false);
  }
  expect(text).not.toMatch(/token-\d+-[a-z0-9]+/);
  expect(text).not.toMatch(/PRIVATE KEY/);
});
