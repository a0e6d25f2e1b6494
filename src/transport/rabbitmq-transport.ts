// The production transport: RabbitMQ quorum queues (amqplib), shared by any number of router instances as
// competing consumers. Publishes are confirmed by the broker before they count; a message is acked only
// after its handler's outcome is recorded; retries wait in TTL delay queues; dead letters carry the reason.
import { randomBytes } from 'node:crypto';
import amqp, { type Channel, type ChannelModel, type ConfirmChannel, type ConsumeMessage, type Options, type RecoveringChannelModel } from 'amqplib';
import type { Logger } from 'pino';
import { delayStep, DELAY_LADDER_MS, Topology } from './rabbitmq-topology';
import {
  heldSlot, invokeHandler, REDELIVERY_LIMIT, SlotLine, Slots, TransportUnavailableError, type Booking, type Disposition, type Handler, type QueueMessage, type Slot, type Transport, type TransportHealth,
} from './transport';

export interface RabbitTransportOptions {
  /** amqp:// or amqps:// URL with credentials (from AMQP_URL, never from the configuration file). */
  url: string;
  /** Prefix of every exchange and queue: one per deployment, so that several can share a broker. */
  prefix: string;
  heartbeatSeconds: number;
  log: Logger;
  /** How long a publish waits for the broker's confirm before it counts as failed (default 10 s). */
  confirmTimeoutMs?: number;
  /** Attempts to reach the broker at start-up before giving up (default 5); after that, reconnects never stop. */
  initialConnectRetries?: number;
}

/** Our own hand-over count, carried across re-publishing (the broker's x-delivery-count restarts then). */
const HANDOVERS = 'x-antragsrouter-handovers';

interface ConsumerSpec {
  queue: string;
  concurrency: number;
  handler: Handler;
  slots: Slots;
  /** Hand-overs of the broker that arrived while every slot was taken, and callers of `book`: started as slots free up. */
  line: SlotLine;
  channel?: Channel;
  consumerTag?: string;
}

const headerNumber = (value: unknown): number => (typeof value === 'number' && Number.isFinite(value) ? value : 0);

export class RabbitTransport implements Transport {
  private readonly topology: Topology;
  private readonly consumers = new Map<string, ConsumerSpec>();
  private connection: RecoveringChannelModel | undefined;
  /** The live connection and its confirm channel; undefined while disconnected. */
  private model: ChannelModel | undefined;
  private publisher: ConfirmChannel | undefined;
  private declared = new Set<string>();
  private blocked = false;
  private stopping = false;
  /** Set while the publisher channel's buffer is full: later publishes wait for `drain`. */
  private drained: Promise<void> | undefined;
  private readonly returned = new Set<string>();
  private readonly nonce = randomBytes(4).toString('hex');
  private sequence = 0;
  private lastError: string | undefined;

  private constructor(private readonly options: RabbitTransportOptions) {
    this.topology = new Topology(options.prefix, REDELIVERY_LIMIT);
  }

  /** Connects (retrying a few times), declares the topology and keeps reconnecting for as long as it runs. */
  static async open(options: RabbitTransportOptions): Promise<RabbitTransport> {
    const transport = new RabbitTransport(options);
    await transport.connect();
    return transport;
  }

  private async connect(): Promise<void> {
    const { log } = this.options;
    const url = new URL(this.options.url);
    if (!url.searchParams.has('heartbeat')) url.searchParams.set('heartbeat', String(this.options.heartbeatSeconds));
    const connection = await amqp.connect(url.toString(), {
      // amqplib leaves Nagle's algorithm on; with it, every confirmed publish waits ~40 ms for the delayed ACK.
      noDelay: true,
      // A broker that accepts TCP but never completes the AMQP handshake (seen with a wedged node) must not
      // hang start-up or a reconnect for ever: give up after 10 s and let recovery try again.
      timeout: 10_000,
      clientProperties: { connection_name: `antragsrouter ${this.options.prefix}` },
      recovery: {
        initialDelay: 200,
        maxDelay: 15_000,
        initialMaxRetries: this.options.initialConnectRetries ?? 5,
        maxRetries: Infinity,
        waitForConnect: false,
        setup: (model: ChannelModel) => this.setup(model),
      },
    });
    this.connection = connection;
    connection.on('connect', () => {
      this.lastError = undefined;
      log.info({ event: 'amqp-connected', prefix: this.options.prefix }, 'connected to RabbitMQ');
    });
    connection.on('disconnect', (error: Error) => {
      this.detach();
      this.lastError = error.message;
      if (!this.stopping) log.warn({ event: 'amqp-disconnected', reason: error.message }, 'RabbitMQ connection lost; reconnecting');
    });
    connection.on('connect-failed', (error: Error) => {
      this.lastError = error.message;
      log.warn({ event: 'amqp-connect-failed', reason: error.message }, 'connecting to RabbitMQ failed');
    });
    connection.on('blocked', (reason: string) => {
      this.blocked = true;
      log.warn({ event: 'amqp-blocked', reason }, 'RabbitMQ blocked publishing (resource alarm)');
    });
    connection.on('unblocked', () => {
      this.blocked = false;
      log.info({ event: 'amqp-unblocked' }, 'RabbitMQ unblocked publishing');
    });
    connection.on('error', (error: Error) => log.warn({ event: 'amqp-error', reason: error.message }, 'RabbitMQ connection error'));
    connection.on('handler-error', (error: Error, event: string) => log.error({ err: error, event }, 'RabbitMQ event handler failed'));
    await connection.waitForConnect();
  }

  /** Runs after every (re)connect, before the connection is used: topology, publisher channel, consumers. */
  private async setup(model: ChannelModel): Promise<void> {
    const { log } = this.options;
    model.on('error', (error: Error) => log.warn({ event: 'amqp-error', reason: error.message }, 'RabbitMQ connection error'));
    const publisher = await model.createConfirmChannel();
    this.watchChannel(model, publisher, 'publisher');
    publisher.on('return', (message: ConsumeMessage) => {
      const id = message.properties.correlationId as string | undefined;
      if (id) this.returned.add(id);
    });
    const t = this.topology;
    await publisher.assertExchange(t.exchange, 'direct', { durable: true });
    await publisher.assertExchange(t.deadExchange, 'fanout', { durable: true });
    await publisher.assertQueue(t.deadQueue, t.deadQueueOptions());
    await publisher.bindQueue(t.deadQueue, t.deadExchange, '');
    for (const step of DELAY_LADDER_MS) {
      await publisher.assertExchange(t.delayExchange(step), 'fanout', { durable: true });
      await publisher.assertQueue(t.delayQueue(step), t.delayQueueOptions(step));
      await publisher.bindQueue(t.delayQueue(step), t.delayExchange(step), '');
    }
    this.declared = new Set();
    for (const queue of this.consumers.keys()) await this.declare(publisher, queue);
    this.model = model;
    this.publisher = publisher;
    this.drained = undefined;
    for (const spec of this.consumers.values()) await this.startConsumer(model, spec);
  }

  /** An unexpected channel close (a broker error on it) is handled like a lost connection: reconnect all. */
  private watchChannel(model: ChannelModel, channel: Channel, role: string): void {
    const { log } = this.options;
    channel.on('error', (error: Error) => log.warn({ event: 'amqp-channel-error', role, reason: error.message }, 'RabbitMQ channel error'));
    channel.on('close', () => {
      if (this.stopping || this.model !== model) return;
      log.warn({ event: 'amqp-channel-closed', role }, 'RabbitMQ channel closed unexpectedly; reconnecting');
      model.close().catch(() => undefined);
    });
  }

  private detach(): void {
    this.model = undefined;
    this.publisher = undefined;
    this.drained = undefined;
    for (const spec of this.consumers.values()) {
      spec.channel = undefined;
      spec.consumerTag = undefined;
      // Their channel is gone: the broker hands them out again (here after reconnecting, or elsewhere).
      spec.line.dismiss();
    }
  }

  private async declare(channel: Channel, queue: string): Promise<void> {
    if (this.declared.has(queue)) return;
    const name = this.topology.workQueue(queue);
    await channel.assertQueue(name, this.topology.workQueueOptions());
    await channel.bindQueue(name, this.topology.exchange, queue);
    this.declared.add(queue);
  }

  private async startConsumer(model: ChannelModel, spec: ConsumerSpec): Promise<void> {
    const channel = await model.createChannel();
    this.watchChannel(model, channel, `consumer ${spec.queue}`);
    // Bounded prefetch: the broker hands this instance at most `concurrency` unacked messages of the queue.
    await channel.prefetch(spec.concurrency);
    spec.channel = channel;
    const { consumerTag } = await channel.consume(this.topology.workQueue(spec.queue), (message) => {
      if (!message) {
        // Cancelled by the broker (queue deleted): start over with a fresh topology.
        if (!this.stopping) model.close().catch(() => undefined);
        return;
      }
      // While stopping, new hand-overs are left unacked: they go back to the queue when the connection closes.
      if (this.stopping) return;
      // Prefetch bounds the broker's hand-overs, but messages run in reserved slots take slots too: beyond
      // `concurrency` in all, a hand-over waits in line for a slot — and is dropped should its channel be
      // gone by then (the broker hands it out again), the next in line starting instead.
      const start = () => spec.slots.run((freeSlot) => this.handle(spec, channel, message, freeSlot));
      if (spec.slots.free > 0) start();
      else spec.line.enqueue(() => (spec.channel === channel ? start() : spec.line.next()));
    }, { noAck: false });
    spec.consumerTag = consumerTag;
  }

  /** Runs a message the broker handed out, carries out the disposition, then acks (or leaves it to be handed out again). */
  private async handle(spec: ConsumerSpec, channel: Channel, message: ConsumeMessage, freeSlot: () => void): Promise<void> {
    const headers = message.properties.headers ?? {};
    const deliveryCount = headerNumber(headers[HANDOVERS]) + headerNumber(headers['x-delivery-count']) + 1;
    const key = String(message.properties.messageId ?? '');
    try {
      await this.run(spec, key, message.content, headers, deliveryCount, freeSlot);
      channel.ack(message);
    } catch (error) {
      // Not settled: the message stays unacked and the broker hands it out again (at the latest when this
      // channel closes); the handlers are idempotent, so that changes nothing twice.
      this.options.log.warn({ queue: spec.queue, key, reason: (error as Error).message }, 'settling a message failed; it will be handed out again');
      try {
        channel.nack(message, false, true);
      } catch {
        // The channel is gone; the broker requeues what it had handed out on it.
      }
    }
  }

  /**
   * Hands a message to its handler and carries out the disposition: a retry is re-published (to a delay
   * queue), a dead letter to the dead letters, each confirmed. Rejects only when that publish failed.
   */
  private async run(spec: ConsumerSpec, key: string, content: Buffer, headers: Record<string, unknown>, deliveryCount: number, freeSlot: () => void): Promise<Disposition> {
    let disposition: Disposition;
    let body: Record<string, string> | undefined;
    try {
      body = JSON.parse(content.toString('utf8')) as Record<string, string>;
    } catch {
      body = undefined;
    }
    if (!body || typeof body !== 'object') {
      disposition = { kind: 'dead', reason: 'malformed-queue-message' };
    } else {
      disposition = await invokeHandler(spec.handler, { key, body, deliveryCount, freeSlot }, spec.queue, this.options.log);
    }
    if (disposition.kind === 'retry') {
      const step = delayStep(disposition.delayMs);
      const exchange = step === undefined ? this.topology.exchange : this.topology.delayExchange(step);
      await this.send(exchange, spec.queue, content, { messageId: key, headers: { ...headers, [HANDOVERS]: deliveryCount } });
    } else if (disposition.kind === 'dead') {
      await this.send(this.topology.deadExchange, spec.queue, content, {
        messageId: key,
        headers: { ...headers, [HANDOVERS]: deliveryCount, 'x-antragsrouter-reason': disposition.reason, 'x-antragsrouter-queue': spec.queue, 'x-antragsrouter-dead-at': new Date().toISOString() },
      });
    }
    return disposition;
  }

  /** Publishes with `mandatory` and waits for the broker's confirm; an unroutable message fails. */
  private async send(exchange: string, routingKey: string, content: Buffer, options: Options.Publish): Promise<void> {
    if (this.drained) await this.drained;
    const channel = this.publisher;
    if (!channel || this.blocked) throw this.unavailable();
    const correlationId = `${this.nonce}-${(this.sequence += 1)}`;
    const timeoutMs = this.options.confirmTimeoutMs ?? 10_000;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new TransportUnavailableError(`RabbitMQ did not confirm a publish within ${timeoutMs} ms`)), timeoutMs);
      const written = channel.publish(exchange, routingKey, content, {
        ...options, correlationId, persistent: true, mandatory: true, contentType: 'application/json',
      }, (error) => {
        clearTimeout(timer);
        const wasReturned = this.returned.delete(correlationId);
        if (error) reject(new TransportUnavailableError('RabbitMQ refused the message (nack or channel closed)', { cause: error }));
        else if (wasReturned) reject(new TransportUnavailableError(`RabbitMQ could not route the message to ${routingKey}`));
        else resolve();
      });
      if (!written && !this.drained) {
        // The socket buffer is full: hold further publishes until it drains, instead of buffering without bound.
        this.drained = new Promise<void>((resolve) => {
          const done = () => {
            this.drained = undefined;
            resolve();
          };
          channel.once('drain', done);
          channel.once('close', done);
        });
      }
    });
  }

  private unavailable(): TransportUnavailableError {
    if (this.stopping) return new TransportUnavailableError('the transport is shutting down');
    if (this.blocked) return new TransportUnavailableError('RabbitMQ blocks publishing (resource alarm)');
    return new TransportUnavailableError(`RabbitMQ is not connected${this.lastError ? ` (${this.lastError})` : ''}`);
  }

  async publish(queue: string, message: QueueMessage): Promise<void> {
    const channel = this.publisher;
    // While stopping, handlers in flight may still settle (re-publish for a retry), but nothing new is taken.
    if (!channel || this.stopping) throw this.unavailable();
    if (!this.declared.has(queue)) {
      try {
        await this.declare(channel, queue);
      } catch (error) {
        throw new TransportUnavailableError(`declaring queue ${queue} failed`, { cause: error });
      }
    }
    await this.send(this.topology.exchange, queue, Buffer.from(JSON.stringify(message.body)), { messageId: message.key });
  }

  book(queue: string, waitMs: number): Booking | undefined {
    const spec = this.consumers.get(queue);
    if (!spec || !this.canRunNow(spec)) return undefined;
    // A slot free: then none waits in line (a freed slot starts the first in line at once).
    if (spec.slots.free > 0) return { slot: this.slot(spec) };
    return spec.line.join(waitMs, () => (this.canRunNow(spec) ? this.slot(spec) : undefined));
  }

  /** Only while consuming and able to publish (a retry or dead letter of a run must be publishable). */
  private canRunNow(spec: ConsumerSpec): boolean {
    return Boolean(spec.channel && this.publisher && !this.blocked && !this.stopping);
  }

  private slot(spec: ConsumerSpec): Slot {
    return heldSlot((placeholder) => spec.slots.run(placeholder), (message, freeSlot) => this.run(spec, message.key, Buffer.from(JSON.stringify(message.body)), {}, 1, freeSlot));
  }

  consume(queue: string, concurrency: number, handler: Handler): void {
    if (this.consumers.has(queue)) throw new Error(`queue ${queue} is consumed already`);
    const line = new SlotLine(concurrency);
    // Each freed slot starts the first in line (a hand-over, a caller of `book`).
    const slots = new Slots(concurrency, (heldMs) => {
      line.held(heldMs);
      if (!this.stopping) line.next();
    });
    const spec: ConsumerSpec = { queue, concurrency, handler, slots, line };
    this.consumers.set(queue, spec);
    const { model, publisher } = this;
    if (!model || !publisher) return; // started by the next setup
    (async () => {
      await this.declare(publisher, queue);
      await this.startConsumer(model, spec);
    })().catch((error: unknown) => {
      this.options.log.warn({ queue, reason: (error as Error).message }, 'starting a consumer failed; reconnecting');
      model.close().catch(() => undefined);
    });
  }

  health(): TransportHealth {
    if (this.publisher && !this.blocked && !this.stopping) return { ok: true, detail: 'connected' };
    return { ok: false, detail: this.unavailable().message };
  }

  /**
   * Stops taking messages, waits up to `graceMs` for handlers in flight, then closes the connection. What is
   * still unacked then goes back to its queue and is handed out again (to another instance, or after restart).
   * Consumers are deliberately not cancelled first: a quorum queue returns a cancelled consumer's unacked
   * messages at once, so the acks of the handlers still finishing would be lost and their work repeated.
   */
  async depth(): Promise<Record<string, number>> {
    const model = this.model;
    if (!model) throw this.unavailable();
    // A channel of its own: checking a queue that vanished closes the channel it was asked on.
    const channel = await model.createChannel();
    channel.on('error', () => undefined);
    try {
      const t = this.topology;
      const depth: Record<string, number> = {};
      for (const queue of this.consumers.keys()) depth[queue] = (await channel.checkQueue(t.workQueue(queue))).messageCount;
      let delayed = 0;
      for (const step of DELAY_LADDER_MS) delayed += (await channel.checkQueue(t.delayQueue(step))).messageCount;
      return { ...depth, delayed, dead: (await channel.checkQueue(t.deadQueue)).messageCount };
    } finally {
      await channel.close().catch(() => undefined);
    }
  }

  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    for (const spec of this.consumers.values()) spec.line.dismiss();
    const inFlight = [...this.consumers.values()].flatMap((spec) => [...spec.slots.inFlight]);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled(inFlight), new Promise((resolve) => { timer = setTimeout(resolve, graceMs); })]);
    clearTimeout(timer);
    // Channels first, each waiting for the broker's close-ok: by then it has applied the acks sent on it.
    // Closing only the connection raced with the last acks (seen with quorum queues: acked messages came back).
    await Promise.allSettled([...this.consumers.values()].map((spec) => spec.channel?.close()));
    await this.connection?.close();
    this.detach();
  }

  /** Exchange and queue names this transport uses (for tests and operators' cleanup). */
  names(): { exchanges: string[]; queues: string[] } {
    return this.topology.names(this.consumers.keys());
  }
}
