// Retention: a periodic job that deletes the payload and attachments of submissions delivered longer ago
// than `retention.afterDelivery`. Status and history stay (they hold ids, keys and reasons, no content).
import type { Logger } from 'pino';
import type { PayloadStore } from './payload-store';
import type { Store } from './store';

export interface RetentionOptions {
  store: Store;
  payloads: PayloadStore;
  /** Milliseconds after delivery. */
  afterDelivery: number;
  /** Milliseconds between runs. */
  interval: number;
  log: Logger;
}

/** Submissions purged per batch; a run repeats batches until none is left. */
const BATCH = 100;

export class Retention {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;

  constructor(private readonly options: RetentionOptions) {}

  start(): void {
    this.timer = setInterval(() => {
      this.run().catch((error: unknown) => this.options.log.warn({ err: error }, 'retention run failed; next try in a while'));
    }, this.options.interval);
    this.timer.unref();
  }

  /** Stops the timer and waits for a run in progress. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running?.catch(() => undefined);
  }

  /** One run (never two at once): the number of submissions purged. */
  run(now = new Date()): Promise<number> {
    this.running ??= this.purgeExpired(now).finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async purgeExpired(now: Date): Promise<number> {
    const { store, payloads, afterDelivery, log } = this.options;
    const before = new Date(now.getTime() - afterDelivery);
    let purged = 0;
    for (;;) {
      const ids = await store.listPurgeable(before, BATCH);
      for (const id of ids) {
        // Bytes first, then the references: a crash in between leaves references to deleted bytes, which
        // the next run deletes again (deleting a missing key is no error) before it purges the rows.
        const attachments = await store.attachments(id);
        await payloads.delete(attachments.map((a) => a.key));
        if (await store.purge(id)) {
          purged += 1;
          log.info({ event: 'purged', submissionId: id, attachments: attachments.length }, 'payload deleted after retention period');
        }
      }
      if (ids.length < BATCH) return purged;
    }
  }
}
