// The transport contract: durable queues between the pipeline's stages. Embedded (SQLite) on a single
// node, RabbitMQ (quorum queues) in production mode.

/**
 * A message on a queue. `key` identifies what it is about (the submission id). The embedded transport
 * does not queue a key twice; RabbitMQ may hand out copies of one key (after a crash or a sweep), so every
 * handler must be idempotent.
 */
export interface QueueMessage {
  key: string;
  body: Record<string, string>;
}

export interface ReceivedMessage extends QueueMessage {
  /** How often this message has been handed to a consumer, this time included. */
  deliveryCount: number;
}

/** What the consumer decided; the transport carries it out. */
export type Disposition =
  | { kind: 'ack' }
  | { kind: 'retry'; delayMs: number }
  | { kind: 'dead'; reason: string };

export type Handler = (message: ReceivedMessage) => Promise<Disposition>;

export interface TransportHealth {
  ok: boolean;
  /** Operator-facing state, e.g. `connected` or why not. */
  detail: string;
}

export interface Transport {
  /** Resolves once the message is durable (embedded: committed; RabbitMQ: publisher-confirmed). */
  publish(queue: string, message: QueueMessage): Promise<void>;
  /**
   * Starts handing messages of `queue` to `handler`, at most `concurrency` at once. A handler that throws
   * is retried after a pause; after `redeliveryLimit` hand-overs the message goes to the dead letters,
   * so a poison message can never loop.
   */
  consume(queue: string, concurrency: number, handler: Handler): void;
  /**
   * Runs `message` at once in a free slot of this process's consumer of `queue` — nothing is written to the
   * queue, no broker round trip — and carries out the handler's disposition as for a queued message (a
   * retry or dead letter is published then, with this as its first hand-over). Returns undefined, running
   * nothing, when this process does not consume `queue`, has no slot free, or has messages of the queue
   * waiting for one: the caller publishes instead. The returned promise resolves with the disposition once
   * it is carried out and rejects if that failed. Until then the message is not durable anywhere in the
   * transport: only a caller that holds its own durable record (the store, swept) may use this.
   */
  runNow(queue: string, message: QueueMessage): Promise<Disposition> | undefined;
  /** Whether messages can be published now (feeds /readyz; intake answers 503 when not). */
  health(): TransportHealth;
  /**
   * Messages waiting per queue (for metrics): each consumed queue by name, plus `delayed` (waiting for a
   * retry) and `dead` (the transport's dead letters). Throws TransportUnavailableError when disconnected.
   */
  depth(): Promise<Record<string, number>>;
  /** Stops handing out messages and waits up to `graceMs` for handlers in flight. */
  stop(graceMs: number): Promise<void>;
}

/** Hand-overs of one message before the transport dead-letters it (`redelivery-limit`). */
export const REDELIVERY_LIMIT = 25;
/** Pause before a message whose handler threw is handed out again. */
export const HANDLER_ERROR_DELAY_MS = 5_000;

/**
 * The transport cannot take messages now (broker unreachable, connection being re-established).
 * Intake answers 503 with Retry-After instead of accepting what it cannot queue.
 */
export class TransportUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TransportUnavailableError';
  }
}
