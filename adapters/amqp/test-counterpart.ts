// The amqp adapter's counterpart for tests: a back office's own exchange and queue on a real RabbitMQ
// (AMQP_URL, else a container), with unique names per instance, ways to make the broker refuse, and a
// reader for what arrived. Kept apart from the test so that a shared conformance suite can use it.
import { randomBytes } from 'node:crypto';
import { connect, type ChannelModel, type Channel, type GetMessage } from 'amqplib';

export class AmqpBackOffice {
  readonly exchange: string;
  readonly queue: string;
  /** Bound to the queue; publishing with any other routing key is unroutable. */
  readonly routingKey = 'antrag.0200';
  private readonly extraQueues: string[] = [];
  private model?: ChannelModel;
  private channel?: Channel;

  constructor(readonly url: string) {
    const id = randomBytes(4).toString('hex');
    this.exchange = `test-bo-${id}`;
    this.queue = `test-bo-${id}-in`;
  }

  /** Declares the exchange (direct) and a queue bound with `routingKey`. */
  async start(): Promise<void> {
    this.model = await connect(this.url);
    this.channel = await this.model.createChannel();
    await this.channel.assertExchange(this.exchange, 'direct', { durable: false, autoDelete: false });
    await this.channel.assertQueue(this.queue, { durable: false });
    await this.channel.bindQueue(this.queue, this.exchange, this.routingKey);
  }

  /** The broker URL without credentials. */
  get bareUrl(): string {
    const parsed = new URL(this.url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
  }

  /**
   * The adapter configuration that publishes here: the broker's credentials (from AMQP_URL) go into an
   * environment variable of this instance and are given as a secret reference, as in production.
   */
  adapterConfig(extra: Record<string, unknown> = {}): Record<string, unknown> {
    const parsed = new URL(this.url);
    const credentials: Record<string, unknown> = {};
    if (parsed.username) {
      const variable = `TEST_BO_AMQP_PASSWORD_${this.exchange.replace(/\W/g, '_')}`;
      process.env[variable] = decodeURIComponent(parsed.password);
      Object.assign(credentials, { username: decodeURIComponent(parsed.username), password: { env: variable } });
    }
    return { url: this.bareUrl, ...credentials, exchange: this.exchange, routingKey: this.routingKey, ...extra };
  }

  /** Every message now in the queue, in order (removed from it). */
  async received(): Promise<GetMessage[]> {
    const messages: GetMessage[] = [];
    for (;;) {
      const message = await this.channel!.get(this.queue, { noAck: true });
      if (message === false) return messages;
      messages.push(message);
    }
  }

  /**
   * Binds `routingKey` to a queue of length 0 that refuses new messages (`x-overflow: reject-publish`):
   * the broker answers every publish there with a nack.
   */
  async refuseWithNack(routingKey: string): Promise<void> {
    const queue = `${this.queue}-full-${this.extraQueues.length}`;
    this.extraQueues.push(queue);
    await this.channel!.assertQueue(queue, { durable: false, arguments: { 'x-max-length': 0, 'x-overflow': 'reject-publish' } });
    await this.channel!.bindQueue(queue, this.exchange, routingKey);
  }

  /**
   * Where `routingKey` leads from now on: the back office's queue; a queue that refuses new messages (the
   * broker nacks every publish); or nowhere (a mandatory publish comes back as unroutable).
   */
  async routeTo(destination: 'queue' | 'refusing' | 'nowhere'): Promise<void> {
    const refusing = `${this.queue}-refusing`;
    if (!this.extraQueues.includes(refusing)) {
      this.extraQueues.push(refusing);
      await this.channel!.assertQueue(refusing, { durable: false, arguments: { 'x-max-length': 0, 'x-overflow': 'reject-publish' } });
    }
    for (const queue of [this.queue, refusing]) await this.channel!.unbindQueue(queue, this.exchange, this.routingKey);
    if (destination === 'queue') await this.channel!.bindQueue(this.queue, this.exchange, this.routingKey);
    if (destination === 'refusing') await this.channel!.bindQueue(refusing, this.exchange, this.routingKey);
  }

  async deleteExchange(): Promise<void> {
    await this.channel!.deleteExchange(this.exchange);
  }

  async recreateExchange(): Promise<void> {
    await this.channel!.assertExchange(this.exchange, 'direct', { durable: false, autoDelete: false });
    await this.channel!.bindQueue(this.queue, this.exchange, this.routingKey);
  }

  /** Removes everything this instance declared. */
  async stop(): Promise<void> {
    if (!this.channel) return;
    for (const queue of [this.queue, ...this.extraQueues]) await this.channel.deleteQueue(queue);
    await this.channel.deleteExchange(this.exchange);
    await this.model!.close();
    this.channel = undefined;
  }
}
