// The amqp adapter against a real RabbitMQ (AMQP_URL, else a container): what arrives, how returns,
// nacks, a missing exchange and lost connections are classified, attachments, idempotency and check.
import type { Adapter } from '../../src/deliver/adapter';
import { SecretMissingError } from '../../src/config/secret';
import { amqpUrl, closeBrokerConnections, stopServices } from '../../test/support/services';
import { attachmentOf, binary, brokenAttachment, closedPort, deliveryRequest, sha256, silentLog } from '../../test/support/delivery';
import amqpAdapter from './index';
import { AmqpBackOffice } from './test-counterpart';

let url: string;
let backOffice: AmqpBackOffice;
const open: Adapter[] = [];

async function adapterFor(config: Record<string, unknown>, target = 'bo-amqp'): Promise<Adapter> {
  const adapter = amqpAdapter.create(amqpAdapter.configSchema.parse(config), { target, log: silentLog });
  await adapter.connect();
  open.push(adapter);
  return adapter;
}

beforeAll(async () => {
  url = await amqpUrl();
});
afterAll(() => stopServices());

beforeEach(async () => {
  backOffice = new AmqpBackOffice(url);
  await backOffice.start();
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((adapter) => adapter.close()));
  await backOffice.stop();
});

describe('delivered', () => {
  it('publishes the payload persistent, with messageId = idempotency key, type and headers', async () => {
    const adapter = await adapterFor(backOffice.adapterConfig({ routingKey: 'antrag.{messageType}' }));
    const request = deliveryRequest();
    const outcome = await adapter.deliver(request);
    expect(outcome).toEqual({ status: 'delivered', reference: request.idempotencyKey, detail: 'confirmed by the broker (1 messages, routing key antrag.0200)' });
    const [message, ...rest] = await backOffice.received();
    expect(rest).toEqual([]);
    expect(message!.content.equals(request.payload.body)).toBe(true);
    expect(message!.fields.routingKey).toBe('antrag.0200');
    expect(message!.properties).toMatchObject({
      messageId: request.idempotencyKey,
      contentType: 'application/json; charset=utf-8',
      deliveryMode: 2,
      appId: 'antragsrouter',
      type: '0200',
    });
    expect(message!.properties.headers).toEqual({
      submissionId: request.submissionId,
      messageType: '0200',
      target: 'back-office',
      kind: 'payload',
      attachmentCount: 0,
      attachments: '[]',
    });
  });

  it('attachments first, each its own message with identical bytes; the payload lists them last', async () => {
    const scan = binary(300_000);
    const plan = binary(70_000);
    const attachments = [attachmentOf('a1', 'lageplan.pdf', scan, 'application/pdf'), attachmentOf('a2', 'ansicht.png', plan, 'image/png')];
    const adapter = await adapterFor(backOffice.adapterConfig());
    const request = deliveryRequest({ attachments });
    expect(await adapter.deliver(request)).toMatchObject({ status: 'delivered', detail: 'confirmed by the broker (3 messages, routing key antrag.0200)' });
    const messages = await backOffice.received();
    expect(messages.map((m) => m.properties.headers?.kind)).toEqual(['attachment', 'attachment', 'payload']);
    const [first, second, payload] = messages;
    expect(first!.content.equals(scan)).toBe(true);
    expect(second!.content.equals(plan)).toBe(true);
    expect(first!.properties).toMatchObject({ messageId: `${request.idempotencyKey}/attachments/a1`, contentType: 'application/pdf', deliveryMode: 2 });
    expect(first!.properties.headers).toMatchObject({ attachmentId: 'a1', name: 'lageplan.pdf', size: scan.length, sha256: sha256(scan), submissionId: request.submissionId });
    expect(JSON.parse(payload!.properties.headers!.attachments as string)).toEqual([
      { messageId: `${request.idempotencyKey}/attachments/a1`, id: 'a1', name: 'lageplan.pdf', size: scan.length, sha256: sha256(scan), mediaType: 'application/pdf' },
      { messageId: `${request.idempotencyKey}/attachments/a2`, id: 'a2', name: 'ansicht.png', size: plan.length, sha256: sha256(plan), mediaType: 'image/png' },
    ]);
    expect(payload!.properties.headers!.attachmentCount).toBe(2);
  });

  it('a repeated attempt carries the same messageIds, so the back office can drop the copy', async () => {
    const adapter = await adapterFor(backOffice.adapterConfig());
    const attachments = [attachmentOf('a1', 'x.pdf', binary(1000))];
    const request = deliveryRequest({ attachments });
    await adapter.deliver(request);
    await adapter.deliver({ ...request, attempt: 2 });
    const ids = (await backOffice.received()).map((m) => m.properties.messageId as string);
    expect(ids).toEqual([`${request.idempotencyKey}/attachments/a1`, request.idempotencyKey, `${request.idempotencyKey}/attachments/a1`, request.idempotencyKey]);
    expect(attachments[0]!.opened).toBe(2);
  });

  it('concurrent deliveries share one connection and each gets its own outcome', async () => {
    const adapter = await adapterFor(backOffice.adapterConfig({ routingKey: '{tenant}' }));
    await backOffice.refuseWithNack('09761000');
    const requests = Array.from({ length: 12 }, (_, i) => deliveryRequest({ facts: { messageType: '0200', tenant: ['antrag.0200', '09761000', 'nowhere'][i % 3] } }));
    const outcomes = await Promise.all(requests.map((r) => adapter.deliver(r)));
    expect(outcomes.map((o) => o.status)).toEqual(Array.from({ length: 12 }, (_, i) => ['delivered', 'retryable', 'rejected'][i % 3]));
    const received = await backOffice.received();
    expect(received.map((m) => m.properties.messageId).sort()).toEqual(requests.filter((_, i) => i % 3 === 0).map((r) => r.idempotencyKey).sort());
  });
});

describe('refused by the broker', () => {
  it('an unroutable routing key is rejected (returned, mandatory)', async () => {
    const adapter = await adapterFor(backOffice.adapterConfig({ routingKey: 'niemand.hoert.zu' }));
    expect(await adapter.deliver(deliveryRequest())).toEqual({ status: 'rejected', reason: 'amqp-unroutable', detail: `payload returned by the broker as unroutable (exchange "${backOffice.exchange}")` });
    // The adapter stays usable.
    const routable = await adapterFor(backOffice.adapterConfig());
    expect((await routable.deliver(deliveryRequest())).status).toBe('delivered');
  });

  it('an unroutable attachment rejects the delivery before the payload is published', async () => {
    const adapter = await adapterFor(backOffice.adapterConfig({ attachmentRoutingKey: 'anlagen' }));
    const outcome = await adapter.deliver(deliveryRequest({ attachments: [attachmentOf('a1', 'x.pdf', binary(10))] }));
    expect(outcome).toMatchObject({ status: 'rejected', reason: 'amqp-unroutable', detail: expect.stringContaining('attachment a1') });
    expect(await backOffice.received()).toEqual([]);
  });

  it('a broker nack is retryable', async () => {
    await backOffice.refuseWithNack('voll');
    const adapter = await adapterFor(backOffice.adapterConfig({ routingKey: 'voll' }));
    expect(await adapter.deliver(deliveryRequest())).toEqual({ status: 'retryable', reason: 'amqp-nack', detail: 'payload refused by the broker (nack)' });
  });

  it('a missing exchange is retryable with its own reason, and delivery resumes once it exists', async () => {
    const adapter = await adapterFor(backOffice.adapterConfig());
    await backOffice.deleteExchange();
    expect(await adapter.deliver(deliveryRequest())).toEqual({ status: 'retryable', reason: 'amqp-exchange-missing', detail: `exchange "${backOffice.exchange}" not found on the broker` });
    expect(await adapter.check()).toEqual({ ok: false, detail: `exchange "${backOffice.exchange}" not found` });
    await backOffice.recreateExchange();
    expect((await adapter.deliver(deliveryRequest())).status).toBe('delivered');
    expect(await backOffice.received()).toHaveLength(1);
  });
});

describe('attachments over the limit', () => {
  it('a declared size over maxAttachmentBytes is rejected before anything is published', async () => {
    const adapter = await adapterFor(backOffice.adapterConfig({ maxAttachmentBytes: 1000 }));
    const big = attachmentOf('a2', 'gross.tif', binary(1001));
    const outcome = await adapter.deliver(deliveryRequest({ attachments: [attachmentOf('a1', 'klein.pdf', binary(10)), big] }));
    expect(outcome).toEqual({ status: 'rejected', reason: 'attachment-too-large', detail: 'attachment a2 has 1001 bytes, more than maxAttachmentBytes 1000' });
    expect(big.opened).toBe(0);
    expect(await backOffice.received()).toEqual([]);
  });

  it('a stream longer than its declared size is cut off at the limit and rejected', async () => {
    const adapter = await adapterFor(backOffice.adapterConfig({ maxAttachmentBytes: 100_000 }));
    const lying = attachmentOf('a1', 'x.bin', binary(500_000), 'application/octet-stream', 10);
    expect(await adapter.deliver(deliveryRequest({ attachments: [lying] }))).toEqual({ status: 'rejected', reason: 'attachment-too-large', detail: 'attachment a1 exceeds the limit of 100000 bytes' });
    expect(await backOffice.received()).toEqual([]);
  });
});

describe('a broken attachment stream', () => {
  it('is retryable attachment-read-failed, and the payload is not published', async () => {
    const adapter = await adapterFor(backOffice.adapterConfig());
    const broken = brokenAttachment('a1', 'scan.pdf', Buffer.from('half'));
    expect(await adapter.deliver(deliveryRequest({ attachments: [broken] }))).toEqual({ status: 'retryable', reason: 'attachment-read-failed', detail: 'reading attachment a1 failed (EIO)' });
    expect(await backOffice.received()).toEqual([]);
  });
});

describe('connection', () => {
  it('an unreachable broker is retryable and check says so', async () => {
    const adapter = await adapterFor({ url: `amqp://127.0.0.1:${await closedPort()}`, exchange: 'x', connectTimeoutMs: 2000 });
    expect(await adapter.deliver(deliveryRequest())).toEqual({ status: 'retryable', reason: 'network-error', detail: 'cannot connect to the broker (ECONNREFUSED)' });
    expect(await adapter.check()).toEqual({ ok: false, detail: 'broker unreachable (ECONNREFUSED)' });
  });

  it('close ends the broker connection', async () => {
    const target = `bo-amqp-close-${backOffice.exchange}`;
    const adapter = await adapterFor(backOffice.adapterConfig(), target);
    expect((await adapter.deliver(deliveryRequest())).status).toBe('delivered');
    await adapter.close();
    expect(await closeBrokerConnections(target)).toBe(0);
  });

  it('reconnects after the broker closed its connection', async () => {
    const target = `bo-amqp-${backOffice.exchange}`;
    const adapter = await adapterFor(backOffice.adapterConfig(), target);
    expect((await adapter.deliver(deliveryRequest())).status).toBe('delivered');
    expect(await closeBrokerConnections(target)).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect((await adapter.deliver(deliveryRequest())).status).toBe('delivered');
    expect(await backOffice.received()).toHaveLength(2);
  });

  it('a wrong password (from a secret reference) is retryable and never shown', async () => {
    process.env.TEST_BO_AMQP_WRONG = 'wrong-s3cret-value';
    const bad = await adapterFor({ ...backOffice.adapterConfig(), username: 'guest', password: { env: 'TEST_BO_AMQP_WRONG' } });
    const outcome = await bad.deliver(deliveryRequest());
    expect(outcome).toMatchObject({ status: 'retryable', reason: 'network-error' });
    expect(JSON.stringify(outcome)).not.toContain('wrong-s3cret-value');
    const health = await bad.check();
    expect(health.ok).toBe(false);
    expect(JSON.stringify(health)).not.toContain('wrong-s3cret-value');
    delete process.env.TEST_BO_AMQP_WRONG;
  });

  it('a missing secret fails connect, naming the variable only', async () => {
    const adapter = amqpAdapter.create(amqpAdapter.configSchema.parse({ url: backOffice.bareUrl, exchange: 'x', username: 'u', password: { env: 'TEST_BO_AMQP_UNSET' } }), { target: 't', log: silentLog });
    await expect(adapter.connect()).rejects.toThrow(new SecretMissingError({ env: 'TEST_BO_AMQP_UNSET' }, 'is not set'));
  });
});

describe('check', () => {
  it('ok when connected and the exchange exists', async () => {
    const adapter = await adapterFor(backOffice.adapterConfig());
    expect(await adapter.check()).toEqual({ ok: true, detail: `connected; exchange "${backOffice.exchange}" exists` });
    // The probe must not disturb deliveries.
    expect((await adapter.deliver(deliveryRequest())).status).toBe('delivered');
  });
});

describe('configSchema', () => {
  it('fills defaults', () => {
    expect(amqpAdapter.configSchema.parse({ url: 'amqp://bo.example/vh', exchange: 'antraege' })).toEqual({
      url: 'amqp://bo.example/vh', exchange: 'antraege', routingKey: '{messageType}', maxAttachmentBytes: 16 * 1024 * 1024,
      confirmTimeoutMs: 30_000, connectTimeoutMs: 10_000, heartbeatSeconds: 30,
    });
  });

  it('refuses a password in the URL, a user without password, unknown keys', () => {
    const inUrl = amqpAdapter.configSchema.safeParse({ url: 'amqp://u:geheim@bo.example', exchange: 'x' });
    expect(inUrl.success).toBe(false);
    expect(inUrl.error?.issues[0]?.message).toBe('no password in the URL: use username and password (a secret reference)');
    expect(amqpAdapter.configSchema.safeParse({ url: 'amqp://bo.example', exchange: 'x', username: 'u' }).success).toBe(false);
    expect(amqpAdapter.configSchema.safeParse({ url: 'amqp://bo.example', exchange: 'x', queue: 'q' }).success).toBe(false);
    expect(amqpAdapter.configSchema.safeParse({ url: 'http://bo.example', exchange: 'x' }).success).toBe(false);
  });
});
