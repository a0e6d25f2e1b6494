// The transport contract, run against every implementation: embedded (SQLite) and RabbitMQ (AMQP_URL, else a
// testcontainers broker), each RabbitMQ test under its own queue prefix.
import path from 'node:path';
import pino from 'pino';
import { openSqlite, type SqliteDatabase } from '../src/store/sqlite';
import { EmbeddedTransport } from '../src/transport/embedded-transport';
import { RabbitTransport } from '../src/transport/rabbitmq-transport';
import { REDELIVERY_LIMIT, SLOT_WAITERS_PER_SLOT, type Disposition, type ReceivedMessage, type Slot, type Transport } from '../src/transport/transport';
import { eventually, tempDir } from './support/harness';
import { amqpUrl, deleteTopology, runId, stopServices } from './support/services';

interface Harness {
  transport: Transport;
  /**
   * A new transport on the same durable state. `graceMs` 0 simulates a crash (nothing in flight is settled);
   * more lets handlers in flight finish and settle first, as a graceful shutdown does.
   */
  restart(graceMs?: number): Promise<Transport>;
  close(): Promise<void>;
}

/**
 * `dedupesKeys`: publishing a key that is still queued is a no-op (embedded only; with RabbitMQ the handlers dedupe).
 * `linesUp`: a caller of `reserve` waits in line with queued messages, first come first served (RabbitMQ: the
 * broker's hand-overs); else queued messages go first, and no caller waits while one is ready (embedded).
 */
const implementations: Array<[string, () => Promise<Harness>, { dedupesKeys: boolean; linesUp: boolean }]> = [
  ['embedded', async () => {
    const file = path.join(tempDir(), 'queue.db');
    const log = pino({ level: 'silent' });
    let db: SqliteDatabase = openSqlite(file);
    let transport: Transport = new EmbeddedTransport(db, log);
    return {
      get transport() { return transport; },
      async restart(graceMs = 0) {
        await transport.stop(graceMs);
        db.close();
        db = openSqlite(file);
        transport = new EmbeddedTransport(db, log);
        return transport;
      },
      async close() {
        await transport.stop(1000);
        db.close();
      },
    };
  }, { dedupesKeys: true, linesUp: false }],
  ['rabbitmq', async () => {
    const url = await amqpUrl();
    const prefix = runId('tc');
    const log = pino({ level: 'silent' });
    const open = () => RabbitTransport.open({ url, prefix, heartbeatSeconds: 10, log });
    let transport = await open();
    const queues = new Set<string>();
    // Every queue a test consumes or publishes to (publishing declares it), to be deleted afterwards.
    const track = (t: RabbitTransport) => {
      const consume = t.consume.bind(t);
      const publish = t.publish.bind(t);
      t.consume = (queue, concurrency, handler) => {
        queues.add(queue);
        consume(queue, concurrency, handler);
      };
      t.publish = (queue, message) => {
        queues.add(queue);
        return publish(queue, message);
      };
      return t;
    };
    track(transport);
    return {
      get transport() { return transport; },
      async restart(graceMs = 0) {
        await transport.stop(graceMs);
        transport = track(await open());
        return transport;
      },
      async close() {
        const names = transport.names();
        await transport.stop(1000);
        await deleteTopology(url, { exchanges: names.exchanges, queues: [...names.queues, ...[...queues].map((q) => `${prefix}.${q}`)] });
      },
    };
  }, { dedupesKeys: false, linesUp: true }],
];

afterAll(() => stopServices());

/** A slot of `queue`'s consumer from `book`: at once, or once its place in line gives one (or not). */
const reserve = async (transport: Transport, queue: string, waitMs = 0): Promise<Slot | undefined> => {
  const booking = transport.book(queue, waitMs);
  return booking?.slot ?? booking?.later;
};

describe.each(implementations)('%s transport', (_name, create, capabilities) => {
  let harness: Harness;
  beforeEach(async () => { harness = await create(); });
  afterEach(async () => { await harness.close(); });

  const collect = (transport: Transport, queue: string, decide: (m: ReceivedMessage) => Disposition | Promise<Disposition>, concurrency = 1) => {
    const seen: ReceivedMessage[] = [];
    transport.consume(queue, concurrency, async (message) => {
      seen.push(message);
      return decide(message);
    });
    return seen;
  };

  test('delivers published messages with their body and acks them', async () => {
    const seen = collect(harness.transport, 'q', () => ({ kind: 'ack' }));
    await harness.transport.publish('q', { key: 'a', body: { submissionId: 'a' } });
    await harness.transport.publish('q', { key: 'b', body: { submissionId: 'b' } });
    await eventually(() => seen.length === 2);
    expect(seen.map((m) => [m.key, m.body.submissionId, m.deliveryCount])).toEqual([['a', 'a', 1], ['b', 'b', 1]]);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(seen).toHaveLength(2);
  });

  test('queues are separate', async () => {
    const one = collect(harness.transport, 'one', () => ({ kind: 'ack' }));
    await harness.transport.publish('two', { key: 'x', body: {} });
    await harness.transport.publish('one', { key: 'y', body: {} });
    await eventually(() => one.length === 1);
    expect(one[0]!.key).toBe('y');
  });

  (capabilities.dedupesKeys ? test : test.skip)('a key that is still queued is not queued twice', async () => {
    await harness.transport.publish('q', { key: 'same', body: { n: '1' } });
    await harness.transport.publish('q', { key: 'same', body: { n: '2' } });
    const seen = collect(harness.transport, 'q', () => ({ kind: 'ack' }));
    await eventually(() => seen.length === 1);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(seen.map((m) => m.body.n)).toEqual(['1']);
  });

  test('retry hands the message out again after the delay, counting deliveries', async () => {
    const times: number[] = [];
    const seen = collect(harness.transport, 'q', (m) => {
      times.push(Date.now());
      return m.deliveryCount < 3 ? { kind: 'retry', delayMs: 150 } : { kind: 'ack' };
    });
    await harness.transport.publish('q', { key: 'r', body: {} });
    await eventually(() => seen.length === 3);
    expect(seen.map((m) => m.deliveryCount)).toEqual([1, 2, 3]);
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(140);
    expect(times[2]! - times[1]!).toBeGreaterThanOrEqual(140);
  });

  /** A handler that works 30 ms per message and records how many ran at once at most. */
  const counting = () => {
    const at = { running: 0, peak: 0 };
    const handler = async (): Promise<Disposition> => {
      at.running += 1;
      at.peak = Math.max(at.peak, at.running);
      await new Promise((resolve) => setTimeout(resolve, 30));
      at.running -= 1;
      return { kind: 'ack' };
    };
    return { handler, peak: () => at.peak };
  };

  test('never more than `concurrency` handlers at once', async () => {
    const { handler, peak } = counting();
    const seen = collect(harness.transport, 'q', handler, 3);
    for (let i = 0; i < 12; i += 1) await harness.transport.publish('q', { key: String(i), body: {} });
    await eventually(() => seen.length === 12);
    expect(peak()).toBe(3);
  });

  test('a handler that keeps throwing ends in the dead letters after the redelivery limit, it never loops', async () => {
    // Retried after HANDLER_ERROR_DELAY_MS each time; here only the limit is checked via deliveryCount.
    const seen: number[] = [];
    harness.transport.consume('q', 1, async (m) => {
      seen.push(m.deliveryCount);
      if (m.deliveryCount < REDELIVERY_LIMIT) return { kind: 'retry', delayMs: 0 };
      throw new Error('poison');
    });
    await harness.transport.publish('q', { key: 'p', body: {} });
    await eventually(() => seen.length === REDELIVERY_LIMIT, 10_000);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(seen).toHaveLength(REDELIVERY_LIMIT);
  });

  test('a message in flight at a crash is handed out again after restart', async () => {
    let release!: () => void;
    const started = collect(harness.transport, 'q', () => new Promise<Disposition>((resolve) => { release = () => resolve({ kind: 'ack' }); }));
    await harness.transport.publish('q', { key: 'c', body: { submissionId: 'c' } });
    await eventually(() => started.length === 1);
    const restarted = await harness.restart();
    release();
    const again = collect(restarted, 'q', () => ({ kind: 'ack' }));
    await eventually(() => again.length === 1);
    expect(again[0]).toMatchObject({ key: 'c', body: { submissionId: 'c' }, deliveryCount: 2 });
  });

  /** A slot of `queue`'s consumer once it is ready (RabbitMQ starts consumers asynchronously). */
  const slotWhenReady = (transport: Transport, queue: string) => eventually(() => reserve(transport, queue));
  const message = (key: string) => ({ key, body: { submissionId: key } });

  test('a reserved slot runs a message at once and queues nothing; no slot of a queue this process does not consume', async () => {
    const seen = collect(harness.transport, 'q', () => ({ kind: 'ack' }));
    await expect((await slotWhenReady(harness.transport, 'q')).run(message('n'))).resolves.toEqual({ kind: 'ack' });
    expect(seen.map((m) => [m.key, m.body.submissionId, m.deliveryCount])).toEqual([['n', 'n', 1]]);
    await expect(reserve(harness.transport, 'other', 1000)).resolves.toBeUndefined();
    expect(await harness.transport.depth()).toMatchObject({ q: 0, delayed: 0, dead: 0 });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(seen).toHaveLength(1);
  });

  test('a slot counts until it is run or released: with every slot taken there is none to reserve', async () => {
    let release!: () => void;
    const seen = collect(harness.transport, 'q', (m) => (m.key === 'busy' ? new Promise<Disposition>((resolve) => { release = () => resolve({ kind: 'ack' }); }) : { kind: 'ack' }));
    const reserved = await slotWhenReady(harness.transport, 'q');
    await expect(reserve(harness.transport, 'q')).resolves.toBeUndefined();
    reserved.release();
    await new Promise((resolve) => setImmediate(resolve));
    const busy = (await reserve(harness.transport, 'q'))!.run(message('busy'));
    await expect(reserve(harness.transport, 'q')).resolves.toBeUndefined();
    release();
    await busy;
    await expect((await reserve(harness.transport, 'q'))!.run(message('next'))).resolves.toEqual({ kind: 'ack' });
    expect(seen.map((m) => m.key)).toEqual(['busy', 'next']);
    // A queued message waits while a reserved slot is held, and runs once it is released.
    const held = (await reserve(harness.transport, 'q'))!;
    await harness.transport.publish('q', message('queued'));
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(seen).toHaveLength(2);
    held.release();
    await eventually(() => seen.length === 3);
    held.release(); // twice: changes nothing
    expect(() => held.run(message('late'))).toThrow('used or released already');
    expect(seen[2]).toMatchObject({ key: 'queued', deliveryCount: 1 });
  });

  test('a message run in a slot that is retried comes back from the queue as its second hand-over', async () => {
    const seen = collect(harness.transport, 'q', (m) => (m.deliveryCount === 1 ? { kind: 'retry', delayMs: 100 } : { kind: 'ack' }));
    await expect((await slotWhenReady(harness.transport, 'q')).run(message('r'))).resolves.toEqual({ kind: 'retry', delayMs: 100 });
    await eventually(() => seen.length === 2);
    expect(seen.map((m) => [m.key, m.body.submissionId, m.deliveryCount])).toEqual([['r', 'r', 1], ['r', 'r', 2]]);
  });

  test('a message run in a slot that is dead-lettered is kept in the dead letters, not handed out again', async () => {
    const seen = collect(harness.transport, 'q', () => ({ kind: 'dead', reason: 'test' }));
    await expect((await slotWhenReady(harness.transport, 'q')).run(message('d'))).resolves.toEqual({ kind: 'dead', reason: 'test' });
    await eventually(async () => (await harness.transport.depth()).dead === 1);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(seen).toHaveLength(1);
  });

  test('messages run in slots and messages handed out from the queue share the `concurrency` slots', async () => {
    const { handler, peak } = counting();
    const seen = collect(harness.transport, 'q', handler, 2);
    const runs = [(await slotWhenReady(harness.transport, 'q')).run(message('now-0'))];
    for (let i = 0; i < 12; i += 1) {
      const slot = await reserve(harness.transport, 'q');
      if (slot) runs.push(slot.run(message(String(i))));
      else await harness.transport.publish('q', message(String(i)));
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await Promise.all(runs);
    await eventually(() => seen.length === 13);
    expect(runs.length).toBeGreaterThan(1);
    expect(peak()).toBe(2);
  });

  test('a handler that gives its slot back early: the slot serves the next while it runs on (at most `concurrency` such); its message settles, and a stop waits, until it ends', async () => {
    const ends = new Map<string, () => void>();
    const seen = collect(harness.transport, 'q', (m) => {
      m.freeSlot?.();
      return new Promise<Disposition>((resolve) => { ends.set(m.key, () => resolve({ kind: 'ack' })); });
    });
    const first = (await slotWhenReady(harness.transport, 'q')).run(message('first'));
    await eventually(() => ends.has('first'));
    // `first` runs on, its slot free: the next takes it at once; it may not give it back early too (one slot).
    const second = (await reserve(harness.transport, 'q'))!.run(message('second'));
    await eventually(() => ends.has('second'));
    await expect(reserve(harness.transport, 'q')).resolves.toBeUndefined();
    // A queued message waits for a slot too.
    await harness.transport.publish('q', message('queued'));
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(seen.map((m) => m.key)).toEqual(['first', 'second']);
    // `first` ends: that frees no slot (it gave its own back); `second` ends: the queued one starts.
    ends.get('first')!();
    await expect(first).resolves.toEqual({ kind: 'ack' });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(seen.map((m) => m.key)).toEqual(['first', 'second']);
    ends.get('second')!();
    await expect(second).resolves.toEqual({ kind: 'ack' });
    await eventually(() => ends.has('queued'));
    // The queued one gave its slot back: a stop waits for it all the same, and it is settled (not handed out again).
    let stopped = false;
    const restarting = harness.restart(10_000).then((transport) => { stopped = true; return transport; });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(stopped).toBe(false);
    ends.get('queued')!();
    const again = collect(await restarting, 'q', () => ({ kind: 'ack' }));
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(again).toEqual([]);
    expect(seen.map((m) => m.key)).toEqual(['first', 'second', 'queued']);
  });

  test('a queued message whose handler gave its slot back is not settled yet: after a crash it is handed out again', async () => {
    const seen = collect(harness.transport, 'q', (m) => {
      m.freeSlot!();
      return new Promise<Disposition>(() => undefined);
    });
    await harness.transport.publish('q', message('early'));
    await eventually(() => seen.length === 1);
    const again = collect(await harness.restart(), 'q', () => ({ kind: 'ack' }));
    await eventually(() => again.length === 1);
    expect(again[0]).toMatchObject({ key: 'early', deliveryCount: 2 });
  });

  test('with every slot busy, a caller waits for the next free one, first come first served, for at most its wait', async () => {
    let release!: () => void;
    const seen = collect(harness.transport, 'q', (m) => (m.key !== 'first' ? new Promise<Disposition>((resolve) => { release = () => resolve({ kind: 'ack' }); }) : { kind: 'ack' }));
    const busy = (await slotWhenReady(harness.transport, 'q')).run(message('busy'));
    const first = reserve(harness.transport, 'q', 5_000);
    const second = reserve(harness.transport, 'q', 5_000);
    await new Promise((resolve) => setTimeout(resolve, 50));
    release();
    await busy;
    const slot = await first;
    expect(slot).toBeDefined();
    // The freed slot went to the first caller; the second still waits, and gets it once that one is done.
    let secondSettled = false;
    void second.then(() => { secondSettled = true; });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(secondSettled).toBe(false);
    await expect(slot!.run(message('first'))).resolves.toEqual({ kind: 'ack' });
    const next = await second;
    expect(next).toBeDefined();
    const hung = next!.run(message('hung'));
    // No slot frees within its wait: undefined after about that long.
    const before = Date.now();
    await expect(reserve(harness.transport, 'q', 150)).resolves.toBeUndefined();
    expect(Date.now() - before).toBeGreaterThanOrEqual(140);
    release();
    await hung;
    expect(seen.map((m) => [m.key, m.deliveryCount])).toEqual([['busy', 1], ['first', 1], ['hung', 1]]);
  });

  test('book: a free slot at once; with every slot busy a place in line, whose slot comes when one frees, or nothing when none may wait', async () => {
    let release!: () => void;
    const seen = collect(harness.transport, 'q', (m) => (m.key === 'busy' ? new Promise<Disposition>((resolve) => { release = () => resolve({ kind: 'ack' }); }) : { kind: 'ack' }));
    await slotWhenReady(harness.transport, 'q').then((slot) => slot.release());
    expect(harness.transport.book('other', 1_000)).toBeUndefined();
    const free = harness.transport.book('q', 1_000);
    expect(free?.slot).toBeDefined();
    const busy = free!.slot!.run(message('busy'));
    // Every slot busy: no wait allowed, nothing; else a place in line, known at once (before any slot frees).
    expect(harness.transport.book('q', 0)).toBeUndefined();
    const booked = harness.transport.book('q', 5_000);
    expect(booked?.slot).toBeUndefined();
    expect(booked?.later).toBeInstanceOf(Promise);
    expect(booked?.detached).toBe(true);
    let came = false;
    void booked!.later!.then(() => { came = true; });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(came).toBe(false);
    release();
    await busy;
    const slot = await booked!.later!;
    await expect(slot!.run(message('booked'))).resolves.toEqual({ kind: 'ack' });
    expect(seen.map((m) => m.key)).toEqual(['busy', 'booked']);
  });

  test('a queued message that waits for the slot goes first; a caller lines up behind it, or (embedded) does not wait', async () => {
    let release!: () => void;
    const seen = collect(harness.transport, 'q', (m) => (m.key === 'busy' ? new Promise<Disposition>((resolve) => { release = () => resolve({ kind: 'ack' }); }) : { kind: 'ack' }));
    const busy = (await slotWhenReady(harness.transport, 'q')).run(message('busy'));
    await harness.transport.publish('q', message('queued'));
    // RabbitMQ: the broker's hand-over waits in this process for the slot; embedded: the message is ready in the queue.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const waiting = reserve(harness.transport, 'q', 5_000);
    if (!capabilities.linesUp) await expect(waiting).resolves.toBeUndefined();
    release();
    await busy;
    await eventually(() => seen.length === 2);
    expect(seen.map((m) => m.key)).toEqual(['busy', 'queued']);
    if (capabilities.linesUp) {
      const slot = await waiting;
      expect(slot).toBeDefined();
      await slot!.run(message('waited'));
      expect(seen.map((m) => m.key)).toEqual(['busy', 'queued', 'waited']);
    }
  });

  test('a caller waiting before a message is queued gets the freed slot first (RabbitMQ); embedded: the message does, and the caller goes at once', async () => {
    let release!: () => void;
    const seen = collect(harness.transport, 'q', (m) => (m.key === 'busy' ? new Promise<Disposition>((resolve) => { release = () => resolve({ kind: 'ack' }); }) : { kind: 'ack' }));
    const busy = (await slotWhenReady(harness.transport, 'q')).run(message('busy'));
    const waiting = reserve(harness.transport, 'q', 10_000);
    await harness.transport.publish('q', message('queued'));
    await new Promise((resolve) => setTimeout(resolve, 200));
    release();
    await busy;
    const before = Date.now();
    const slot = await waiting;
    expect(Date.now() - before).toBeLessThan(5_000);
    if (capabilities.linesUp) {
      expect(slot).toBeDefined();
      await slot!.run(message('waited'));
      await eventually(() => seen.length === 3);
      expect(seen.map((m) => m.key)).toEqual(['busy', 'waited', 'queued']);
    } else {
      expect(slot).toBeUndefined();
      await eventually(() => seen.length === 2);
      expect(seen.map((m) => m.key)).toEqual(['busy', 'queued']);
    }
  });

  test(`at most ${SLOT_WAITERS_PER_SLOT} callers per slot wait (besides one per slot that went on); stopping lets them go without one`, async () => {
    collect(harness.transport, 'q', () => new Promise<Disposition>(() => undefined));
    const held = await slotWhenReady(harness.transport, 'q');
    const detached = harness.transport.book('q', 60_000);
    expect(detached?.detached).toBe(true);
    const waiting = [detached!.later!, ...Array.from({ length: SLOT_WAITERS_PER_SLOT }, () => reserve(harness.transport, 'q', 60_000))];
    const before = Date.now();
    await expect(reserve(harness.transport, 'q', 60_000)).resolves.toBeUndefined();
    expect(Date.now() - before).toBeLessThan(1_000);
    await harness.transport.stop(0);
    await expect(Promise.all(waiting)).resolves.toEqual(waiting.map(() => undefined));
    held.release();
  });

  test('dead-lettered messages are not handed out again, also not after restart', async () => {
    const seen = collect(harness.transport, 'q', () => ({ kind: 'dead', reason: 'test' }));
    await harness.transport.publish('q', { key: 'd', body: {} });
    await eventually(() => seen.length === 1);
    const restarted = await harness.restart(5_000);
    const again = collect(restarted, 'q', () => ({ kind: 'ack' }));
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(again).toHaveLength(0);
  });
});
