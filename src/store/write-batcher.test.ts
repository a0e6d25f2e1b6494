import { WriteBatcher } from './write-batcher';

/** A write function whose calls are recorded and finished by the test. */
function controlledWrite() {
  const calls: Array<{ items: string[]; finish: (results?: string[]) => void }> = [];
  const write = (items: readonly string[]) => new Promise<string[]>((resolve) => {
    calls.push({ items: [...items], finish: (results) => resolve(results ?? items.map((i) => `stored ${i}`)) });
  });
  return { calls, write };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('WriteBatcher', () => {
  it('writes a lone write at once, by itself', async () => {
    const { calls, write } = controlledWrite();
    const batcher = new WriteBatcher(write, { maxBatch: 8, parallel: 1 });
    const result = batcher.submit('a');
    expect(calls.map((c) => c.items)).toEqual([['a']]);
    calls[0]!.finish();
    await expect(result).resolves.toBe('stored a');
  });

  it('gathers what arrives while the batches are written into the next batch, in order, at most maxBatch', async () => {
    const { calls, write } = controlledWrite();
    const batcher = new WriteBatcher(write, { maxBatch: 3, parallel: 2 });
    const results = ['a', 'b', 'c', 'd', 'e', 'f', 'g'].map((item) => batcher.submit(item));
    // a and b went at once (two in parallel); the rest wait.
    expect(calls.map((c) => c.items)).toEqual([['a'], ['b']]);
    calls[1]!.finish();
    await tick();
    expect(calls.map((c) => c.items)).toEqual([['a'], ['b'], ['c', 'd', 'e']]);
    calls[0]!.finish();
    await tick();
    expect(calls.map((c) => c.items)).toEqual([['a'], ['b'], ['c', 'd', 'e'], ['f', 'g']]);
    calls[2]!.finish();
    calls[3]!.finish();
    await expect(Promise.all(results)).resolves.toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'g'].map((i) => `stored ${i}`));
  });

  it('gives each caller its own result', async () => {
    const { calls, write } = controlledWrite();
    const batcher = new WriteBatcher(write, { maxBatch: 8, parallel: 1 });
    const first = batcher.submit('a');
    const rest = [batcher.submit('b'), batcher.submit('c')];
    calls[0]!.finish(['one']);
    await tick();
    calls[1]!.finish(['two', 'three']);
    await expect(first).resolves.toBe('one');
    await expect(Promise.all(rest)).resolves.toEqual(['two', 'three']);
  });

  it('tries each write of a failed batch alone, one by one, when retryAlone says so: only the one at fault fails', async () => {
    const written: string[][] = [];
    const asked: Array<[string, number]> = [];
    const batcher = new WriteBatcher(async (items: readonly string[]) => {
      written.push([...items]);
      await tick();
      if (items.includes('bad')) throw new Error('constraint violated');
      return items.map((i) => `stored ${i}`);
    }, { maxBatch: 8, parallel: 1, retryAlone: (error, size) => { asked.push([(error as Error).message, size]); return true; } });
    const results = ['first', 'a', 'bad', 'b'].map((item) => batcher.submit(item));
    const settled = await Promise.allSettled(results);
    expect(settled.map((s) => (s.status === 'fulfilled' ? s.value : (s.reason as Error).message)))
      .toEqual(['stored first', 'stored a', 'constraint violated', 'stored b']);
    expect(written).toEqual([['first'], ['a', 'bad', 'b'], ['a'], ['bad'], ['b']]);
    expect(asked).toEqual([['constraint violated', 3]]);
  });

  it('fails every write of a failed batch with its error when it may have committed (retryAlone says no, or is not given)', async () => {
    for (const retryAlone of [undefined, () => false]) {
      const written: string[][] = [];
      const batcher = new WriteBatcher(async (items: readonly string[]) => {
        written.push([...items]);
        await tick();
        if (items.length > 1) throw new Error('connection lost');
        return items.map((i) => `stored ${i}`);
      }, { maxBatch: 8, parallel: 1, retryAlone });
      const settled = await Promise.allSettled(['first', 'a', 'b'].map((item) => batcher.submit(item)));
      expect(settled.map((s) => (s.status === 'fulfilled' ? s.value : (s.reason as Error).message))).toEqual(['stored first', 'connection lost', 'connection lost']);
      expect(written).toEqual([['first'], ['a', 'b']]);
    }
  });

  it('fails a lone write with its error, without trying it again', async () => {
    let calls = 0;
    const batcher = new WriteBatcher(async () => {
      calls += 1;
      throw new Error('database gone');
    }, { maxBatch: 8, parallel: 1, retryAlone: () => true });
    await expect(batcher.submit('a')).rejects.toThrow('database gone');
    expect(calls).toBe(1);
  });

  it('fails the writes of a batch that answers the wrong number of results, without writing them again', async () => {
    const written: string[][] = [];
    const batcher = new WriteBatcher(async (items: readonly string[]) => {
      written.push([...items]);
      await tick();
      return items.length > 1 ? ['only one'] : [`stored ${items[0]}`];
    }, { maxBatch: 8, parallel: 1, retryAlone: () => true });
    const settled = await Promise.allSettled(['first', 'a', 'b'].map((item) => batcher.submit(item)));
    expect(settled.map((s) => (s.status === 'fulfilled' ? s.value : (s.reason as Error).message)))
      .toEqual(['stored first', 'a batch of 2 writes answered 1 results', 'a batch of 2 writes answered 1 results']);
    expect(written).toEqual([['first'], ['a', 'b']]);
  });

  it('is idle once nothing is queued or being written', async () => {
    const { calls, write } = controlledWrite();
    const batcher = new WriteBatcher(write, { maxBatch: 8, parallel: 1 });
    await batcher.idle();
    const results = [batcher.submit('a'), batcher.submit('b')];
    let idle = false;
    const whenIdle = batcher.idle().then(() => { idle = true; });
    calls[0]!.finish();
    await tick();
    expect(idle).toBe(false); // b is being written
    calls[1]!.finish();
    await whenIdle;
    await expect(Promise.all(results)).resolves.toEqual(['stored a', 'stored b']);
  });

  it('writes the writes of one key one after the other: never in one batch, never in two batches at once', async () => {
    const { calls, write } = controlledWrite();
    const batcher = new WriteBatcher(write, { maxBatch: 8, parallel: 2, key: (item: string) => item.split(':')[0]! });
    const results = ['x:0', 'x:1', 'y:1', 'x:2', 'z:1'].map((item) => batcher.submit(item));
    // x:0 and y:1 at once (two in parallel; x:1 was held back as x:0 is being written).
    expect(calls.map((c) => c.items)).toEqual([['x:0'], ['y:1']]);
    calls[1]!.finish();
    await tick();
    // While x:0 is being written, the next batch takes only z:1.
    expect(calls.map((c) => c.items)).toEqual([['x:0'], ['y:1'], ['z:1']]);
    calls[0]!.finish();
    await tick();
    expect(calls[3]!.items).toEqual(['x:1']); // x:2 not with it, nor beside it
    expect(calls).toHaveLength(4);
    calls[2]!.finish();
    await tick();
    expect(calls).toHaveLength(4);
    calls[3]!.finish();
    await tick();
    expect(calls[4]!.items).toEqual(['x:2']);
    calls[4]!.finish();
    await expect(Promise.all(results)).resolves.toEqual(['x:0', 'x:1', 'y:1', 'x:2', 'z:1'].map((i) => `stored ${i}`));
  });

});
