// The amqp adapter against the conformance suite; its counterpart is the back office's own exchange and
// queue on a real RabbitMQ (AMQP_URL, else a container; test-counterpart.ts). The adapter reaches the
// broker through a TCP forwarder on loopback, so that 'down' can make the broker unreachable (listener
// closed, open connections cut) without stopping a broker other tests share. Modes: fail → the routing key
// leads to a queue that refuses new messages, so the broker nacks (retryable); reject → the routing key
// leads nowhere, so the mandatory publish is returned as unroutable (rejected).
//
// What arrived is read as the back office's consumer would: every payload message (kind=payload), its
// attachments found by the messageIds it lists, each hashed from the message received. The key is the
// messageId (= idempotency key) a consumer drops repeats by.
//
// No holdAfter: AMQP has no streaming of one message, and a broker takes a whole frame set before it
// answers; the adapter publishes each attachment as one message, bounded by maxAttachmentBytes (default
// 16 MiB, README). The suite's large attachment is 12 MiB instead of 20 MiB, so that the default bound
// takes it and any broker does: RabbitMQ 4 lowered its default max_message_size from 128 MiB to 16 MiB
// (rabbitmq-server#11455).
import { createHash } from 'node:crypto';
import type { GetMessage } from 'amqplib';
import { describeAdapterConformance, type ConformanceCounterpart, type ReceivedDelivery } from '../../src/testkit/conformance';
import { TcpProxy } from '../../src/testkit/tcp-proxy';
import { amqpUrl, stopServices } from '../../test/support/services';
import amqpAdapter from './index';
import { AmqpBackOffice } from './test-counterpart';

let backOffice: AmqpBackOffice;
let proxy: TcpProxy;
/** Every message taken from the back office's queue since the last reset (get removes them from the queue). */
const messages: GetMessage[] = [];

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

const counterpart: ConformanceCounterpart = {
  async start() {
    const url = new URL(await amqpUrl());
    backOffice = new AmqpBackOffice(url.toString());
    await backOffice.start();
    proxy = new TcpProxy({ host: url.hostname, port: Number(url.port || 5672) });
    await proxy.up();
  },
  async stop() {
    await proxy.down();
    await backOffice.stop();
    await stopServices();
  },
  async behave(mode) {
    if (mode === 'down') return proxy.down();
    await proxy.up();
    await backOffice.routeTo(mode === 'fail' ? 'refusing' : mode === 'reject' ? 'nowhere' : 'queue');
  },
  async received(): Promise<ReceivedDelivery[]> {
    messages.push(...await backOffice.received());
    const byId = new Map(messages.map((m) => [String(m.properties.messageId), m]));
    return messages.filter((m) => m.properties.headers?.kind === 'payload').map((payload) => {
      const listed = JSON.parse(String(payload.properties.headers!.attachments)) as Array<{ messageId: string; name: string }>;
      return {
        key: payload.properties.messageId as string | undefined,
        payload: payload.content,
        attachments: listed.map(({ messageId, name }) => {
          const content = byId.get(messageId)?.content;
          if (!content) throw new Error(`attachment message ${messageId} listed but not received`);
          return { name, size: content.length, sha256: sha256(content) };
        }),
      };
    });
  },
  async reset() {
    await proxy.up();
    await backOffice.routeTo('queue');
    await backOffice.received();
    messages.length = 0;
  },
  // The broker password (from AMQP_URL; 'guest' on a test broker) must not be logged.
  get secrets() {
    return [decodeURIComponent(new URL(backOffice.url).password)].filter(Boolean);
  },
};

describeAdapterConformance({
  definition: amqpAdapter,
  config: () => ({
    ...backOffice.adapterConfig({ connectTimeoutMs: 2000 }),
    url: `amqp://127.0.0.1:${proxy.port}${new URL(backOffice.url).pathname}`,
  }),
  counterpart,
  largeAttachmentBytes: 12 * 1024 * 1024,
});
