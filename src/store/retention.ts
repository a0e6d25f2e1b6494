// Retention: a periodic job that deletes the payload and attachments of submissions delivered longer ago
// than `retention.afterDelivery`. Status and history stay (they hold ids, keys and reasons, no content).
// It also deletes orphans: attachment bytes no submission refers to, left by a process that died between
// storing an upload's attachments and storing its submission.
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
  /** Milliseconds after purging when status and history are deleted too; undefined keeps them. */
  history?: number;
  log: Logger;
}

/** Submissions purged per batch; a run repeats batches until none is left. */
const BATCH = 100;
/** An unreferenced blob younger than this may belong to an upload still in progress. */
const ORPHAN_AGE_MS = 24 * 3_600_000;
/** Payload store keys checked for orphans per run. */
const ORPHAN_BATCH = 1000;

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
    this.running ??= this.purgeExpired(now).then(async (purged) => {
      await this.deleteOrphans(now);
      await this.deleteHistory(now);
      return purged;
    }).finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async deleteHistory(now: Date): Promise<void> {
    const { store, history, log } = this.options;
    if (history === undefined) return;
    let deleted = 0;
    for (let n = BATCH; n === BATCH; deleted += n) n = await store.deleteHistory(new Date(now.getTime() - history), BATCH);
    if (deleted) log.info({ event: 'history-deleted', count: deleted }, 'status and history deleted after retention period');
  }

  private async deleteOrphans(now: Date): Promise<void> {
    const { store, payloads, log } = this.options;
    const candidates = await payloads.list(new Date(now.getTime() - ORPHAN_AGE_MS), ORPHAN_BATCH);
    const orphans = await store.unreferencedKeys(candidates);
    if (orphans.length === 0) return;
    await payloads.delete(orphans);
    log.warn({ event: 'orphans-deleted', count: orphans.length }, 'attachment bytes no submission refers to were deleted');
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
