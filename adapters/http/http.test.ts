// The http adapter against a real HTTP server on 127.0.0.1: what it sends, and how each answer (or its
// absence) is classified.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import type { Adapter, DeliveryRequest } from '../../src/deliver/adapter';
import httpAdapter from './index';

const log = pino({ level: 'silent' });

interface Received {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

type Handler = (request: http.IncomingMessage, response: http.ServerResponse) => void;

/** A back office whose answer each test sets; it records every request it got. */
class BackOffice {
  readonly received: Received[] = [];
  handler: Handler = (_request, response) => response.writeHead(204).end();
  private readonly server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      this.received.push({ method: request.method!, url: request.url!, headers: request.headers, body: Buffer.concat(chunks) });
      this.handler(request, response);
    });
  });

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A port nothing listens on: bound once, then released. */
async function closedPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const BODY = Buffer.concat([Buffer.from('{"antrag":"M'), Buffer.from([0xfc, 0x00, 0xff]), Buffer.from('ller"}')]);

const request = (overrides: Partial<DeliveryRequest> = {}): DeliveryRequest => ({
  submissionId: '0193a7c2-8e1f-7d3a-b5c4-2f6e8a9d0b1c',
  target: 'muenchen-lbk',
  idempotencyKey: '0193a7c2-8e1f-7d3a-b5c4-2f6e8a9d0b1c:muenchen-lbk',
  attempt: 1,
  payload: { body: BODY, contentType: 'application/json; charset=utf-8', extension: 'json' },
  attachments: [],
  facts: { messageType: '0200' },
  log,
  ...overrides,
});

async function adapterFor(config: Record<string, unknown>): Promise<Adapter> {
  const adapter = httpAdapter.create(httpAdapter.configSchema.parse(config), { target: 'muenchen-lbk', log });
  await adapter.connect();
  return adapter;
}

let backOffice: BackOffice;
let url: string;

beforeEach(async () => {
  backOffice = new BackOffice();
  url = `${await backOffice.start()}/bauantrag`;
});
afterEach(() => backOffice.stop());

describe('delivered', () => {
  it('201 with a reference in the JSON body', async () => {
    backOffice.handler = (_request, response) => response.writeHead(201, { 'Content-Type': 'application/json' }).end('{"aktenzeichen":"LBK/2026/000123","status":"eingegangen"}');
    const adapter = await adapterFor({ url, referenceField: 'aktenzeichen' });
    expect(await adapter.deliver(request())).toEqual({ status: 'delivered', reference: 'LBK/2026/000123', detail: 'HTTP 201' });
  });

  it('a numeric reference is given as text', async () => {
    backOffice.handler = (_request, response) => response.writeHead(200, { 'Content-Type': 'application/json' }).end('{"id":4711}');
    const adapter = await adapterFor({ url, referenceField: 'id' });
    expect(await adapter.deliver(request())).toEqual({ status: 'delivered', reference: '4711', detail: 'HTTP 200' });
  });

  it('a reference from a response header', async () => {
    backOffice.handler = (_request, response) => response.writeHead(202, { 'X-Vorgang': 'BOA-77' }).end();
    const adapter = await adapterFor({ url, referenceHeader: 'X-Vorgang' });
    expect(await adapter.deliver(request())).toEqual({ status: 'delivered', reference: 'BOA-77', detail: 'HTTP 202' });
  });

  it('a reference from an XML answer by referencePattern', async () => {
    backOffice.handler = (_request, response) => response.writeHead(201, { 'Content-Type': 'application/xml' })
      .end('<?xml version="1.0"?><eingang><aktenzeichen> BOA/2026/0815 </aktenzeichen></eingang>');
    const adapter = await adapterFor({ url, referencePattern: '<aktenzeichen>([^<]+)</aktenzeichen>' });
    expect(await adapter.deliver(request())).toEqual({ status: 'delivered', reference: 'BOA/2026/0815', detail: 'HTTP 201' });
    backOffice.handler = (_request, response) => response.writeHead(201, { 'Content-Type': 'application/xml' }).end('<eingang/>');
    expect(await adapter.deliver(request())).toEqual({ status: 'delivered', reference: undefined, detail: 'HTTP 201' });
    expect(httpAdapter.configSchema.safeParse({ url, referencePattern: '([' }).error?.issues[0]?.message).toBe('a valid regular expression');
  });

  it('no reference when none is configured or the body is not JSON', async () => {
    backOffice.handler = (_request, response) => response.writeHead(200, { 'Content-Type': 'text/plain' }).end('danke');
    expect(await (await adapterFor({ url, referenceField: 'aktenzeichen' })).deliver(request())).toEqual({ status: 'delivered', reference: undefined, detail: 'HTTP 200' });
    backOffice.handler = (_request, response) => response.writeHead(201, { 'Content-Type': 'application/json' }).end('{"aktenzeichen":"X"}');
    expect(await (await adapterFor({ url })).deliver(request())).toEqual({ status: 'delivered', reference: undefined, detail: 'HTTP 201' });
  });
});

describe('the request', () => {
  it('POSTs the body bytes exactly, with Idempotency-Key, Content-Type and X-Submission-Id', async () => {
    backOffice.handler = (_request, response) => response.writeHead(201).end();
    const adapter = await adapterFor({ url, headers: { 'X-Mandant': '09162000' } });
    await adapter.deliver(request());
    expect(backOffice.received).toHaveLength(1);
    const [got] = backOffice.received;
    expect(got!.method).toBe('POST');
    expect(got!.url).toBe('/bauantrag');
    expect(got!.body.equals(BODY)).toBe(true);
    expect(got!.headers['idempotency-key']).toBe('0193a7c2-8e1f-7d3a-b5c4-2f6e8a9d0b1c:muenchen-lbk');
    expect(got!.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(got!.headers['x-submission-id']).toBe('0193a7c2-8e1f-7d3a-b5c4-2f6e8a9d0b1c');
    expect(got!.headers['x-mandant']).toBe('09162000');
    expect(got!.headers['content-length']).toBe(String(BODY.length));
  });

  it('PUT and a custom idempotency header; configured headers cannot override the adapter\'s own', async () => {
    const adapter = await adapterFor({ url, method: 'PUT', idempotencyHeader: 'X-Request-Key', headers: { 'Content-Type': 'text/plain', 'x-submission-id': 'spoofed' } });
    const xml = Buffer.from('<?xml version="1.0"?><a/>');
    await adapter.deliver(request({ payload: { body: xml, contentType: 'application/xml; charset=utf-8', extension: 'xml' }, idempotencyKey: 'k-1' }));
    const [got] = backOffice.received;
    expect(got!.method).toBe('PUT');
    expect(got!.headers['x-request-key']).toBe('k-1');
    expect(got!.headers['idempotency-key']).toBeUndefined();
    expect(got!.headers['content-type']).toBe('application/xml; charset=utf-8');
    expect(got!.headers['x-submission-id']).toBe('0193a7c2-8e1f-7d3a-b5c4-2f6e8a9d0b1c');
    expect(got!.body.equals(xml)).toBe(true);
  });

  it('sends the same Idempotency-Key on every attempt', async () => {
    backOffice.handler = (_request, response) => response.writeHead(503).end();
    const adapter = await adapterFor({ url });
    await adapter.deliver(request({ attempt: 1 }));
    await adapter.deliver(request({ attempt: 2 }));
    expect(backOffice.received.map((r) => r.headers['idempotency-key'])).toEqual([
      '0193a7c2-8e1f-7d3a-b5c4-2f6e8a9d0b1c:muenchen-lbk',
      '0193a7c2-8e1f-7d3a-b5c4-2f6e8a9d0b1c:muenchen-lbk',
    ]);
  });
});

describe('retryable and rejected statuses', () => {
  const answer = (status: number, headers: http.OutgoingHttpHeaders = {}) => {
    backOffice.handler = (_request, response) => response.writeHead(status, headers).end();
  };

  it('503 with Retry-After: 7 is retryable with retryAfterMs 7000', async () => {
    answer(503, { 'Retry-After': '7' });
    expect(await (await adapterFor({ url })).deliver(request())).toEqual({ status: 'retryable', reason: 'http-status', detail: 'HTTP 503', retryAfterMs: 7000 });
  });

  it('Retry-After as an HTTP date in the past means no wait', async () => {
    answer(503, { 'Retry-After': 'Wed, 21 Oct 2015 07:28:00 GMT' });
    expect(await (await adapterFor({ url })).deliver(request())).toEqual({ status: 'retryable', reason: 'http-status', detail: 'HTTP 503', retryAfterMs: 0 });
  });

  it('an unreadable Retry-After is ignored', async () => {
    answer(503, { 'Retry-After': 'bald' });
    expect(await (await adapterFor({ url })).deliver(request())).toEqual({ status: 'retryable', reason: 'http-status', detail: 'HTTP 503', retryAfterMs: undefined });
  });

  it.each([429, 408, 500, 502])('%i is retryable', async (status) => {
    answer(status);
    expect(await (await adapterFor({ url })).deliver(request())).toEqual({ status: 'retryable', reason: 'http-status', detail: `HTTP ${status}`, retryAfterMs: undefined });
  });

  it.each([400, 401, 404, 409, 422])('%i is rejected', async (status) => {
    answer(status);
    expect(await (await adapterFor({ url })).deliver(request())).toEqual({ status: 'rejected', reason: 'http-status', detail: `HTTP ${status}` });
  });

  it('a redirect is not followed and is rejected', async () => {
    answer(307, { Location: '/anderswo' });
    expect(await (await adapterFor({ url })).deliver(request())).toEqual({ status: 'rejected', reason: 'http-status', detail: 'HTTP 307' });
    expect(backOffice.received.map((r) => r.url)).toEqual(['/bauantrag']);
  });

  it('custom deliveredOn and retryOn', async () => {
    const adapter = await adapterFor({ url, deliveredOn: ['202'], retryOn: ['409', '5xx'] });
    answer(202);
    expect(await adapter.deliver(request())).toMatchObject({ status: 'delivered', detail: 'HTTP 202' });
    answer(200);
    expect(await adapter.deliver(request())).toEqual({ status: 'rejected', reason: 'http-status', detail: 'HTTP 200' });
    answer(409);
    expect(await adapter.deliver(request())).toMatchObject({ status: 'retryable', reason: 'http-status', detail: 'HTTP 409' });
    answer(429);
    expect(await adapter.deliver(request())).toEqual({ status: 'rejected', reason: 'http-status', detail: 'HTTP 429' });
    answer(504);
    expect(await adapter.deliver(request())).toMatchObject({ status: 'retryable', detail: 'HTTP 504' });
  });

  it('a status class in deliveredOn', async () => {
    const adapter = await adapterFor({ url, deliveredOn: ['2xx', '404'] });
    answer(404);
    expect(await adapter.deliver(request())).toMatchObject({ status: 'delivered', detail: 'HTTP 404' });
  });
});

describe('no answer', () => {
  it('a server that never answers is a retryable http-timeout', async () => {
    backOffice.handler = () => undefined;
    const adapter = await adapterFor({ url, timeoutMs: 200 });
    expect(await adapter.deliver(request())).toEqual({ status: 'retryable', reason: 'http-timeout', detail: 'no answer within 200 ms' });
    expect(backOffice.received).toHaveLength(1);
  });

  it('a closed port is a retryable network-error', async () => {
    const adapter = await adapterFor({ url: `http://127.0.0.1:${await closedPort()}/bauantrag` });
    expect(await adapter.deliver(request())).toEqual({ status: 'retryable', reason: 'network-error', detail: 'network error ECONNREFUSED' });
  });

  it('an answer larger than 1 MiB is not read beyond it; its status still counts (2xx: delivered, a header may carry the reference)', async () => {
    let status = 201;
    backOffice.handler = (_request, response) => {
      response.writeHead(status, { 'Content-Type': 'application/json', 'X-Aktenzeichen': 'BOA-1' });
      response.end(`{"aktenzeichen":"${'9'.repeat(1024 * 1024)}"}`);
    };
    const adapter = await adapterFor({ url, referenceField: 'aktenzeichen' });
    expect(await adapter.deliver(request())).toEqual({ status: 'delivered', reference: undefined, detail: 'HTTP 201; answer larger than 1 MiB not read' });
    const withHeader = await adapterFor({ url, referenceHeader: 'X-Aktenzeichen', referenceField: 'aktenzeichen' });
    expect(await withHeader.deliver(request())).toEqual({ status: 'delivered', reference: 'BOA-1', detail: 'HTTP 201; answer larger than 1 MiB not read' });
    status = 503;
    expect(await adapter.deliver(request())).toEqual({ status: 'retryable', reason: 'http-status', detail: 'HTTP 503', retryAfterMs: undefined });
  });

  it('a JSON answer with a byte order mark still gives its reference', async () => {
    backOffice.handler = (_request, response) => {
      response.writeHead(201, { 'Content-Type': 'application/json' });
      response.end(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"aktenzeichen":"LBK/1"}')]));
    };
    expect(await (await adapterFor({ url, referenceField: 'aktenzeichen' })).deliver(request())).toEqual({ status: 'delivered', reference: 'LBK/1', detail: 'HTTP 201' });
  });

  it('a connection reset mid-request is a retryable network-error', async () => {
    backOffice.handler = (request_) => request_.socket.destroy();
    const adapter = await adapterFor({ url });
    expect(await adapter.deliver(request())).toEqual({ status: 'retryable', reason: 'network-error', detail: 'network error ECONNRESET' });
  });
});

describe('check', () => {
  it('ok when the back office answers OPTIONS below 500', async () => {
    const adapter = await adapterFor({ url });
    expect(await adapter.check()).toEqual({ ok: true, detail: 'OPTIONS answered 204' });
    expect(backOffice.received.map((r) => [r.method, r.url])).toEqual([['OPTIONS', '/bauantrag']]);
    backOffice.handler = (_request, response) => response.writeHead(405).end();
    expect(await adapter.check()).toEqual({ ok: true, detail: 'OPTIONS answered 405' });
  });

  it('not ok when it answers 5xx', async () => {
    backOffice.handler = (_request, response) => response.writeHead(503).end();
    expect(await (await adapterFor({ url })).check()).toEqual({ ok: false, detail: 'OPTIONS answered 503' });
  });

  it('not ok when it is unreachable', async () => {
    const adapter = await adapterFor({ url: `http://127.0.0.1:${await closedPort()}/` });
    expect(await adapter.check()).toEqual({ ok: false, detail: 'unreachable (ECONNREFUSED)' });
  });
});

describe('configSchema', () => {
  it('fills defaults', () => {
    expect(httpAdapter.configSchema.parse({ url: 'https://bo.example/in' })).toEqual({
      url: 'https://bo.example/in',
      method: 'POST',
      timeoutMs: 30_000,
      headers: {},
      idempotencyHeader: 'Idempotency-Key',
      deliveredOn: ['2xx'],
      retryOn: ['408', '429', '5xx'],
      body: 'auto',
      multipart: { payloadField: 'payload', payloadFileName: 'antrag', attachmentField: 'attachments' },
    });
  });

  it('refuses non-HTTP URLs, unknown keys and bad status patterns', () => {
    expect(httpAdapter.configSchema.safeParse({ url: 'ftp://bo.example/in' }).success).toBe(false);
    const inline = httpAdapter.configSchema.safeParse({ url: 'https://user:secret@bo.example/in' });
    expect(inline.success).toBe(false);
    expect(inline.error?.issues[0]?.message).toMatch(/^credentials do not belong in the URL/);
    expect(JSON.stringify(inline.error?.issues)).not.toContain('secret@');
    const unparsable = httpAdapter.configSchema.safeParse({ url: 'not a url' });
    expect(unparsable.success).toBe(false);
    expect(unparsable.error?.issues.map((i) => i.path.join('.'))).toEqual(['url']);
    expect(httpAdapter.configSchema.safeParse({ url: 'https://bo.example/in', timeout: 5 }).success).toBe(false);
    const bad = httpAdapter.configSchema.safeParse({ url: 'https://bo.example/in', retryOn: ['6xx'] });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues[0]?.message).toBe('a status code like 503 or a class like 5xx');
    expect(httpAdapter.configSchema.safeParse({ url: 'https://bo.example/in', timeoutMs: 50 }).success).toBe(false);
  });

  it('the definition', () => {
    expect(httpAdapter.name).toBe('http');
    expect(httpAdapter.defaultConcurrency).toBe(8);
  });
});
