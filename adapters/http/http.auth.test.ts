// Authentication of the http adapter, checked server-side by real servers on loopback: basic, bearer,
// OAuth2 client credentials against an express token endpoint that counts its requests. Credentials come
// only from secret references, and no credential reaches a log line.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import pino from 'pino';
import type { Adapter, DeliveryRequest } from '../../src/deliver/adapter';
import { SecretMissingError } from '../../src/config/secret';
import { HttpBackOffice } from '../../src/testkit/http-back-office';
import { OAuth2TokenSource } from './auth';
import { createHttpClient, type HttpClient } from './client';
import httpAdapter from './index';
import { TokenServer } from './test-token-server';

const PASSWORD = 'Pa55-wört:mit:Doppelpunkt';
const BEARER = 'bearer-7f3e9a1c';
const CLIENT_SECRET = 'client-secret-c0ffee';
process.env.AUTH_TEST_PASSWORD = PASSWORD;
process.env.AUTH_TEST_BEARER = BEARER;
process.env.AUTH_TEST_CLIENT_SECRET = CLIENT_SECRET;

const logLines: string[] = [];
const log = pino({ level: 'trace' }, new Writable({
  write(chunk: Buffer, _encoding, callback) {
    logLines.push(chunk.toString());
    callback();
  },
}));

let serial = 0;
const request = (): DeliveryRequest => {
  serial += 1;
  return {
    submissionId: `sub-${serial}`,
    target: 'bo',
    idempotencyKey: `sub-${serial}/bo`,
    attempt: 1,
    payload: { body: Buffer.from('{"antrag":1}'), contentType: 'application/json', extension: 'json' },
    attachments: [],
    facts: {},
    log: log.child({ submissionId: `sub-${serial}` }),
  };
};

const adapters: Adapter[] = [];
async function adapterFor(config: Record<string, unknown>): Promise<Adapter> {
  const adapter = httpAdapter.create(httpAdapter.configSchema.parse(config), { target: 'bo', log });
  adapters.push(adapter);
  await adapter.connect();
  return adapter;
}
afterEach(async () => {
  await Promise.all(adapters.splice(0).map((a) => a.close()));
});

describe('basic', () => {
  const backOffice = new HttpBackOffice({ authorize: (r) => r.headers.authorization === `Basic ${Buffer.from(`fachverfahren:${PASSWORD}`).toString('base64')}` });
  beforeAll(() => backOffice.start());
  afterAll(() => backOffice.stop());
  beforeEach(() => backOffice.reset());

  it('sends user and password from an environment variable; the server accepts', async () => {
    const adapter = await adapterFor({ url: backOffice.url, auth: { type: 'basic', username: 'fachverfahren', password: { env: 'AUTH_TEST_PASSWORD' } } });
    expect(await adapter.deliver(request())).toMatchObject({ status: 'delivered' });
    expect(backOffice.unauthorized).toBe(0);
  });

  it('a wrong password is refused (401 rejected, no retry loop for basic)', async () => {
    process.env.AUTH_TEST_WRONG = 'falsch';
    const adapter = await adapterFor({ url: backOffice.url, auth: { type: 'basic', username: 'fachverfahren', password: { env: 'AUTH_TEST_WRONG' } } });
    expect(await adapter.deliver(request())).toEqual({ status: 'rejected', reason: 'http-status', detail: 'HTTP 401' });
    expect(backOffice.unauthorized).toBe(1);
  });
});

describe('bearer', () => {
  const backOffice = new HttpBackOffice({ authorize: (r) => r.headers.authorization === `Bearer ${BEARER}` });
  beforeAll(() => backOffice.start());
  afterAll(() => backOffice.stop());
  beforeEach(() => backOffice.reset());

  it('sends the token from a secret file (its trailing newline dropped)', async () => {
    const dir = mkdtempSync('/tmp/bearer-');
    writeFileSync(`${dir}/token`, `${BEARER}\n`);
    try {
      const adapter = await adapterFor({ url: backOffice.url, auth: { type: 'bearer', token: { file: `${dir}/token` } } });
      expect(await adapter.deliver(request())).toMatchObject({ status: 'delivered' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('API key header', () => {
  const backOffice = new HttpBackOffice({ authorize: (r) => r.headers['x-api-key'] === BEARER && r.headers.authorization === undefined });
  beforeAll(() => backOffice.start());
  afterAll(() => backOffice.stop());

  it('sends the key from a secret reference in the named header, and no Authorization', async () => {
    const adapter = await adapterFor({ url: backOffice.url, auth: { type: 'header', name: 'X-API-Key', value: { env: 'AUTH_TEST_BEARER' } } });
    expect(await adapter.deliver(request())).toMatchObject({ status: 'delivered' });
    expect(backOffice.unauthorized).toBe(0);
  });
});

describe('secrets in configuration', () => {
  it('an inline string is refused by the schema: credentials must be secret references', () => {
    const parsed = httpAdapter.configSchema.safeParse({ url: 'https://bo.example/', auth: { type: 'bearer', token: 'inline-token' } });
    expect(parsed.success).toBe(false);
    const basic = httpAdapter.configSchema.safeParse({ url: 'https://bo.example/', auth: { type: 'basic', username: 'u', password: 'inline' } });
    expect(basic.success).toBe(false);
    const key = httpAdapter.configSchema.safeParse({ url: 'https://bo.example/', auth: { type: 'header', name: 'X-API-Key', value: 'inline' } });
    expect(key.success).toBe(false);
  });

  it('credential headers under headers are refused (they would be inline secrets)', () => {
    for (const name of ['Authorization', 'proxy-authorization', 'Cookie', 'X-API-Key']) {
      const parsed = httpAdapter.configSchema.safeParse({ url: 'https://bo.example/', headers: { [name]: 'Bearer abc' } });
      expect(parsed.error?.issues[0]?.message).toBe('credentials do not belong in headers: use auth (basic, bearer, header or oauth2) with a secret reference');
    }
    expect(httpAdapter.configSchema.safeParse({ url: 'https://bo.example/', headers: { 'X-Mandant': '09162000' } }).success).toBe(true);
  });

  it('a missing secret fails connect, naming the variable and not any value', async () => {
    delete process.env.AUTH_TEST_MISSING;
    const adapter = httpAdapter.create(httpAdapter.configSchema.parse({ url: 'http://127.0.0.1:9/', auth: { type: 'bearer', token: { env: 'AUTH_TEST_MISSING' } } }), { target: 'bo', log });
    await expect(adapter.connect()).rejects.toThrow(SecretMissingError);
    await expect(adapter.connect()).rejects.toThrow('secret environment variable AUTH_TEST_MISSING is not set');
  });
});

describe('oauth2 client credentials', () => {
  const tokens = new TokenServer('antragsrouter-muc', CLIENT_SECRET);
  const backOffice = new HttpBackOffice({ authorize: (r) => tokens.accepts(r.headers.authorization) });
  let tokenUrl: string;
  const oauth = (extra: Record<string, unknown> = {}) => ({
    url: backOffice.url,
    auth: { type: 'oauth2', tokenUrl, clientId: 'antragsrouter-muc', clientSecret: { env: 'AUTH_TEST_CLIENT_SECRET' }, scope: 'antrag.write', ...extra },
  });
  beforeAll(async () => {
    tokenUrl = await tokens.start();
    await backOffice.start();
  });
  afterAll(async () => {
    await backOffice.stop();
    await tokens.stop();
  });
  beforeEach(async () => {
    await backOffice.reset();
    tokens.requests = 0;
    tokens.valid.clear();
    tokens.expiresIn = 3600;
    tokens.failWith = undefined;
  });

  it('one token for many deliveries, also when they start at once (one refresh at a time)', async () => {
    const adapter = await adapterFor(oauth());
    const outcomes = await Promise.all(Array.from({ length: 6 }, () => adapter.deliver(request())));
    expect(outcomes.map((o) => o.status)).toEqual(Array(6).fill('delivered'));
    expect(await adapter.deliver(request())).toMatchObject({ status: 'delivered' });
    expect(tokens.requests).toBe(1);
    expect(tokens.lastScope).toBe('antrag.write');
  });

  it('client authentication in the form body (client_secret_post)', async () => {
    const adapter = await adapterFor(oauth({ clientAuthentication: 'body' }));
    expect(await adapter.deliver(request())).toMatchObject({ status: 'delivered' });
    expect(tokens.requests).toBe(1);
  });

  it('a 401 from the back office drops the token, fetches one new token and sends once more', async () => {
    const adapter = await adapterFor(oauth());
    expect(await adapter.deliver(request())).toMatchObject({ status: 'delivered' });
    tokens.valid.clear(); // the back office revoked every token
    expect(await adapter.deliver(request())).toMatchObject({ status: 'delivered' });
    expect(tokens.requests).toBe(2);
    expect(backOffice.unauthorized).toBe(1);
    expect((await backOffice.received())).toHaveLength(2);
  });

  it('a back office that refuses every token: exactly one refresh and retry, then the 401 is classified', async () => {
    const refusing = new HttpBackOffice({ authorize: () => false });
    await refusing.start();
    try {
      const adapter = await adapterFor({ ...oauth(), url: refusing.url });
      expect(await adapter.deliver(request())).toEqual({ status: 'rejected', reason: 'http-status', detail: 'HTTP 401' });
      expect(tokens.requests).toBe(2);
      expect(refusing.unauthorized).toBe(2);
    } finally {
      await refusing.stop();
    }
  });

  it('a wrong client secret: retryable oauth-token-failed naming the status only', async () => {
    process.env.AUTH_TEST_WRONG_SECRET = 'nicht-das-richtige';
    const adapter = await adapterFor(oauth({ clientSecret: { env: 'AUTH_TEST_WRONG_SECRET' } }));
    expect(await adapter.deliver(request())).toEqual({ status: 'retryable', reason: 'oauth-token-failed', detail: 'token endpoint answered HTTP 401' });
    expect(await backOffice.received()).toEqual([]);
  });

  it('a failing token endpoint is retryable; the next delivery tries again', async () => {
    const adapter = await adapterFor(oauth());
    tokens.failWith = 503;
    expect(await adapter.deliver(request())).toEqual({ status: 'retryable', reason: 'oauth-token-failed', detail: 'token endpoint answered HTTP 503' });
    tokens.failWith = undefined;
    expect(await adapter.deliver(request())).toMatchObject({ status: 'delivered' });
    expect(tokens.requests).toBe(2);
  });

  describe('OAuth2TokenSource with a controlled clock', () => {
    let now = 1_000_000;
    const clients: HttpClient[] = [];
    afterEach(async () => {
      await Promise.all(clients.splice(0).map((client) => client.close()));
    });
    const source = (refreshBeforeExpirySeconds = 60) => {
      const client = createHttpClient({ timeoutMs: 30_000 });
      clients.push(client);
      return new OAuth2TokenSource(
        { type: 'oauth2', tokenUrl, clientId: 'antragsrouter-muc', clientAuthentication: 'basic', refreshBeforeExpirySeconds, defaultLifetimeSeconds: 300, clientSecret: { env: 'X' } },
        CLIENT_SECRET,
        client,
        () => now,
      );
    };

    it('cached until refreshBeforeExpirySeconds before expiry, then refreshed once', async () => {
      tokens.expiresIn = 600;
      const tokenSource = source(60);
      const first = await tokenSource.token();
      now += 539_000;
      expect(await tokenSource.token()).toBe(first);
      expect(tokens.requests).toBe(1);
      now += 1_000; // 540 s: 60 s before expiry
      const [a, b, c] = await Promise.all([tokenSource.token(), tokenSource.token(), tokenSource.token()]);
      expect(a).not.toBe(first);
      expect(new Set([a, b, c]).size).toBe(1);
      expect(tokens.requests).toBe(2);
    });

    it('without expires_in the default lifetime applies; a short-lived token is not treated as expired', async () => {
      tokens.expiresIn = undefined;
      const tokenSource = source(60);
      const first = await tokenSource.token();
      now += 239_000;
      expect(await tokenSource.token()).toBe(first);
      now += 1_000;
      const second = await tokenSource.token();
      expect(second).not.toBe(first);
      tokens.expiresIn = 10; // margin 60 s > lifetime: refresh at half the lifetime instead
      tokenSource.invalidate(second);
      const short = await tokenSource.token();
      expect(short).not.toBe(second);
      now += 4_000;
      expect(await tokenSource.token()).toBe(short);
      now += 1_000;
      expect(await tokenSource.token()).not.toBe(short);
    });

    it('invalidate only drops the token that was refused', async () => {
      const tokenSource = source();
      const first = await tokenSource.token();
      tokenSource.invalidate('some-older-token');
      expect(await tokenSource.token()).toBe(first);
      tokenSource.invalidate(first);
      expect(await tokenSource.token()).not.toBe(first);
    });
  });
});

describe('logs', () => {
  it('no password, token or client secret in any log line (trace level, including the 401 path)', () => {
    const text = logLines.join('');
    expect(text.length).toBeGreaterThan(0);
    for (const secret of [PASSWORD, BEARER, CLIENT_SECRET, Buffer.from(`fachverfahren:${PASSWORD}`).toString('base64')]) expect(text.includes(secret)).toBe(false);
    expect(text).not.toMatch(/token-\d+-/);
  });
});
