// The store contract, run against every implementation (embedded SQLite now; PostgreSQL joins in production mode).
import path from 'node:path';
import { openSqlite } from '../src/store/sqlite';
import { SqliteStore } from '../src/store/sqlite-store';
import type { Store } from '../src/store/store';
import { tempDir } from './support/harness';

const implementations: Array<[string, () => { store: Store; close(): void }]> = [
  ['sqlite', () => {
    const db = openSqlite(path.join(tempDir(), 'store.db'));
    return { store: new SqliteStore(db), close: () => db.close() };
  }],
];

const facts = { messageUuid: 'x', messageType: '0200', reader: 'bab:09162000' };

describe.each(implementations)('%s store', (_name, create) => {
  let store: Store;
  let close: () => void;
  beforeEach(() => ({ store, close } = create()));
  afterEach(() => close());

  const accept = (uuid = 'a3c1f3a4-0000-4000-8000-000000000001', payload = Buffer.from('<x/>')) =>
    store.accept({ messageUuid: uuid, facts: { ...facts, messageUuid: uuid }, payload, source: 'http' });

  test('accept stores submission and payload; the same messageUuid finds the same submission', async () => {
    const first = await accept(undefined, Buffer.from('<first/>'));
    expect(first).toMatchObject({ created: true, submission: { state: 'received', messageUuid: 'a3c1f3a4-0000-4000-8000-000000000001' } });
    const again = await accept(undefined, Buffer.from('<second/>'));
    expect(again).toEqual({ created: false, submission: first.submission });
    expect((await store.payload(first.submission.id))!.toString()).toBe('<first/>');
    const status = (await store.get(first.submission.id))!;
    expect(status).toMatchObject({ state: 'received', source: 'http', size: 8, facts: { messageType: '0200' }, deliveries: [], routes: [] });
    expect(status.history.map((h) => h.event)).toEqual(['received', 'resent']);
    expect(await store.listReceived()).toEqual([first.submission.id]);
    expect(await store.get('00000000-0000-4000-8000-000000000000')).toBeUndefined();
  });

  test('routing is recorded once; no targets parks the submission', async () => {
    const { submission } = await accept();
    expect(await store.recordRouting(submission.id, { ...facts, ags: '09162000' }, ['r1'], [{ target: 't1', route: 'r1' }, { target: 't2', route: 'r1' }])).toBe(true);
    expect(await store.recordRouting(submission.id, facts, ['other'], [{ target: 't3', route: 'other' }])).toBe(false);
    const status = (await store.get(submission.id))!;
    expect(status).toMatchObject({ state: 'routed', routes: ['r1'], facts: { ags: '09162000' } });
    expect(status.deliveries.map((d) => [d.target, d.state, d.attempts])).toEqual([['t1', 'pending', 0], ['t2', 'pending', 0]]);
    expect(await store.listReceived()).toEqual([]);

    const other = await accept('a3c1f3a4-0000-4000-8000-000000000002');
    await store.recordRouting(other.submission.id, facts, [], []);
    expect(await store.get(other.submission.id)).toMatchObject({ state: 'parked', reason: 'no-route' });
  });

  test('attempts are counted before the outcome; the submission state follows its deliveries', async () => {
    const { submission } = await accept();
    await store.recordRouting(submission.id, facts, ['r'], [{ target: 't1', route: 'r' }, { target: 't2', route: 'r' }]);
    expect(await store.claimAttempt(submission.id, 't1', 60_000)).toEqual({ kind: 'claimed', attempt: 1 });
    const next = new Date(Date.now() + 1000);
    await store.recordOutcome(submission.id, 't1', 1, { kind: 'retry', reason: 'http-status', detail: 'HTTP 503', nextAttemptAt: next });
    expect(await store.claimAttempt(submission.id, 't1', 60_000)).toEqual({ kind: 'claimed', attempt: 2 });
    await store.recordOutcome(submission.id, 't1', 2, { kind: 'delivered', reference: 'AZ-1', detail: 'HTTP 201' });
    expect((await store.get(submission.id))!.state).toBe('routed');
    expect(await store.claimAttempt(submission.id, 't2', 60_000)).toEqual({ kind: 'claimed', attempt: 1 });
    await store.recordOutcome(submission.id, 't2', 1, { kind: 'dead', reason: 'http-status', detail: 'HTTP 400' });
    const status = (await store.get(submission.id))!;
    expect(status.state).toBe('failed');
    expect(status.deliveries).toEqual([
      expect.objectContaining({ target: 't1', state: 'delivered', attempts: 2, reference: 'AZ-1' }),
      expect.objectContaining({ target: 't2', state: 'dead', attempts: 1, reason: 'http-status', detail: 'HTTP 400' }),
    ]);
    expect(status.history.filter((h) => h.event === 'attempt').map((h) => [h.target, h.attempt, h.outcome, h.reason])).toEqual([
      ['t1', 1, 'retry', 'http-status'], ['t1', 2, 'delivered', undefined], ['t2', 1, 'dead', 'http-status'],
    ]);
    expect(await store.countByState()).toEqual({ received: 0, routed: 0, parked: 0, delivered: 0, failed: 1 });
  });

  test('all deliveries delivered makes the submission delivered', async () => {
    const { submission } = await accept();
    await store.recordRouting(submission.id, facts, ['r'], [{ target: 't1', route: 'r' }]);
    await store.claimAttempt(submission.id, 't1', 60_000);
    await store.recordOutcome(submission.id, 't1', 1, { kind: 'delivered' });
    expect((await store.get(submission.id))!.state).toBe('delivered');
  });

  test('a claimed delivery is busy for others until its lease ends or its outcome is recorded; a finished one is done', async () => {
    const { submission } = await accept();
    await store.recordRouting(submission.id, facts, ['r'], [{ target: 't1', route: 'r' }, { target: 't2', route: 'r' }]);
    const before = Date.now();
    expect(await store.claimAttempt(submission.id, 't1', 60_000)).toEqual({ kind: 'claimed', attempt: 1 });
    const busy = await store.claimAttempt(submission.id, 't1', 60_000);
    expect(busy.kind).toBe('busy');
    expect((busy as { until: Date }).until.getTime()).toBeGreaterThanOrEqual(before + 60_000);
    await store.recordOutcome(submission.id, 't1', 1, { kind: 'retry', reason: 'network-error', detail: 'x', nextAttemptAt: new Date() });
    expect(await store.claimAttempt(submission.id, 't1', 60_000)).toEqual({ kind: 'claimed', attempt: 2 });
    await store.recordOutcome(submission.id, 't1', 2, { kind: 'delivered' });
    expect(await store.claimAttempt(submission.id, 't1', 60_000)).toEqual({ kind: 'done' });

    // An expired lease (its holder died) can be taken over.
    expect(await store.claimAttempt(submission.id, 't2', 50)).toEqual({ kind: 'claimed', attempt: 1 });
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(await store.claimAttempt(submission.id, 't2', 60_000)).toEqual({ kind: 'claimed', attempt: 2 });
  });

  test('concurrent claims of one delivery: exactly one wins', async () => {
    const { submission } = await accept();
    await store.recordRouting(submission.id, facts, ['r'], [{ target: 't1', route: 'r' }]);
    const claims = await Promise.all(Array.from({ length: 8 }, () => store.claimAttempt(submission.id, 't1', 60_000)));
    expect(claims.filter((c) => c.kind === 'claimed')).toHaveLength(1);
    expect(claims.filter((c) => c.kind === 'busy')).toHaveLength(7);
  });
});

test('a second process cannot open the same embedded store', () => {
  const file = path.join(tempDir(), 'store.db');
  const first = openSqlite(file);
  try {
    expect(() => openSqlite(file)).toThrow(/in use by another process/);
  } finally {
    first.close();
  }
});
