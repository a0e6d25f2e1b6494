// The transport contract: durable queues between the pipeline's stages. Embedded (SQLite) on a single
// node, RabbitMQ (quorum queues) in production mode.
import type { Logger } from 'pino';

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
  /**
   * Gives the message's slot back before its handler ends — once the part the slot limits is over (a
   * delivery: the back office answered; only its outcome is left to record): the next message or caller
   * of `Transport.book` may start. The message itself is settled only when the handler ends (RabbitMQ:
   * acked then, still counted against the prefetch until then). See `Slots` for the bound.
   */
  freeSlot?: () => void;
}

/** What the consumer decided; the transport carries it out. */
export type Disposition =
  | { kind: 'ack' }
  | { kind: 'retry'; delayMs: number }
  | { kind: 'dead'; reason: string };

export type Handler = (message: ReceivedMessage) => Promise<Disposition>;

/** A consumer's slot taken with `Transport.book`: either run a message in it, or release it. */
export interface Slot {
  /**
   * Hands `message` to the consumer's handler (as its first hand-over) and carries out the disposition as
   * for a queued message: a retry is queued (delay), a dead letter kept. Resolves with the disposition once
   * that is done; rejects if it failed. Until then the message is durable nowhere in the transport: only a
   * caller holding its own durable record (the store, swept) may run one.
   */
  run(message: QueueMessage): Promise<Disposition>;
  /** Gives the slot back unused (free again from the next microtask on). */
  release(): void;
}

/**
 * What `Transport.book` gives: a slot now, or a place in the line for one (`detached`: the line is short,
 * the caller may go on while it waits — see `SlotLine.join`).
 */
export type Booking = { slot: Slot; later?: undefined; detached?: undefined } | { later: Promise<Slot | undefined>; detached: boolean; slot?: undefined };

export interface TransportHealth {
  ok: boolean;
  /** Operator-facing state, e.g. `connected` or why not. */
  detail: string;
}

export interface Transport {
  /** Resolves once the message is durable (embedded: committed; RabbitMQ: publisher-confirmed). */
  publish(queue: string, message: QueueMessage): Promise<void>;
  /**
   * Starts handing messages of `queue` to `handler`, in at most `concurrency` slots at once (a handler that
   * gives its slot back early runs on outside them: see `Slots`). A handler that throws
   * is retried after a pause; after `redeliveryLimit` hand-overs the message goes to the dead letters,
   * so a poison message can never loop.
   */
  consume(queue: string, concurrency: number, handler: Handler): void;
  /**
   * Takes a slot of this process's consumer of `queue`, to run a message in it at once: nothing is written
   * to the queue, no broker round trip. With every slot busy, a place in line for one (see `SlotLine`)
   * when one is expected within `waitMs`: `later` resolves with the slot, or undefined when none came
   * within that long (or the line was dismissed). Undefined at once when this process does not consume
   * `queue`, cannot queue (a retry must be publishable), or may not wait: the caller publishes instead.
   * Where the place is `detached`, the caller may answer its sender while `later` is pending. Until it is
   * run or released, the slot counts against the consumer's `concurrency`.
   */
  book(queue: string, waitMs: number): Booking | undefined;
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

/** Callers of `Transport.book` that may wait for a consumer's slot, per slot, besides detached places (see `SlotLine`). */
export const SLOT_WAITERS_PER_SLOT = 4;

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

/**
 * Hands a message to its handler; a handler that throws is logged and its message handed out again after a
 * pause — or dead-lettered (`redelivery-limit`) once it was handed out `REDELIVERY_LIMIT` times.
 */
export async function invokeHandler(handler: Handler, message: ReceivedMessage, queue: string, log: Logger): Promise<Disposition> {
  try {
    return await handler(message);
  } catch (error) {
    log.error({ queue, key: message.key, err: error }, 'handler failed; message will be handed out again');
    return message.deliveryCount >= REDELIVERY_LIMIT ? { kind: 'dead', reason: 'redelivery-limit' } : { kind: 'retry', delayMs: HANDLER_ERROR_DELAY_MS };
  }
}

/**
 * A consumer's slots: a run counts against `concurrency` from its start until it ends, or until its handler
 * gives the slot back early (`ReceivedMessage.freeSlot`); it stays in flight (a graceful stop waits for it)
 * until it ends. At most `concurrency` runs may have given their slot back at once — beyond that a run keeps
 * its slot to its end — so never more than twice `concurrency` runs are in flight.
 */
export class Slots {
  /** Runs not ended yet. */
  readonly inFlight = new Set<Promise<unknown>>();
  private held = 0;
  private early = 0;

  /** `freed`: a slot became free after being held this long (ms). */
  constructor(readonly concurrency: number, private readonly freed: (heldMs: number) => void) {}

  /** Slots free now (≤ 0: none). */
  get free(): number {
    return this.concurrency - this.held;
  }

  /** Starts `run` in a slot; it is given its `freeSlot`. */
  run<T>(run: (freeSlot: () => void) => Promise<T>): Promise<T> {
    const since = performance.now();
    this.held += 1;
    let state: 'held' | 'early' | 'ended' = 'held';
    const freeSlot = () => {
      if (state !== 'held' || this.early >= this.concurrency) return;
      state = 'early';
      this.early += 1;
      this.held -= 1;
      this.freed(performance.now() - since);
    };
    let running: Promise<T>;
    try {
      running = run(freeSlot);
    } catch (error) {
      running = Promise.reject(error);
    }
    const tracked = running.finally(() => {
      this.inFlight.delete(tracked);
      if (state === 'early') this.early -= 1;
      else {
        this.held -= 1;
        this.freed(performance.now() - since);
      }
      state = 'ended';
    });
    this.inFlight.add(tracked);
    return tracked;
  }
}

/**
 * A transport's Slot: a placeholder holds the slot (`take` runs it in one of the consumer's `Slots`) until
 * a message run in it has been disposed of (`start` runs one, with the slot's `freeSlot`) or the slot is
 * released.
 */
export function heldSlot(take: (placeholder: (freeSlot: () => void) => Promise<void>) => unknown, start: (message: QueueMessage, freeSlot: () => void) => Promise<Disposition>): Slot {
  let free!: () => void;
  let freeSlot!: () => void;
  const held = new Promise<void>((resolve) => { free = resolve; });
  // `take` starts the placeholder at once (Slots.run calls it synchronously), which hands over `freeSlot`.
  take((given) => {
    freeSlot = given;
    return held;
  });
  let taken = false;
  return {
    run(message) {
      if (taken) throw new Error('this slot was used or released already');
      taken = true;
      const run = start(message, freeSlot);
      void run.then(free, free);
      // Settles after the slot is free again (the placeholder's reactions, registered first, run first).
      return held.then(() => run);
    },
    release() {
      if (taken) return;
      taken = true;
      free();
    },
  };
}

/**
 * What waits for a consumer's busy slots, first come first served: the transport's own hand-overs (a
 * broker's prefetched messages) and callers of `Transport.book`. A caller joins only when a
 * slot is expected within its wait — judged from how long slots were held lately — and leaves without one
 * when none came in time; after that, none joins until a slot is freed again (a back office that hangs
 * holds one round of callers for one wait, not every caller). Each freed slot starts the first in line.
 * While the line is short, a caller's place is detached: it may go on (answer its sender) meanwhile.
 */
export class SlotLine {
  private readonly line: Array<{ start(): void; dismiss?(): void }> = [];
  /** How long a slot was held lately (moving average, ms; undefined before the first). */
  private holdMs: number | undefined;
  /** A caller's wait ran out, and no slot was freed since. */
  private stalled = false;
  /** Places in line whose callers went on (see `join`). */
  private detached = 0;

  /** `concurrency`: the consumer's slots; at most SLOT_WAITERS_PER_SLOT × that wait at once. */
  constructor(private readonly concurrency: number) {}

  get size(): number {
    return this.line.length;
  }

  /** Queues `start` for the next free slot (dropped, not started, by `dismiss`). */
  enqueue(start: () => void): void {
    this.line.push({ start });
  }

  /** Starts the first in line (a slot is free); false when none waits. */
  next(): boolean {
    const first = this.line.shift();
    first?.start();
    return first !== undefined;
  }

  /** A slot was freed after being held this long (ms): feeds the expected wait. */
  held(ms: number): void {
    this.holdMs = this.holdMs === undefined ? ms : this.holdMs + (ms - this.holdMs) / 16;
    this.stalled = false;
  }

  /**
   * Joins the line for a slot made by `make` (which may decline: then the next in line starts); `later`
   * resolves with it, or undefined after `ms` when none came, or when the line is dismissed. Does not join
   * (undefined) when the expected wait exceeds `ms`, or the line is stalled, or full. `detached` (only
   * where `mayDetach`): the line was short (fewer waited than there are slots — a burst, not an
   * overload), so the caller may go on while it waits; such places are not counted against the line's
   * bound, and there are never more of them than slots.
   */
  join(ms: number, make: () => Slot | undefined, mayDetach = true): { later: Promise<Slot | undefined>; detached: boolean } | undefined {
    const expectedMs = ((this.line.length + 1) * (this.holdMs ?? 0)) / this.concurrency;
    if (ms <= 0 || this.stalled || expectedMs > ms) return undefined;
    const detached = mayDetach && this.line.length < this.concurrency;
    if (!detached && this.line.length - this.detached >= SLOT_WAITERS_PER_SLOT * this.concurrency) return undefined;
    if (detached) this.detached += 1;
    let left = false;
    const leave = () => {
      if (left) return false;
      left = true;
      if (detached) this.detached -= 1;
      return true;
    };
    const later = new Promise<Slot | undefined>((resolve) => {
      const entry = {
        start: () => {
          leave();
          clearTimeout(timer);
          const slot = make();
          resolve(slot);
          if (!slot) this.next();
        },
        dismiss: () => {
          leave();
          clearTimeout(timer);
          resolve(undefined);
        },
      };
      const timer = setTimeout(() => {
        if (!leave()) return;
        const at = this.line.indexOf(entry);
        if (at >= 0) this.line.splice(at, 1);
        this.stalled = true;
        resolve(undefined);
      }, ms);
      this.line.push(entry);
    });
    return { later, detached };
  }

  /** Empties the line (the consumer stops, or lost its channel): callers leave without a slot, hand-overs are dropped. */
  dismiss(): void {
    for (const entry of this.line.splice(0)) entry.dismiss?.();
  }
}
