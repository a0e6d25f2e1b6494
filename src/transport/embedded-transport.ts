// The embedded transport: durable queues in the same SQLite database as the store (single node).
// A message is claimed (leased) while its handler runs; leases are cleared at start-up, so whatever was
// in flight when the process died is handed out again.
import type { Logger } from 'pino';
import type { SqliteDatabase } from '../store/sqlite';
import { heldSlot, invokeHandler, SlotLine, Slots, type Booking, type Disposition, type Handler, type QueueMessage, type Slot, type Transport, type TransportHealth } from './transport';

interface JobRow {
  id: number;
  key: string;
  body: string;
  deliveries: number;
}

/** Longest sleep of an idle consumer; publishes in this process wake it at once. */
const IDLE_POLL_MS = 1_000;

class Consumer {
  private readonly slots: Slots;
  private wake: (() => void) | undefined;
  private running = true;
  /** Callers of `book` waiting for a slot: the first starts when a slot frees and no queued message is ready. */
  private readonly line: SlotLine;
  readonly done: Promise<void>;

  constructor(
    private readonly transport: EmbeddedTransport,
    readonly queue: string,
    concurrency: number,
    private readonly handler: Handler,
    private readonly log: Logger,
  ) {
    this.line = new SlotLine(concurrency);
    this.slots = new Slots(concurrency, (heldMs) => this.freed(heldMs));
    this.done = this.loop();
  }

  notify(): void {
    this.wake?.();
  }

  stop(): void {
    this.running = false;
    this.line.dismiss();
    this.notify();
  }

  async drain(): Promise<void> {
    await Promise.allSettled([...this.slots.inFlight]);
  }

  private async loop(): Promise<void> {
    while (this.running) {
      let sleep: number;
      try {
        sleep = this.dispatch();
      } catch (error) {
        // The store failed (disk, I/O): keep the process alive and try again after a pause.
        this.log.error({ queue: this.queue, err: error }, 'claiming messages failed');
        sleep = IDLE_POLL_MS;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(sleep, 0));
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  /** Hands ready messages to free handler slots; returns how long to sleep until there may be more. */
  private dispatch(): number {
    const free = this.slots.free;
    if (free > 0) {
      for (const job of this.transport.claim(this.queue, free)) void this.slots.run((freeSlot) => this.run(job, freeSlot));
    }
    return this.slots.free <= 0 ? IDLE_POLL_MS : Math.min(IDLE_POLL_MS, this.transport.msUntilNext(this.queue));
  }

  /**
   * A slot to run a message in at once, or a place in line for one (see Transport.book); undefined when
   * queued messages are ready: they go first, and a caller does not wait behind them (unlike RabbitMQ's
   * hand-overs, they are not in line).
   */
  book(waitMs: number): Booking | undefined {
    if (!this.running || this.queuedReady()) return undefined;
    if (this.slots.free > 0) return { slot: this.slot() };
    return this.line.join(waitMs, () => this.slot());
  }

  /** Whether a queued message is ready to be handed out (also when the queue cannot be read: then no slot is given away). */
  private queuedReady(): boolean {
    try {
      return this.transport.msUntilNext(this.queue) <= 0;
    } catch {
      return true;
    }
  }

  private slot(): Slot {
    return heldSlot((placeholder) => this.slots.run(placeholder), async (message, freeSlot) => {
      const disposition = await this.invoke(message.key, message.body, 1, freeSlot);
      // A retry or dead letter is written as if the message had been queued and handed out once.
      this.transport.settleReserved(this.queue, message, disposition);
      // A retry queued by a run that gave its slot back early: no freed slot wakes the loop for it.
      this.notify();
      return disposition;
    });
  }

  /** A slot was freed: a caller of `book` gets it unless queued messages are ready. */
  private freed(heldMs: number): void {
    this.line.held(heldMs);
    // Queued messages ready take the freed slot: callers waiting behind them go and queue theirs at once.
    if (this.line.size && this.running) {
      if (this.queuedReady()) this.line.dismiss();
      else this.line.next();
    }
    this.notify();
  }

  private invoke(key: string, body: Record<string, string>, deliveryCount: number, freeSlot: () => void): Promise<Disposition> {
    return invokeHandler(this.handler, { key, body, deliveryCount, freeSlot }, this.queue, this.log);
  }

  private async run(job: JobRow, freeSlot: () => void): Promise<void> {
    const disposition = await this.invoke(job.key, JSON.parse(job.body) as Record<string, string>, job.deliveries, freeSlot);
    try {
      this.transport.settle(this.queue, job, disposition);
    } catch (error) {
      // Not settled: the lease stays until the next start, when the message is handed out again.
      this.log.error({ queue: this.queue, key: job.key, err: error }, 'settling a message failed');
    }
    // A retry released by a run that gave its slot back early: no freed slot wakes the loop for it.
    this.notify();
  }
}

export class EmbeddedTransport implements Transport {
  private readonly consumers: Consumer[] = [];
  private readonly statements;

  constructor(
    private readonly db: SqliteDatabase,
    private readonly log: Logger,
  ) {
    // Single process owns the database (exclusive lock): nothing can be in flight at start-up.
    db.prepare('UPDATE jobs SET leased = 0 WHERE leased = 1').run();
    this.statements = {
      insert: db.prepare('INSERT OR IGNORE INTO jobs (queue, key, body, available_at) VALUES (?, ?, ?, ?)'),
      insertHandedOut: db.prepare('INSERT OR IGNORE INTO jobs (queue, key, body, available_at, deliveries) VALUES (?, ?, ?, ?, 1)'),
      claim: db.prepare<[string, number, number], JobRow>(
        `UPDATE jobs SET leased = 1, deliveries = deliveries + 1
         WHERE id IN (SELECT id FROM jobs WHERE queue = ? AND leased = 0 AND available_at <= ? ORDER BY available_at, id LIMIT ?)
         RETURNING id, key, body, deliveries`,
      ),
      next: db.prepare<[string], number | null>('SELECT min(available_at) FROM jobs WHERE queue = ? AND leased = 0').pluck(),
      remove: db.prepare('DELETE FROM jobs WHERE id = ?'),
      release: db.prepare('UPDATE jobs SET leased = 0, available_at = ? WHERE id = ?'),
      dead: db.prepare('INSERT INTO dead_letters (queue, key, body, reason, deliveries, at) VALUES (?, ?, ?, ?, ?, ?)'),
    };
  }

  async publish(queue: string, message: QueueMessage): Promise<void> {
    this.statements.insert.run(queue, message.key, JSON.stringify(message.body), Date.now());
    for (const consumer of this.consumers) if (consumer.queue === queue) consumer.notify();
  }

  consume(queue: string, concurrency: number, handler: Handler): void {
    this.consumers.push(new Consumer(this, queue, concurrency, handler, this.log));
  }

  book(queue: string, waitMs: number): Booking | undefined {
    if (!this.db.open) return undefined;
    return this.consumers.find((c) => c.queue === queue)?.book(waitMs);
  }

  /** @internal Carries out the disposition of a message run in a reserved slot (never queued): a retry is queued, a dead letter kept. */
  settleReserved(queue: string, message: QueueMessage, disposition: Disposition): void {
    if (disposition.kind === 'ack') return;
    if (!this.db.open) throw new Error('embedded queue closed');
    const body = JSON.stringify(message.body);
    // A message of the same key queued meanwhile (by a sweep) stands for this one: it is handed out (at its
    // own time) and finds the delivery due or leased; the key is not queued twice.
    if (disposition.kind === 'retry') this.statements.insertHandedOut.run(queue, message.key, body, Date.now() + disposition.delayMs);
    else this.statements.dead.run(queue, message.key, body, disposition.reason, 1, new Date().toISOString());
  }

  /** @internal Claims up to `limit` ready messages of `queue`. */
  claim(queue: string, limit: number): JobRow[] {
    return this.statements.claim.all(queue, Date.now(), limit);
  }

  /** @internal Milliseconds until the next message of `queue` becomes ready (Infinity if none). */
  msUntilNext(queue: string): number {
    const next = this.statements.next.get(queue);
    return next === null || next === undefined ? Infinity : next - Date.now();
  }

  /** @internal Carries out a consumer's disposition. */
  settle(queue: string, job: JobRow, disposition: Disposition): void {
    // A handler that outlived the shutdown grace period: its lease is cleared at the next start.
    if (!this.db.open) return;
    if (disposition.kind === 'ack') {
      this.statements.remove.run(job.id);
    } else if (disposition.kind === 'retry') {
      this.statements.release.run(Date.now() + disposition.delayMs, job.id);
    } else {
      this.db.transaction(() => {
        this.statements.dead.run(queue, job.key, job.body, disposition.reason, job.deliveries, new Date().toISOString());
        this.statements.remove.run(job.id);
      })();
    }
  }

  health(): TransportHealth {
    return this.db.open ? { ok: true, detail: 'embedded queue open' } : { ok: false, detail: 'embedded queue closed' };
  }

  async depth(): Promise<Record<string, number>> {
    const now = Date.now();
    const depth: Record<string, number> = {};
    for (const consumer of this.consumers) depth[consumer.queue] = 0;
    let delayed = 0;
    const rows = this.db.prepare<[number, number], { queue: string; delayed: number; n: number }>(
      'SELECT queue, available_at > ? AS delayed, count(*) AS n FROM jobs GROUP BY queue, available_at > ?',
    ).all(now, now);
    for (const row of rows) {
      if (row.delayed) delayed += row.n;
      else depth[row.queue] = (depth[row.queue] ?? 0) + row.n;
    }
    const dead = this.db.prepare('SELECT count(*) FROM dead_letters').pluck().get() as number;
    return { ...depth, delayed, dead };
  }

  async stop(graceMs: number): Promise<void> {
    for (const consumer of this.consumers) consumer.stop();
    const drained = Promise.all(this.consumers.map(async (c) => {
      await c.done;
      await c.drain();
    }));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([drained, new Promise((resolve) => { timer = setTimeout(resolve, graceMs); })]);
    clearTimeout(timer);
  }
}
