// The http adapter against the conformance suite, twice: plain HTTP with bearer auth, and HTTPS with
// client-certificate verification (PKCS#12 client certificate, custom CA) plus OAuth2 client credentials.
import { rmSync } from 'node:fs';
import { describeAdapterConformance } from '../../src/testkit/conformance';
import { HttpBackOffice } from '../../src/testkit/http-back-office';
import httpAdapter from './index';
import { createPki } from './test-pki';
import { TokenServer } from './test-token-server';

const BEARER = 'bearer-Geheimnis-0815';
process.env.CONFORMANCE_BEARER = BEARER;
const plain = new HttpBackOffice({ authorize: (request) => request.headers.authorization === `Bearer ${BEARER}`, secrets: [BEARER] });
describeAdapterConformance({
  label: 'HTTP, bearer',
  definition: httpAdapter,
  config: () => ({ url: `${plain.url}/antraege`, auth: { type: 'bearer', token: { env: 'CONFORMANCE_BEARER' } }, referenceField: 'aktenzeichen' }),
  counterpart: plain,
});

const pki = createPki();
afterAll(() => rmSync(pki.dir, { recursive: true, force: true }));
const CLIENT_SECRET = 'client-Geheimnis-1234';
process.env.CONFORMANCE_CLIENT_SECRET = CLIENT_SECRET;
process.env.CONFORMANCE_P12_PASSPHRASE = pki.client.p12Passphrase;
const tokens = new TokenServer('antragsrouter', CLIENT_SECRET);
let tokenUrl = '';
const mutual = new HttpBackOffice({
  tls: { key: pki.server.key, cert: pki.server.cert, ca: pki.caPem, requestCert: true, rejectUnauthorized: true },
  authorize: (request) => tokens.accepts(request.headers.authorization),
  secrets: [CLIENT_SECRET, pki.client.p12Passphrase],
});
describeAdapterConformance({
  label: 'HTTPS with client certificate (PKCS#12), OAuth2',
  definition: httpAdapter,
  config: () => ({
    url: `${mutual.url}/antraege`,
    auth: { type: 'oauth2', tokenUrl, clientId: 'antragsrouter', clientSecret: { env: 'CONFORMANCE_CLIENT_SECRET' } },
    tls: { caFile: pki.caFile, clientCertificate: { pkcs12: { file: pki.client.p12File }, passphrase: { env: 'CONFORMANCE_P12_PASSPHRASE' } } },
    referenceHeader: 'X-Aktenzeichen',
  }),
  counterpart: {
    async start() {
      tokenUrl = await tokens.start();
      await mutual.start();
    },
    async stop() {
      await mutual.stop();
      await tokens.stop();
    },
    behave: (mode) => mutual.behave(mode),
    received: () => mutual.received(),
    reset: () => mutual.reset(),
    holdAfter: (bytes) => mutual.holdAfter(bytes),
    secrets: mutual.secrets,
  },
});
