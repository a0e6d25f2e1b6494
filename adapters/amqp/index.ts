// The `amqp` adapter: publishes the mapped payload to the back office's own broker and exchange, with
// publisher confirms, `mandatory`, persistent messages and messageId = idempotency key.
//
// Outcomes: confirmed → delivered; returned as unroutable (no queue bound for the routing key) →
// rejected `amqp-unroutable`; broker nack → retryable `amqp-nack`; exchange missing → retryable
// `amqp-exchange-missing` (an operator fixes the back office's topology, the deliveries wait); connection
// errors, closed channels and confirm timeouts → retryable `network-error`.
//
// Attachments: AMQP cannot stream one message, so every attachment is published as its own message
// (bounded by `maxAttachmentBytes`; larger ones are rejected with `attachment-too-large` before anything is
// published), and the payload message is published last, listing every attachment's messageId, name,
// size, sha256 and media type. A consumer that sees the payload message can rely on its attachments being
// confirmed by the broker already.
import { readFileSync } from 'node:fs';
import { connect, type ChannelModel, type ConfirmChannel, type Options } from 'amqplib';
import { z } from 'zod';
import { defineAdapter, type DeliveryOutcome, type DeliveryRequest } from '../../src/deliver/adapter';
import { readSecret, secretRefSchema } from '../../src/config/secret';
import { AttachmentReadError, AttachmentTooLargeError, fillTemplate, readAttachmentBounded, templateValues } from '../../src/deliver/delivery-helpers';

const configSchema = z.strictObject({
  /** Broker URL with vhost, without credentials (those come from `username` / `password`). */
  url: z.url({ protocol: /^amqps?$/ }).refine((url) => !new URL(url).password, 'no password in the URL: use username and password (a secret reference)'),
  username: z.string().min(1).optional(),
  password: secretRefSchema.optional(),
  /** CA bundle (PEM file) for amqps with a private CA. */
  caFile: z.string().min(1).optional(),
  /** The back office's exchange; it is never declared by the router. `''` is the default exchange. */
  exchange: z.string(),
  /** Routing key template; `{messageType}`, `{submissionId}`, `{target}`, `{tenant}`, `{leistung}` are replaced. */
  routingKey: z.string().default('{messageType}'),
  /** Routing key template for attachment messages; default: the payload's routing key. */
  attachmentRoutingKey: z.string().optional(),
  /** Largest attachment published (each is one message held in memory while publishing). */
  maxAttachmentBytes: z.number().int().positive().max(512 * 1024 * 1024).default(16 * 1024 * 1024),
  /** Milliseconds to wait for the broker's confirm before the attempt counts as retryable. */
  confirmTimeoutMs: z.number().int().min(100).max(600_000).default(30_000),
  connectTimeoutMs: z.number().int().min(100).max(600_000).default(10_000),
  heartbeatSeconds: z.number().int().min(0).max(3600).default(30),
}).refine((c) => (c.password === undefined) === (c.username === undefined), 'username and password go together');

export type AmqpAdapterConfig = z.output<typeof configSchema>;

/** Routing keys: printable ASCII without spaces; anything else becomes `_`. */
const cleanKey = (value: string) => value.replace(/[^\x21-\x7e]/g, '_');

type Published = { kind: 'confirmed' } | { kind: 'returned' } | { kind: 'nacked' } | { kind: 'closed'; code?: number } | { kind: 'timeout' };

interface Connection {
  model: ChannelModel;
  channel: ConfirmChannel;
  /** The server's close code once the channel was closed with an error (e.g. 404 for a missing exchange). */
  closeCode?: number;
  closed: boolean;
  /** messageIds the broker returned as unroutable and whose confirm is still outstanding. */
  returned: Set<string>;
}

export default defineAdapter<AmqpAdapterConfig>({
  name: 'amqp',
  summary: 'Publish to the back office\'s own AMQP exchange (publisher confirms, mandatory)',
  configSchema,
  defaultConcurrency: 4,
  create(config, context) {
    let connectUrl: string;
    let ca: Buffer[] | undefined;
    let current: Connection | undefined;
    let opening: Promise<Connection> | undefined;

    async function openConnection(): Promise<Connection> {
      const model = await connect(connectUrl, { timeout: config.connectTimeoutMs, ca, clientProperties: { connection_name: `antragsrouter adapter amqp ${context.target}` } });
      const connection: Connection = { model, channel: undefined as unknown as ConfirmChannel, closed: false, returned: new Set() };
      // Errors arrive again as 'close'; listening here keeps them from being thrown as unhandled events.
      model.on('error', () => undefined);
      model.on('close', () => {
        connection.closed = true;
      });
      try {
        connection.channel = await model.createConfirmChannel();
      } catch (error) {
        await model.close().catch(() => undefined);
        throw error;
      }
      connection.channel.on('error', (error: Error & { code?: number }) => {
        connection.closeCode = error.code;
      });
      connection.channel.on('close', () => {
        connection.closed = true;
        void model.close().catch(() => undefined);
      });
      connection.channel.on('return', (message) => {
        if (typeof message.properties.messageId === 'string') connection.returned.add(message.properties.messageId);
      });
      return connection;
    }

    /** The open connection, or a new one (one at a time; concurrent deliveries share it). */
    async function connection(): Promise<Connection> {
      if (current && !current.closed) return current;
      opening ??= openConnection().then((opened) => (current = opened)).finally(() => {
        opening = undefined;
      });
      return opening;
    }

    function publish(conn: Connection, routingKey: string, content: Buffer, options: Options.Publish & { messageId: string }): Promise<Published> {
      return new Promise((resolve) => {
        const timer = setTimeout(() => resolve({ kind: 'timeout' }), config.confirmTimeoutMs);
        try {
          conn.channel.publish(config.exchange, routingKey, content, { ...options, mandatory: true, persistent: true }, (error: unknown) => {
            clearTimeout(timer);
            // The broker sends basic.return before the ack of the same message.
            const returned = conn.returned.delete(options.messageId);
            if (!error) resolve({ kind: returned ? 'returned' : 'confirmed' });
            else if ((error as Error).message === 'message nacked') resolve({ kind: 'nacked' });
            else resolve({ kind: 'closed', code: conn.closeCode });
          });
        } catch {
          // publish throws synchronously on a channel that is already closed.
          clearTimeout(timer);
          resolve({ kind: 'closed', code: conn.closeCode });
        }
      });
    }

    function failure(result: Exclude<Published, { kind: 'confirmed' }>, what: string): DeliveryOutcome {
      switch (result.kind) {
        case 'returned':
          return { status: 'rejected', reason: 'amqp-unroutable', detail: `${what} returned by the broker as unroutable (exchange "${config.exchange}")` };
        case 'nacked':
          return { status: 'retryable', reason: 'amqp-nack', detail: `${what} refused by the broker (nack)` };
        case 'timeout':
          return { status: 'retryable', reason: 'network-error', detail: `no confirm for ${what} within ${config.confirmTimeoutMs} ms` };
        case 'closed':
          if (result.code === 404) return { status: 'retryable', reason: 'amqp-exchange-missing', detail: `exchange "${config.exchange}" not found on the broker` };
          return { status: 'retryable', reason: 'network-error', detail: `channel closed while publishing ${what}${result.code ? ` (code ${result.code})` : ''}` };
      }
    }

    async function deliverOn(conn: Connection, request: DeliveryRequest): Promise<DeliveryOutcome> {
      const values = templateValues(request);
      const routingKey = fillTemplate(config.routingKey, values, cleanKey);
      const attachmentKey = fillTemplate(config.attachmentRoutingKey ?? config.routingKey, values, cleanKey);
      const common = {
        submissionId: request.submissionId,
        messageType: values.messageType ?? '',
        target: request.target,
        ...(request.traceparent ? { traceparent: request.traceparent } : {}),
      };
      const listed: Array<{ messageId: string; id: string; name: string; size: number; sha256: string; mediaType: string }> = [];
      for (const attachment of request.attachments) {
        const messageId = `${request.idempotencyKey}/attachments/${attachment.id}`;
        const content = await readAttachmentBounded(attachment, config.maxAttachmentBytes);
        const result = await publish(conn, attachmentKey, content, {
          messageId,
          contentType: attachment.mediaType,
          appId: 'antragsrouter',
          type: 'attachment',
          headers: { ...common, kind: 'attachment', attachmentId: attachment.id, name: attachment.name, size: content.length, sha256: attachment.sha256 },
        });
        if (result.kind !== 'confirmed') return failure(result, `attachment ${attachment.id}`);
        listed.push({ messageId, id: attachment.id, name: attachment.name, size: content.length, sha256: attachment.sha256, mediaType: attachment.mediaType });
      }
      const result = await publish(conn, routingKey, request.payload.body, {
        messageId: request.idempotencyKey,
        contentType: request.payload.contentType,
        appId: 'antragsrouter',
        type: values.messageType,
        timestamp: Math.floor(Date.now() / 1000),
        headers: { ...common, kind: 'payload', attachmentCount: listed.length, attachments: JSON.stringify(listed) },
      });
      if (result.kind !== 'confirmed') return failure(result, 'payload');
      return { status: 'delivered', reference: request.idempotencyKey, detail: `confirmed by the broker (${1 + listed.length} messages, routing key ${routingKey})` };
    }

    return {
      async connect() {
        const url = new URL(config.url);
        if (config.username !== undefined && config.password !== undefined) {
          url.username = encodeURIComponent(config.username);
          url.password = encodeURIComponent(readSecret(config.password));
        }
        url.searchParams.set('heartbeat', String(config.heartbeatSeconds));
        connectUrl = url.toString();
        ca = config.caFile ? [readFileSync(config.caFile)] : undefined;
        // The broker is not contacted here: a back office that is down must not stop the router's start.
      },
      async deliver(request): Promise<DeliveryOutcome> {
        for (const attachment of request.attachments) {
          if (attachment.size > config.maxAttachmentBytes) {
            return { status: 'rejected', reason: 'attachment-too-large', detail: `attachment ${attachment.id} has ${attachment.size} bytes, more than maxAttachmentBytes ${config.maxAttachmentBytes}` };
          }
        }
        let conn: Connection;
        try {
          conn = await connection();
        } catch (error) {
          return { status: 'retryable', reason: 'network-error', detail: `cannot connect to the broker (${describe(error)})` };
        }
        try {
          return await deliverOn(conn, request);
        } catch (error) {
          if (error instanceof AttachmentTooLargeError) return { status: 'rejected', reason: 'attachment-too-large', detail: error.message };
          if (error instanceof AttachmentReadError) return { status: 'retryable', reason: 'attachment-read-failed', detail: error.message };
          throw error;
        }
      },
      async check() {
        try {
          const conn = await connection();
          // checkExchange closes the channel it runs on when the exchange is missing: use a throwaway one.
          const probe = await conn.model.createChannel();
          probe.on('error', () => undefined);
          try {
            if (config.exchange !== '') await probe.checkExchange(config.exchange);
          } catch {
            return { ok: false, detail: `exchange "${config.exchange}" not found` };
          }
          await probe.close().catch(() => undefined);
          return { ok: true, detail: `connected; exchange "${config.exchange || '(default)'}" exists` };
        } catch (error) {
          return { ok: false, detail: `broker unreachable (${describe(error)})` };
        }
      },
      async close() {
        const closing = current;
        current = undefined;
        if (closing && !closing.closed) await closing.model.close().catch(() => undefined);
      },
    };
  },
});

/** An error's code or name, never its message (which could echo a URL with credentials). */
function describe(error: unknown): string {
  const { code, name } = error as { code?: string | number; name?: string };
  return String(code ?? name ?? 'error');
}
