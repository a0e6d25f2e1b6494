// Group commit for the store's hot writes: while one batch is being written, the writes that arrive wait and
// then go together, as one statement and one commit. Under light load a write goes alone at once (no timer, no
// added latency); under load the batches grow with the wait, and each statement's fixed cost (round trip,
// executor start, commit, WAL flush) is shared by all of its rows.

export interface WriteBatcherOptions<T> {
  /** Most writes in one batch. */
  maxBatch: number;
  /** Batches written at once (each on its own connection). */
  parallel: number;
  /** Writes with the same key never share a batch (e.g. one delivery's outcome twice): the later waits for the next. */
  key?: (item: T) => string;
}

interface Pending<T, R> {
  item: T;
  resolve: (result: R) => void;
  reject: (error: unknown) => void;
}

/**
 * Batches writes for `write`, which must answer one result per item, in order. When a batch fails as a
 * whole, each of its writes is tried alone, so that one bad write fails only its own caller.
 */
export class WriteBatcher<T, R> {
  private readonly queue: Array<Pending<T, R>> = [];
  private running = 0;
  private readonly idleWaiters: Array<() => void> = [];

  constructor(private readonly write: (items: readonly T[]) => Promise<R[]>, private readonly options: WriteBatcherOptions<T>) {}

  submit(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.pump();
    });
  }

  /** Resolves once nothing is queued or being written (e.g. before the connection pool is closed). */
  idle(): Promise<void> {
    if (this.running === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private pump(): void {
    while (this.running < this.options.parallel && this.queue.length > 0) {
      this.running += 1;
      void this.run(this.take()).finally(() => {
        this.running -= 1;
        this.pump();
      });
    }
    if (this.running === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  /** The next batch from the head of the queue: at most maxBatch, no key twice (those stay queued, in order). */
  private take(): Array<Pending<T, R>> {
    const { key, maxBatch } = this.options;
    if (!key) return this.queue.splice(0, maxBatch);
    const batch: Array<Pending<T, R>> = [];
    const keys = new Set<string>();
    for (let i = 0; i < this.queue.length && batch.length < maxBatch;) {
      const k = key(this.queue[i]!.item);
      if (keys.has(k)) {
        i += 1;
        continue;
      }
      keys.add(k);
      batch.push(...this.queue.splice(i, 1));
    }
    return batch;
  }

  private async run(batch: Array<Pending<T, R>>): Promise<void> {
    try {
      const results = await this.write(batch.map((p) => p.item));
      if (results.length !== batch.length) throw new Error(`a batch of ${batch.length} writes answered ${results.length} results`);
      batch.forEach((p, i) => p.resolve(results[i]!));
    } catch (error) {
      if (batch.length === 1) {
        batch[0]!.reject(error);
        return;
      }
      // Each alone: the one at fault fails, the others are written.
      await Promise.all(batch.map(async (p) => {
        try {
          const [result] = await this.write([p.item]);
          p.resolve(result!);
        } catch (own) {
          p.reject(own);
        }
      }));
    }
  }
}
