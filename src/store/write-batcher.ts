// Group commit for the store's hot writes: while one batch is being written, the writes that arrive wait and
// then go together, as one statement and one commit. Under light load a write goes alone at once (no timer, no
// added latency); under load the batches grow with the wait, and each statement's fixed cost (round trip,
// executor start, commit, WAL flush) is shared by all of its rows.

export interface WriteBatcherOptions<T> {
  /** Most writes in one batch. */
  maxBatch: number;
  /** Batches written at once (each on its own connection). */
  parallel: number;
  /**
   * Writes of one key are written one after the other (e.g. outcomes of one submission): never in one batch,
   * never in two batches at once — a later one waits until the earlier one's batch is done.
   */
  key?: (item: T) => string;
  /**
   * Whether the writes of a failed batch are tried again one by one (so that the one at fault fails alone):
   * only for errors after which the batch certainly did not commit. Otherwise (and by default) every write
   * of the batch fails with the batch's error.
   */
  retryAlone?: (error: unknown, size: number) => boolean;
}

interface Pending<T, R> {
  item: T;
  key?: string;
  resolve: (result: R) => void;
  reject: (error: unknown) => void;
}

/** Batches writes for `write`, which must answer one result per item, in order. */
export class WriteBatcher<T, R> {
  private readonly queue: Array<Pending<T, R>> = [];
  private running = 0;
  /** Keys of the writes being written. */
  private readonly busy = new Set<string>();
  private readonly idleWaiters: Array<() => void> = [];

  constructor(private readonly write: (items: readonly T[]) => Promise<R[]>, private readonly options: WriteBatcherOptions<T>) {}

  submit(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, key: this.options.key?.(item), resolve, reject });
      this.pump();
    });
  }

  /** Resolves once nothing is queued or being written (e.g. before the connection pool is closed). */
  idle(): Promise<void> {
    if (this.running === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private pump(): void {
    while (this.running < this.options.parallel) {
      const batch = this.take();
      // (With nothing running no key is busy, so a queue never stays behind with nothing running.)
      if (batch.length === 0) break;
      this.running += 1;
      void this.run(batch).finally(() => {
        this.running -= 1;
        for (const { key } of batch) if (key !== undefined) this.busy.delete(key);
        this.pump();
      });
    }
    if (this.running === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  /** The next batch from the head of the queue: at most maxBatch, no busy key, no key twice (those stay queued, in order). */
  private take(): Array<Pending<T, R>> {
    const batch: Array<Pending<T, R>> = [];
    for (let i = 0; i < this.queue.length && batch.length < this.options.maxBatch;) {
      const { key } = this.queue[i]!;
      if (key !== undefined && this.busy.has(key)) {
        i += 1;
        continue;
      }
      if (key !== undefined) this.busy.add(key);
      batch.push(...this.queue.splice(i, 1));
    }
    return batch;
  }

  private async run(batch: Array<Pending<T, R>>): Promise<void> {
    let results: R[];
    try {
      results = await this.write(batch.map((p) => p.item));
    } catch (error) {
      if (batch.length === 1 || !this.options.retryAlone?.(error, batch.length)) {
        for (const p of batch) p.reject(error);
        return;
      }
      // One by one (within this batch's connection budget): the one at fault fails, the others are written.
      for (const p of batch) {
        try {
          const [result] = await this.write([p.item]);
          p.resolve(result!);
        } catch (own) {
          p.reject(own);
        }
      }
      return;
    }
    if (results.length !== batch.length) {
      const error = new Error(`a batch of ${batch.length} writes answered ${results.length} results`);
      for (const p of batch) p.reject(error);
      return;
    }
    batch.forEach((p, i) => p.resolve(results[i]!));
  }
}
