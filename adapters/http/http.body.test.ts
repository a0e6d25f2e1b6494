// Request bodies of the http adapter: payload as is, multipart with streamed attachments, auto; checked
// on the wire (raw bytes of a real server) and parsed (busboy in the testkit back office).
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Readable } from 'node:stream';
import pino from 'pino';
import type { Adapter, DeliveryAttachment, DeliveryRequest } from '../../src/deliver/adapter';
import { bufferAttachment, generatedAttachment } from '../../src/testkit/attachments';
import { HttpBackOffice } from '../../src/testkit/http-back-office';
import httpAdapter from './index';

const log = pino({ level: 'silent' });
const PAYLOAD = Buffer.from('{"antrag":"Grüße"}');
const request = (attachments: DeliveryAttachment[] = []): DeliveryRequest => ({
  submissionId: 's-1',
  target: 'bo',
  idempotencyKey: 's-1/bo',
  attempt: 1,
  payload: { body: PAYLOAD, contentType: 'application/json; charset=utf-8', extension: 'json' },
  attachments,
  facts: {},
  log,
});

const adapters: Adapter[] = [];
async function adapterFor(url: string, config: Record<string, unknown> = {}): Promise<Adapter> {
  const adapter = httpAdapter.create(httpAdapter.configSchema.parse({ url, ...config }), { target: 'bo', log });
  adapters.push(adapter);
  await adapter.connect();
  return adapter;
}
afterEach(async () => {
  await Promise.all(adapters.splice(0).map((a) => a.close()));
});

/** Records the raw request bytes and headers. */
async function rawServer(): Promise<{ url: string; got: { headers: http.IncomingHttpHeaders; body: Buffer }[]; close: () => Promise<void> }> {
  const got: { headers: http.IncomingHttpHeaders; body: Buffer }[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      got.push({ headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(201).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    got,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('on the wire', () => {
  it('multipart: payload part with its type and file name, attachment parts with name, type and Content-Digest; Content-Length, not chunked', async () => {
    const raw = await rawServer();
    try {
      const plan = bufferAttachment('a1', 'lageplan.pdf', 'application/pdf', Buffer.from('%PDF-1.7 plan'));
      const adapter = await adapterFor(raw.url, { body: 'multipart', multipart: { payloadField: 'antrag', attachmentField: 'anlage', payloadFileName: 'bauantrag' } });
      expect(await adapter.deliver(request([plan]))).toMatchObject({ status: 'delivered' });
      const [{ headers, body }] = raw.got as [{ headers: http.IncomingHttpHeaders; body: Buffer }];
      expect(headers['content-type']).toMatch(/^multipart\/form-data; boundary=/);
      expect(headers['transfer-encoding']).toBeUndefined();
      expect(headers['content-length']).toBe(String(body.length));
      const text = body.toString('latin1');
      expect(text).toContain('Content-Disposition: form-data; name="antrag"; filename="bauantrag.json"\r\nContent-Type: application/json; charset=utf-8\r\n\r\n');
      expect(body.includes(PAYLOAD)).toBe(true);
      expect(text).toContain('Content-Disposition: form-data; name="anlage"; filename="lageplan.pdf"\r\nContent-Type: application/pdf\r\n');
      expect(text).toContain(`Content-Digest: sha-256=:${Buffer.from(plan.sha256, 'hex').toString('base64')}:`);
      expect(text).toContain('\r\n\r\n%PDF-1.7 plan\r\n');
    } finally {
      await raw.close();
    }
  });

  it('payload body: the exact bytes with the payload\'s content type', async () => {
    const raw = await rawServer();
    try {
      const adapter = await adapterFor(raw.url, { body: 'payload' });
      await adapter.deliver(request());
      expect(raw.got[0]!.body.equals(PAYLOAD)).toBe(true);
      expect(raw.got[0]!.headers['content-type']).toBe('application/json; charset=utf-8');
    } finally {
      await raw.close();
    }
  });
});

it('streams: while the back office reads slowly, the adapter does not read a 20 MiB attachment ahead', async () => {
  const big = generatedAttachment('a1', 'plan.tif', 20 * 1024 * 1024);
  let received = 0;
  let paused: (() => void) | undefined;
  const server = http.createServer((req, res) => {
    req.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received >= 256 * 1024 && !paused) {
        req.pause();
        paused = () => req.resume();
      }
    });
    req.on('end', () => res.writeHead(201).end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const adapter = await adapterFor(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    const outcome = adapter.deliver(request([big]));
    const deadline = Date.now() + 5000;
    while (!paused && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    await new Promise((resolve) => setTimeout(resolve, 500));
    // Read ahead is bounded by socket and stream buffers (a few MiB), far below the attachment's size.
    expect(big.produced()).toBeLessThan(big.size / 2);
    expect(paused).toBeDefined();
    paused!();
    expect(await outcome).toMatchObject({ status: 'delivered' });
    expect(big.produced()).toBe(big.size);
    expect(received).toBeGreaterThan(big.size);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

describe('modes', () => {
  const backOffice = new HttpBackOffice();
  beforeAll(() => backOffice.start());
  afterAll(() => backOffice.stop());
  beforeEach(() => backOffice.reset());

  it('auto: payload alone without attachments, multipart with them', async () => {
    const adapter = await adapterFor(backOffice.url);
    await adapter.deliver(request());
    await adapter.deliver(request([bufferAttachment('a1', 'x.txt', 'text/plain', Buffer.from('x'))]));
    const [plain, multi] = backOffice.requests;
    expect(plain!.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(multi!.headers['content-type']).toMatch(/^multipart\/form-data/);
    expect(multi!.payload.equals(PAYLOAD)).toBe(true);
    expect(multi!.attachments).toEqual([{ name: 'x.txt', size: 1, sha256: createHash('sha256').update('x').digest('hex') }]);
  });

  it('multipart without attachments still sends a multipart body with the payload part', async () => {
    const adapter = await adapterFor(backOffice.url, { body: 'multipart' });
    await adapter.deliver(request());
    expect(backOffice.requests[0]!.headers['content-type']).toMatch(/^multipart\/form-data/);
    expect(backOffice.requests[0]!.payload.equals(PAYLOAD)).toBe(true);
    expect(backOffice.requests[0]!.attachments).toEqual([]);
  });

  it('payload with attachments is rejected (attachments-not-supported), nothing is sent', async () => {
    const adapter = await adapterFor(backOffice.url, { body: 'payload' });
    const outcome = await adapter.deliver(request([bufferAttachment('a1', 'x.txt', 'text/plain', Buffer.from('x'))]));
    expect(outcome).toMatchObject({ status: 'rejected', reason: 'attachments-not-supported' });
    expect(backOffice.requests).toEqual([]);
  });

  it('an attachment that cannot be opened is retryable attachment-unavailable; the other streams are closed', async () => {
    const first = generatedAttachment('a1', 'gross.bin', 1024 * 1024);
    let firstStream: Readable | undefined;
    const tracked: DeliveryAttachment = { ...first, open: async () => (firstStream = await first.open()) };
    const broken: DeliveryAttachment = { ...bufferAttachment('a2', 'weg.pdf', 'application/pdf', Buffer.from('x')), open: () => Promise.reject(Object.assign(new Error('gone'), { code: 'ENOENT' })) };
    const adapter = await adapterFor(backOffice.url);
    expect(await adapter.deliver(request([tracked, broken]))).toEqual({ status: 'retryable', reason: 'attachment-unavailable', detail: 'attachment a2 cannot be opened (ENOENT)' });
    expect(firstStream?.destroyed).toBe(true);
    expect(backOffice.requests).toEqual([]);
  });

  it('each attempt opens the attachments afresh (a retry after 503 sends them complete again)', async () => {
    const big = generatedAttachment('a1', 'scan.tif', 3 * 1024 * 1024 + 17);
    const adapter = await adapterFor(backOffice.url);
    await backOffice.behave('fail');
    expect((await adapter.deliver(request([big]))).status).toBe('retryable');
    await backOffice.behave('accept');
    expect((await adapter.deliver(request([big]))).status).toBe('delivered');
    expect(big.opened()).toBe(2);
    expect(backOffice.requests.map((r) => r.attachments)).toEqual([
      [{ name: 'scan.tif', size: big.size, sha256: big.sha256 }],
      [{ name: 'scan.tif', size: big.size, sha256: big.sha256 }],
    ]);
  });
});

describe('reference (Aktenzeichen)', () => {
  const backOffice = new HttpBackOffice();
  beforeAll(() => backOffice.start());
  afterAll(() => backOffice.stop());

  it('from a nested JSON field by dotted path', async () => {
    const adapter = await adapterFor(backOffice.url, { referenceField: 'vorgang.aktenzeichen' });
    expect(await adapter.deliver(request())).toMatchObject({ status: 'delivered', reference: expect.stringMatching(/^AZ-\d+$/) });
  });
});
