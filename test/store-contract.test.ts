// The store contract, run against every implementation (embedded SQLite; PostgreSQL for production mode),
// plus the PostgreSQL store's guarantees when several router instances share one database.
import path from 'node:path';
import { Client } from 'pg';
import pino from 'pino';
import { PostgresStore } from '../src/store/postgres-store';
import { openSqlite } from '../src/store/sqlite';
import { SqliteStore } from '../src/store/sqlite-store';
import type { Store } from '../src/store/store';
import { tempDir } from './support/harness';
import { databaseUrl, dropSchema, runId, stopServices } from './support/services';

const log = pino({ level: 'silent' });

/** DATABASE_URL (CI), else a testcontainers PostgreSQL (needs Docker); says which is missing when neither works. */
async function postgresUrl(): Promise<string> {
  try {
    return await databaseUrl();
  } catch (error) {
    throw new Error(`no PostgreSQL for the store tests: set DATABASE_URL or make Docker available for testcontainers (${(error as Error).message})`, { cause: error });
  }
}

/**
 * Batches of writes that failed, from every PostgreSQL store the tests open: a failed batch falls back to
 * writing one by one, which would hide a broken batched statement — so each test fails on any.
 */
const batchFailures: unknown[] = [];
const batchLog = pino({ level: 'warn' }, { write: (line: string) => {
  const entry = JSON.parse(line) as { event?: string };
  if (entry.event === 'batch-failed') batchFailures.push(entry);
} });
afterEach(() => {
  const failures = batchFailures.splice(0);
  expect(failures).toEqual([]);
});

const openPostgres = (url: string, schema: string) => PostgresStore.open({ url, schema, log: batchLog });

const implementations: Array<[string, () => Promise<{ store: Store; close(): Promise<void> }>]> = [
  ['sqlite', async () => {
    const db = openSqlite(path.join(tempDir(), 'store.db'));
    return { store: new SqliteStore(db), close: async () => { db.close(); } };
  }],
  ['postgres', async () => {
    const url = await postgresUrl();
    const schema = runId('st');
    const store = await openPostgres(url, schema);
    return {
      store,
      close: async () => {
        await store.close();
        await dropSchema(url, schema);
      },
    };
  }],
];

afterAll(() => stopServices());

const facts = { messageUuid: 'x', messageType: '0200', reader: 'bab:09162000' };

describe.each(implementations)('%s store', (_name, create) => {
  let store: Store;
  let close: (() => Promise<void>) | undefined;
  beforeEach(async () => {
    close = undefined;
    ({ store, close } = await create());
  });
  afterEach(() => close?.());

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

  test('many submissions accepted at once (written together): each with its own payload, facts, deliveries and history; a messageUuid twice among them is created once', async () => {
    const uuidOf = (i: number) => `a3c1f3a4-0000-4000-8000-${String(i).padStart(12, '0')}`;
    // 0..19 new, 20 and 21 the same messageUuid, 3 of them routed to nowhere (parked), 1 with an attachment.
    const inputs = Array.from({ length: 22 }, (_, i) => {
      const messageUuid = uuidOf(Math.min(i, 20));
      const targets = i % 7 === 3 ? [] : [{ target: `t${i}`, route: `r${i}` }, ...(i % 2 ? [{ target: 'shared', route: 'all' }] : [])];
      return {
        messageUuid, facts: { ...facts, messageUuid }, payload: Buffer.from(`<application n="${i}"/>`), source: 'http', client: i === 5 ? 'portal' : undefined,
        attachments: i === 4 ? [{ id: 'att-4', name: 'plan.pdf', mediaType: 'application/pdf', size: 3, sha256: 'ab', key: 'blob-4', role: 'attachment' as const }] : undefined,
        routing: { facts: { ...facts, messageUuid, tenant: `0916200${i % 10}` }, routes: targets.map((t) => t.route), targets },
        claimed: i === 6 ? { targets: ['t6'], leaseMs: 60_000 } : undefined,
      };
    });
    const results = await Promise.all(inputs.map((input) => store.accept(input)));
    expect(results.slice(0, 20).every((r) => r.created)).toBe(true);
    expect(results.slice(20).map((r) => r.created).sort()).toEqual([false, true]);
    expect(results[20]!.submission.id).toBe(results[21]!.submission.id);
    expect(new Set(results.map((r) => r.submission.id)).size).toBe(21);
    for (let i = 0; i < 20; i += 1) {
      const { id } = results[i]!.submission;
      expect((await store.payload(id))!.toString()).toBe(`<application n="${i}"/>`);
      const status = (await store.get(id))!;
      const parked = i % 7 === 3;
      expect(status).toMatchObject({ messageUuid: uuidOf(i), state: parked ? 'parked' : 'received', reason: parked ? 'no-route' : undefined, facts: { tenant: `0916200${i % 10}` } });
      expect(status.client).toBe(i === 5 ? 'portal' : undefined);
      expect(status.history.map((h) => h.event)).toEqual(['received', parked ? 'parked' : 'routed']);
      expect(status.deliveries.map((d) => [d.target, d.route, d.attempts])).toEqual(parked ? [] : [
        [`t${i}`, `r${i}`, i === 6 ? 1 : 0], ...(i % 2 ? [['shared', 'all', 0]] : []),
      ]);
      expect((await store.attachments(id)).map((a) => a.id)).toEqual(i === 4 ? ['att-4'] : []);
    }
    const twice = (await store.get(results[20]!.submission.id))!;
    expect(twice.history.map((h) => h.event)).toEqual(['received', 'routed', 'resent']);
  });

  test('outcomes of many submissions recorded at once (written together): each delivery and submission gets its own', async () => {
    const ids = await Promise.all(Array.from({ length: 12 }, async (_, i) => {
      const messageUuid = `a3c1f3a4-0000-4000-8000-0000000010${String(i).padStart(2, '0')}`;
      const { submission } = await store.accept({
        messageUuid, facts: { ...facts, messageUuid }, payload: Buffer.from('<x/>'), source: 'http',
        routing: { facts, routes: ['r'], targets: [{ target: 't1', route: 'r' }] }, claimed: { targets: ['t1'], leaseMs: 60_000 },
      });
      return submission.id;
    }));
    await store.markRouted(ids.slice(0, 6));
    const next = new Date(Date.now() + 60_000);
    const outcomeOf = (i: number) => (i % 3 === 0 ? { kind: 'delivered' as const, reference: `AZ-${i}`, detail: `HTTP 201 #${i}` }
      : i % 3 === 1 ? { kind: 'retry' as const, reason: 'http-status', detail: `HTTP 503 #${i}`, nextAttemptAt: next }
        : { kind: 'dead' as const, reason: 'http-status', detail: `HTTP 400 #${i}` });
    await Promise.all(ids.map((id, i) => store.recordOutcome(id, 't1', 1, outcomeOf(i), { onlyDelivery: true })));
    for (const [i, id] of ids.entries()) {
      const status = (await store.get(id))!;
      const outcome = outcomeOf(i);
      // A retry leaves a submission received until markRouted (6..11 were not marked), routed after it.
      expect(status.state).toBe(outcome.kind === 'delivered' ? 'delivered' : outcome.kind === 'dead' ? 'failed' : i < 6 ? 'routed' : 'received');
      expect(status.deliveries).toEqual([expect.objectContaining({
        target: 't1', state: outcome.kind === 'retry' ? 'pending' : outcome.kind, attempts: 1, detail: outcome.detail,
        reference: outcome.kind === 'delivered' ? `AZ-${i}` : undefined, reason: outcome.kind === 'delivered' ? undefined : 'http-status',
        nextAttemptAt: outcome.kind === 'retry' ? next.toISOString() : undefined,
      })]);
      expect(status.history.filter((h) => h.event === 'attempt').map((h) => [h.target, h.attempt, h.outcome, h.detail]))
        .toEqual([['t1', 1, outcome.kind, outcome.kind === 'retry' ? `HTTP 503 #${i}; next attempt ${next.toISOString()}` : outcome.detail]]);
    }
    await expect(store.recordOutcome(ids[0]!, 'nowhere', 1, { kind: 'delivered' }, { onlyDelivery: true })).rejects.toThrow(/no delivery nowhere/);
    // A missing delivery amid others written together fails alone, the others are recorded. (Descending ids:
    // the first two go at once, the other four together — which PostgreSQL writes in the opposite order.)
    const again = [...ids].sort().reverse().slice(0, 6);
    const settled = await Promise.allSettled(again.map((id, i) =>
      store.recordOutcome(id, i === 2 ? 'nowhere' : 't1', 2, { kind: 'delivered', detail: 'again' }, { onlyDelivery: true })));
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled', 'fulfilled']);
    expect(((settled[2] as PromiseRejectedResult).reason as Error).message).toMatch(/no delivery nowhere/);
    for (const [i, id] of again.entries()) {
      const before = outcomeOf(ids.indexOf(id));
      expect((await store.deliveries(id))[0]).toMatchObject(i === 2 ? { detail: before.detail } : { state: 'delivered', detail: 'again' });
    }
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

  test('routing decided at intake is stored with the submission in one step; received until markRouted', async () => {
    const routed = { ...facts, messageUuid: 'a3c1f3a4-0000-4000-8000-0000000000a1', ags: '09162000' };
    const attachments = [{ id: 'a1', name: 'plan.pdf', mediaType: 'application/pdf', size: 3, sha256: 'ab'.repeat(32), key: 'k-a1', role: 'attachment' as const }];
    const first = await store.accept({
      messageUuid: routed.messageUuid, facts: { ...facts, messageUuid: routed.messageUuid }, payload: Buffer.from('<x/>'), source: 'http', attachments,
      routing: { facts: routed, routes: ['r1'], targets: [{ target: 't1', route: 'r1' }, { target: 't2', route: 'r1' }] },
    });
    expect(first).toMatchObject({ created: true, submission: { state: 'received' } });
    const id = first.submission.id;
    let status = (await store.get(id))!;
    expect(status).toMatchObject({ state: 'received', routes: ['r1'], facts: { ags: '09162000' }, attachments: [{ id: 'a1', size: 3 }] });
    expect(status.deliveries.map((d) => [d.target, d.route, d.state, d.attempts])).toEqual([['t1', 'r1', 'pending', 0], ['t2', 'r1', 'pending', 0]]);
    expect(status.history.map((h) => h.event)).toEqual(['received', 'routed']);
    expect(status.history[1]!.detail).toBe('routes r1; targets t1, t2');
    // Until the deliveries are queued, the sweep finds it; routing it again records nothing.
    expect(await store.listReceived()).toEqual([id]);
    expect(await store.recordRouting(id, facts, ['other'], [{ target: 't3', route: 'other' }])).toBe(false);
    await store.markRouted([id]);
    expect(await store.listReceived()).toEqual([]);
    expect((await store.get(id))!.state).toBe('routed');
    expect(await store.list({ tenant: '09162000', limit: 10 })).toMatchObject([{ id }]);

    // The claim brings what the attempt needs of the submission; the outcome settles the state as before.
    const claim = await store.claimAttempt(id, 't2', 60_000);
    expect(claim).toEqual({ kind: 'claimed', attempt: 1, context: { facts: routed, route: 'r1', receivedAt: status.receivedAt, client: undefined, attachments: 1, deliveries: 2 } });
    await store.recordOutcome(id, 't2', 1, { kind: 'delivered', reference: 'AZ-2' });
    await store.recordOutcome(id, 't1', 0, { kind: 'dead', reason: 'http-400', detail: 'refused' });
    status = (await store.get(id))!;
    expect(status.state).toBe('failed');
    // markRouted changes only a received submission.
    await store.markRouted([id]);
    expect((await store.get(id))!.state).toBe('failed');

    // A submission's only delivery: its outcome is recorded without serialising against other deliveries.
    const sole = await store.accept({ messageUuid: 'a3c1f3a4-0000-4000-8000-0000000000a3', facts, payload: Buffer.from('<z/>'), source: 'http', routing: { facts, routes: ['r1'], targets: [{ target: 't1', route: 'r1' }] } });
    const soleClaim = await store.claimAttempt(sole.submission.id, 't1', 60_000);
    expect(soleClaim).toMatchObject({ kind: 'claimed', attempt: 1, context: { deliveries: 1, attachments: 0 } });
    await store.recordOutcome(sole.submission.id, 't1', 1, { kind: 'retry', reason: 'http-503', detail: 'busy', nextAttemptAt: new Date(Date.now() - 1) }, { onlyDelivery: true });
    // (Still `received`: a retry's outcome does not move it on before markRouted.)
    expect((await store.get(sole.submission.id))!).toMatchObject({ state: 'received', deliveries: [{ state: 'pending', reason: 'http-503' }] });
    expect(await store.claimAttempt(sole.submission.id, 't1', 60_000)).toMatchObject({ kind: 'claimed', attempt: 2 });
    await store.recordOutcome(sole.submission.id, 't1', 2, { kind: 'delivered', reference: 'AZ-3' }, { onlyDelivery: true });
    expect((await store.get(sole.submission.id))!).toMatchObject({ state: 'delivered', deliveries: [{ state: 'delivered', reference: 'AZ-3' }] });
    expect((await store.get(sole.submission.id))!.history.map((h) => h.outcome ?? h.event)).toEqual(['received', 'routed', 'retry', 'delivered']);
    await expect(store.recordOutcome(sole.submission.id, 'nope', 1, { kind: 'delivered' }, { onlyDelivery: true })).rejects.toThrow(/no delivery nope/);

    // Resent: the same submission, nothing stored twice; no routes: parked at once.
    expect(await store.accept({ messageUuid: routed.messageUuid, facts, payload: Buffer.from('<x/>'), source: 'http', routing: { facts, routes: [], targets: [] } }))
      .toEqual({ created: false, submission: { id, messageUuid: routed.messageUuid, state: 'failed' } });
    const parked = await store.accept({ messageUuid: 'a3c1f3a4-0000-4000-8000-0000000000a2', facts, payload: Buffer.from('<y/>'), source: 'http', routing: { facts, routes: [], targets: [] } });
    expect(parked.submission.state).toBe('parked');
    expect(await store.get(parked.submission.id)).toMatchObject({ state: 'parked', reason: 'no-route', deliveries: [], history: [{ event: 'received' }, { event: 'parked', reason: 'no-route' }] });
    expect(await store.listReceived()).toEqual([]);
  });

  test('attempts are counted before the outcome; the submission state follows its deliveries', async () => {
    const { submission } = await accept();
    await store.recordRouting(submission.id, facts, ['r'], [{ target: 't1', route: 'r' }, { target: 't2', route: 'r' }]);
    expect(await store.claimAttempt(submission.id, 't1', 60_000)).toMatchObject({ kind: 'claimed', attempt: 1 });
    const next = new Date(Date.now() + 300);
    await store.recordOutcome(submission.id, 't1', 1, { kind: 'retry', reason: 'http-status', detail: 'HTTP 503', nextAttemptAt: next });
    // A copy of the queue message arriving before the next attempt is due waits; the backoff holds.
    const early = await store.claimAttempt(submission.id, 't1', 60_000);
    expect(early.kind).toBe('busy');
    expect((early as { until: Date }).until.getTime()).toBeGreaterThanOrEqual(next.getTime() - 5);
    await new Promise((resolve) => setTimeout(resolve, next.getTime() - Date.now() + 20));
    expect(await store.claimAttempt(submission.id, 't1', 60_000)).toMatchObject({ kind: 'claimed', attempt: 2 });
    await store.recordOutcome(submission.id, 't1', 2, { kind: 'delivered', reference: 'AZ-1', detail: 'HTTP 201' });
    expect((await store.get(submission.id))!.state).toBe('routed');
    expect(await store.claimAttempt(submission.id, 't2', 60_000)).toMatchObject({ kind: 'claimed', attempt: 1 });
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
    expect(await store.countByState()).toEqual({ received: 0, routed: 0, parked: 0, delivered: 0, failed: 1, discarded: 0 });
  });

  test('a rate limit gives its burst, then asks to wait', async () => {
    const limit = { perSecond: 5, burst: 2 };
    expect(await store.takeRateToken('t1', limit)).toBe(0);
    expect(await store.takeRateToken('t1', limit)).toBe(0);
    const wait = await store.takeRateToken('t1', limit);
    expect(wait).toBeGreaterThan(100);
    expect(wait).toBeLessThanOrEqual(200);
    expect(await store.takeRateToken('t2', limit)).toBe(0);
  });

  test('maxInFlight throttles claims while that many leases of the target run', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i += 1) {
      const { submission } = await accept(`c3d1f3a4-0000-4000-8000-00000000000${i}`);
      await store.recordRouting(submission.id, facts, ['r'], [{ target: 't1', route: 'r' }]);
      ids.push(submission.id);
    }
    expect(await store.claimAttempt(ids[0]!, 't1', 60_000, 2)).toMatchObject({ kind: 'claimed', attempt: 1 });
    expect(await store.claimAttempt(ids[1]!, 't1', 60_000, 2)).toMatchObject({ kind: 'claimed', attempt: 1 });
    expect(await store.claimAttempt(ids[2]!, 't1', 60_000, 2)).toEqual({ kind: 'throttled' });
    await store.recordOutcome(ids[0]!, 't1', 1, { kind: 'delivered' });
    expect(await store.claimAttempt(ids[2]!, 't1', 60_000, 2)).toMatchObject({ kind: 'claimed', attempt: 1 });
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
    expect(await store.claimAttempt(submission.id, 't1', 60_000)).toMatchObject({ kind: 'claimed', attempt: 1 });
    const busy = await store.claimAttempt(submission.id, 't1', 60_000);
    expect(busy.kind).toBe('busy');
    expect((busy as { until: Date }).until.getTime()).toBeGreaterThanOrEqual(before + 60_000);
    await store.recordOutcome(submission.id, 't1', 1, { kind: 'retry', reason: 'network-error', detail: 'x', nextAttemptAt: new Date() });
    expect(await store.claimAttempt(submission.id, 't1', 60_000)).toMatchObject({ kind: 'claimed', attempt: 2 });
    await store.recordOutcome(submission.id, 't1', 2, { kind: 'delivered' });
    expect(await store.claimAttempt(submission.id, 't1', 60_000)).toEqual({ kind: 'done' });

    // An expired lease (its holder died) can be taken over.
    expect(await store.claimAttempt(submission.id, 't2', 50)).toMatchObject({ kind: 'claimed', attempt: 1 });
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(await store.claimAttempt(submission.id, 't2', 60_000)).toMatchObject({ kind: 'claimed', attempt: 2 });
  });

  test('deliveries stored claimed at intake have their first attempt counted and leased; the sweep skips the submission while one is leased; an outcome leaves it received until markRouted', async () => {
    const before = Date.now();
    const { submission } = await store.accept({
      messageUuid: 'a3c1f3a4-0000-4000-8000-0000000000c1', facts, payload: Buffer.from('<x/>'), source: 'http',
      routing: { facts, routes: ['r'], targets: [{ target: 't1', route: 'r' }, { target: 't2', route: 'r' }] },
      claimed: { targets: ['t1'], leaseMs: 60_000 },
    });
    expect((await store.get(submission.id))!.deliveries.map((d) => [d.target, d.state, d.attempts])).toEqual([['t1', 'pending', 1], ['t2', 'pending', 0]]);
    expect(await store.listReceived(undefined, { skipLeased: true })).toEqual([]);
    expect(await store.listReceived()).toEqual([submission.id]);
    // Another claim of t1 sees the lease (a copy of its message waits); t2 is claimed as usual.
    const busy = await store.claimAttempt(submission.id, 't1', 60_000);
    expect(busy.kind).toBe('busy');
    expect((busy as { until: Date }).until.getTime()).toBeGreaterThanOrEqual(before + 60_000);
    expect(await store.claimAttempt(submission.id, 't2', 60_000)).toMatchObject({ kind: 'claimed', attempt: 1 });
    // The attempt claimed at intake records its outcome as attempt 1; a retry claims attempt 2.
    await store.recordOutcome(submission.id, 't1', 1, { kind: 'retry', reason: 'network-error', detail: 'x', nextAttemptAt: new Date() });
    await store.recordOutcome(submission.id, 't2', 1, { kind: 'delivered' });
    // Still received (its retry may not be queued yet): the sweep finds it again; markRouted moves it on.
    expect((await store.get(submission.id))!.state).toBe('received');
    expect(await store.listReceived(undefined, { skipLeased: true })).toEqual([submission.id]);
    await store.markRouted([submission.id]);
    expect((await store.get(submission.id))!.state).toBe('routed');
    expect(await store.claimAttempt(submission.id, 't1', 60_000)).toMatchObject({ kind: 'claimed', attempt: 2 });
    await store.recordOutcome(submission.id, 't1', 2, { kind: 'delivered' });
    expect((await store.get(submission.id))!.state).toBe('delivered');
    // A short lease claimed at intake (its holder died) can be taken over.
    const short = await store.accept({
      messageUuid: 'a3c1f3a4-0000-4000-8000-0000000000c2', facts, payload: Buffer.from('<y/>'), source: 'http',
      routing: { facts, routes: ['r'], targets: [{ target: 't1', route: 'r' }] }, claimed: { targets: ['t1'], leaseMs: 50 },
    });
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(await store.claimAttempt(short.submission.id, 't1', 60_000)).toMatchObject({ kind: 'claimed', attempt: 2 });
  });

  test('a claim stored at intake and never used is given back: the attempt uncounted, the lease ended; only that claim, once', async () => {
    const { submission } = await store.accept({
      messageUuid: 'a3c1f3a4-0000-4000-8000-0000000000c3', facts, payload: Buffer.from('<x/>'), source: 'http',
      routing: { facts, routes: ['r'], targets: [{ target: 't1', route: 'r' }, { target: 't2', route: 'r' }] },
      claimed: { targets: ['t1'], leaseMs: 60_000 },
    });
    const id = submission.id;
    expect(await store.releaseClaim(id, 't1', 2)).toBe(false);
    expect(await store.releaseClaim(id, 't2', 0)).toBe(false);
    expect(await store.releaseClaim(id, 't1', 1)).toBe(true);
    expect((await store.deliveries(id)).map((d) => [d.target, d.state, d.attempts])).toEqual([['t1', 'pending', 0], ['t2', 'pending', 0]]);
    expect(await store.listReceived(undefined, { skipLeased: true })).toEqual([id]);
    expect(await store.releaseClaim(id, 't1', 1)).toBe(false);
    // The queued copy claims it at once, as its first attempt.
    expect(await store.claimAttempt(id, 't1', 60_000)).toMatchObject({ kind: 'claimed', attempt: 1 });
    await store.recordOutcome(id, 't1', 1, { kind: 'delivered' });
    expect(await store.releaseClaim(id, 't1', 1)).toBe(false);
    expect((await store.deliveries(id))[0]).toMatchObject({ state: 'delivered', attempts: 1 });
  });

  /** A submission whose delivery to t1 is dead after one rejected attempt (t2 delivered). */
  async function deadOnT1(uuid = 'a3c1f3a4-0000-4000-8000-0000000000d1') {
    const { submission } = await accept(uuid);
    await store.recordRouting(submission.id, { ...facts, ags: '091620000000' }, ['r1'], [{ target: 't1', route: 'r1' }, { target: 't2', route: 'r1' }]);
    await store.claimAttempt(submission.id, 't1', 60_000);
    await store.recordOutcome(submission.id, 't1', 1, { kind: 'dead', reason: 'http-status', detail: 'HTTP 400' });
    await store.claimAttempt(submission.id, 't2', 60_000);
    await store.recordOutcome(submission.id, 't2', 1, { kind: 'delivered' });
    return submission.id;
  }
  const operator = (action: string, id: string, extra: Partial<{ target: string; detail: string }> = {}) => ({ actor: 'ops-anna', action, submissionId: id, ...extra });

  test('replay gives a dead delivery a fresh attempt budget; only dead ones can be replayed; audited', async () => {
    const id = await deadOnT1();
    expect((await store.get(id))!.state).toBe('failed');
    expect(await store.replay(id, 't2', { audit: operator('replay', id) })).toEqual({ ok: false, problem: 'wrong-state', detail: 'the delivery to t2 is delivered, not dead' });
    expect(await store.replay(id, 'nope', { audit: operator('replay', id) })).toMatchObject({ ok: false, problem: 'not-found' });
    expect(await store.replay('00000000-0000-4000-8000-000000000000', 't1', { audit: operator('replay', id) })).toMatchObject({ ok: false, problem: 'not-found' });
    expect(await store.audit({ submissionId: id, limit: 10 })).toEqual([]);

    expect(await store.replay(id, 't1', { audit: operator('replay', id, { target: 't1' }) })).toEqual({ ok: true });
    const status = (await store.get(id))!;
    expect(status.state).toBe('routed');
    expect(status.deliveries[0]).toMatchObject({ target: 't1', state: 'pending', attempts: 0 });
    expect(status.deliveries[0]!.reason).toBeUndefined();
    expect(status.history.at(-1)).toMatchObject({ event: 'replayed', target: 't1', detail: 'by ops-anna' });
    expect(await store.claimAttempt(id, 't1', 60_000)).toMatchObject({ kind: 'claimed', attempt: 1 });
    await store.recordOutcome(id, 't1', 1, { kind: 'delivered' });
    expect((await store.get(id))!.state).toBe('delivered');
    expect(await store.audit({ submissionId: id, limit: 10 })).toMatchObject([{ actor: 'ops-anna', action: 'replay', submissionId: id, target: 't1' }]);
  });

  test('replay to another target discards the dead delivery and creates one for the new target', async () => {
    const id = await deadOnT1();
    expect(await store.replay(id, 't1', { toTarget: { target: 't2', route: 'replay' }, audit: operator('replay', id) })).toMatchObject({ ok: false, problem: 'wrong-state' });
    expect(await store.replay(id, 't1', { toTarget: { target: 't3', route: 'replay' }, audit: operator('replay', id, { target: 't3' }) })).toEqual({ ok: true });
    const status = (await store.get(id))!;
    expect(status.deliveries.map((d) => [d.target, d.route, d.state])).toEqual([['t1', 'r1', 'discarded'], ['t2', 'r1', 'delivered'], ['t3', 'replay', 'pending']]);
    expect(status.state).toBe('routed');
  });

  test('discard gives up a dead delivery or a parked submission, with the reason; not a pending one', async () => {
    const id = await deadOnT1();
    expect(await store.discard(id, 't2', operator('discard', id))).toMatchObject({ ok: false, problem: 'wrong-state' });
    expect(await store.discard(id, 't1', operator('discard', id, { target: 't1', detail: 'duplicate application, confirmed by phone' }))).toEqual({ ok: true });
    let status = (await store.get(id))!;
    expect(status.state).toBe('delivered');
    expect(status.deliveries[0]).toMatchObject({ state: 'discarded', detail: 'duplicate application, confirmed by phone' });
    expect(status.history.at(-1)).toMatchObject({ event: 'discarded', target: 't1' });

    const { submission } = await accept('a3c1f3a4-0000-4000-8000-0000000000d2');
    expect(await store.discard(submission.id, undefined, operator('discard', submission.id))).toMatchObject({ ok: false, problem: 'wrong-state' });
    await store.recordRouting(submission.id, facts, [], []);
    expect(await store.discard(submission.id, undefined, operator('discard', submission.id, { detail: 'test message' }))).toEqual({ ok: true });
    status = (await store.get(submission.id))!;
    expect(status).toMatchObject({ state: 'discarded', reason: 'discarded' });
    expect((await store.countByState()).discarded).toBe(1);
    expect((await store.audit({ limit: 10 })).map((a) => a.submissionId)).toEqual([submission.id, id]);
  });

  test('a parked submission can be routed again after a configuration fix', async () => {
    const { submission } = await accept();
    await store.recordRouting(submission.id, facts, [], []);
    expect(await store.reroute(submission.id, operator('reroute', submission.id))).toEqual({ ok: true });
    expect((await store.get(submission.id))!.state).toBe('received');
    expect(await store.listReceived()).toEqual([submission.id]);
    expect(await store.reroute(submission.id, operator('reroute', submission.id))).toMatchObject({ ok: false, problem: 'wrong-state' });
    expect(await store.recordRouting(submission.id, facts, ['r1'], [{ target: 't1', route: 'r1' }])).toBe(true);
    expect((await store.get(submission.id))!.history.map((h) => h.event)).toEqual(['received', 'parked', 'rerouted', 'routed']);
  });

  test('a receipt for a delivered delivery is recorded once, with the file number as reference; the client is kept', async () => {
    const { submission } = await store.accept({ messageUuid: 'a3c1f3a4-0000-4000-8000-0000000000f1', facts, payload: Buffer.from('<x/>'), source: 'http', client: 'formserver-muenchen' });
    await store.recordRouting(submission.id, facts, ['r1'], [{ target: 't1', route: 'r1' }]);
    expect(await store.recordReceipt(submission.id, 't1', { status: 'accepted' }, 'lbk')).toMatchObject({ ok: false, problem: 'wrong-state' });
    await store.claimAttempt(submission.id, 't1', 60_000);
    await store.recordOutcome(submission.id, 't1', 1, { kind: 'delivered', reference: 'HTTP-REF' });
    expect(await store.recordReceipt(submission.id, 't1', { status: 'accepted', fileNumber: 'LBK-2026-0042' }, 'lbk')).toEqual({ ok: true, changed: true });
    expect(await store.recordReceipt(submission.id, 't1', { fileNumber: 'LBK-2026-0042', status: 'accepted' }, 'lbk')).toEqual({ ok: true, changed: false });
    const status = (await store.get(submission.id))!;
    expect(status.client).toBe('formserver-muenchen');
    expect(status.deliveries[0]).toMatchObject({ reference: 'LBK-2026-0042', receipt: { status: 'accepted', fileNumber: 'LBK-2026-0042' } });
    expect(status.history.filter((h) => h.event === 'receipt')).toEqual([expect.objectContaining({ target: 't1', detail: 'accepted, file number LBK-2026-0042 (reported by lbk)' })]);
    expect(await store.recordReceipt(submission.id, 't1', { status: 'rejected', reason: 'incomplete-plans' }, 'lbk')).toEqual({ ok: true, changed: true });
    expect((await store.get(submission.id))!.deliveries[0]).toMatchObject({ reference: 'LBK-2026-0042', receipt: { status: 'rejected', reason: 'incomplete-plans' } });
    expect(await store.recordReceipt(submission.id, 'nope', { status: 'accepted' }, 'lbk')).toMatchObject({ ok: false, problem: 'not-found' });
  });

  test('stats count attempt outcomes per target and received/delivered per minute since a time', async () => {
    const since = new Date(Date.now() - 60_000);
    await deadOnT1();
    const stats = await store.stats(since);
    expect(stats.attempts).toEqual([{ target: 't1', outcome: 'dead', count: 1 }, { target: 't2', outcome: 'delivered', count: 1 }]);
    expect(stats.perMinute.reduce((sum, m) => sum + m.received, 0)).toBe(1);
    expect(stats.perMinute.reduce((sum, m) => sum + m.delivered, 0)).toBe(1);
    expect(stats.perMinute[0]!.minute).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$/);
    expect(await store.stats(new Date(Date.now() + 60_000))).toEqual({ attempts: [], perMinute: [] });
  });

  test('the list filters by state, tenant, target, delivery state and route, newest first, in pages', async () => {
    const failed = await deadOnT1('a3c1f3a4-0000-4000-8000-0000000000e1');
    await new Promise((resolve) => setTimeout(resolve, 5));
    const { submission: parked } = await accept('a3c1f3a4-0000-4000-8000-0000000000e2');
    await store.recordRouting(parked.id, { ...facts, ags: '09761000' }, [], []);
    await new Promise((resolve) => setTimeout(resolve, 5));
    const { submission: received } = await accept('a3c1f3a4-0000-4000-8000-0000000000e3');
    const ids = async (query: Parameters<Store['list']>[0]) => (await store.list(query)).map((s) => s.id);

    expect(await ids({ limit: 10 })).toEqual([received.id, parked.id, failed]);
    expect(await ids({ limit: 2 })).toEqual([received.id, parked.id]);
    expect(await ids({ limit: 2, after: parked.id })).toEqual([failed]);
    expect(await ids({ limit: 10, states: ['parked', 'failed'] })).toEqual([parked.id, failed]);
    expect(await ids({ limit: 10, tenant: '09162000' })).toEqual([failed]);
    expect(await ids({ limit: 10, target: 't1', deliveryState: 'dead' })).toEqual([failed]);
    expect(await ids({ limit: 10, target: 't2', deliveryState: 'dead' })).toEqual([]);
    expect(await ids({ limit: 10, route: 'r1' })).toEqual([failed]);
    expect(await ids({ limit: 10, receivedFrom: new Date(Date.now() + 60_000) })).toEqual([]);
    const [item] = await store.list({ limit: 1, states: ['failed'] });
    expect(item).toMatchObject({ id: failed, state: 'failed', tenant: '09162000', messageType: '0200', source: 'http' });
    expect(item!.deliveries.map((d) => [d.target, d.state])).toEqual([['t1', 'dead'], ['t2', 'delivered']]);
  });

  test('concurrent claims of one delivery: exactly one wins', async () => {
    const { submission } = await accept();
    await store.recordRouting(submission.id, facts, ['r'], [{ target: 't1', route: 'r' }]);
    const claims = await Promise.all(Array.from({ length: 8 }, () => store.claimAttempt(submission.id, 't1', 60_000)));
    expect(claims.filter((c) => c.kind === 'claimed')).toHaveLength(1);
    expect(claims.filter((c) => c.kind === 'busy')).toHaveLength(7);
  });
});

describe('postgres store shared by several router instances', () => {
  let url: string;
  let schema: string;
  let a: PostgresStore;
  let b: PostgresStore;
  let opened: PostgresStore[];
  beforeEach(async () => {
    opened = [];
    url = await postgresUrl();
    schema = runId('st');
    // Two instances starting at once on a new schema: both migrate it, under the migration lock.
    [a, b] = await Promise.all([openPostgres(url, schema), openPostgres(url, schema)]);
    opened.push(a, b);
  });
  afterEach(async () => {
    await Promise.all(opened.map((s) => s.close()));
    if (schema) await dropSchema(url, schema);
  });

  const uuid = 'b7d2e4c1-0000-4000-8000-000000000001';
  const acceptOn = (store: Store, messageUuid = uuid) =>
    store.accept({ messageUuid, facts: { ...facts, messageUuid }, payload: Buffer.from('<x/>'), source: 'http' });
  /** Alternates the calls between the two instances and runs them all at once. */
  const onBoth = <T>(n: number, call: (store: Store, i: number) => Promise<T>) =>
    Promise.all(Array.from({ length: n }, (_, i) => call(i % 2 ? a : b, i)));

  test('concurrent accepts of one messageUuid on two instances create exactly one submission', async () => {
    const results = await onBoth(20, (store) => acceptOn(store));
    expect(results.filter((r) => r.created)).toHaveLength(1);
    const ids = new Set(results.map((r) => r.submission.id));
    expect(ids.size).toBe(1);
    const status = (await a.get([...ids][0]!))!;
    expect(status.history.map((h) => h.event).sort()).toEqual(['received', ...Array<string>(19).fill('resent')]);
    expect(status.history[0]!.event).toBe('received');
    expect(await b.countByState()).toEqual({ received: 1, routed: 0, parked: 0, delivered: 0, failed: 0, discarded: 0 });
  });

  test('concurrent accepts of 40 submissions, each sent three times (twice to one instance, once to the other): each created exactly once, with its payload', async () => {
    const uuidOf = (n: number) => `b7d2e4c1-0000-4000-8000-1000000000${String(n).padStart(2, '0')}`;
    const results = await Promise.all(Array.from({ length: 120 }, (_, i) => {
      const n = i % 40;
      const copy = Math.floor(i / 40);
      return (copy === 2 ? b : a).accept({ messageUuid: uuidOf(n), facts: { ...facts, messageUuid: uuidOf(n) }, payload: Buffer.from(`<x n="${n}"/>`), source: 'http' });
    }));
    expect(results.filter((r) => r.created)).toHaveLength(40);
    for (let n = 0; n < 40; n += 1) {
      const copies = [results[n]!, results[n + 40]!, results[n + 80]!];
      expect(copies.filter((r) => r.created)).toHaveLength(1);
      expect(new Set(copies.map((r) => r.submission.id)).size).toBe(1);
      expect((await a.payload(copies[0]!.submission.id))!.toString()).toBe(`<x n="${n}"/>`);
    }
    expect(await b.countByState()).toEqual({ received: 40, routed: 0, parked: 0, delivered: 0, failed: 0, discarded: 0 });
  });

  test('concurrent routing of one submission on two instances is recorded exactly once', async () => {
    const { submission } = await acceptOn(a);
    const results = await onBoth(10, (store, i) => store.recordRouting(submission.id, facts, [`r${i}`], [{ target: `t${i}`, route: `r${i}` }]));
    expect(results.filter(Boolean)).toHaveLength(1);
    const winner = results.indexOf(true);
    const status = (await b.get(submission.id))!;
    expect(status).toMatchObject({ state: 'routed', routes: [`r${winner}`] });
    expect(status.deliveries.map((d) => d.target)).toEqual([`t${winner}`]);
    expect(status.history.map((h) => h.event)).toEqual(['received', 'routed']);
  });

  test('concurrent claims of one delivery on two instances: exactly one wins, the others see its lease', async () => {
    const { submission } = await acceptOn(a);
    await a.recordRouting(submission.id, facts, ['r'], [{ target: 't1', route: 'r' }]);
    const claims = await onBoth(10, (store) => store.claimAttempt(submission.id, 't1', 60_000));
    expect(claims.filter((c) => c.kind === 'claimed')).toMatchObject([{ kind: 'claimed', attempt: 1 }]);
    const busy = claims.filter((c): c is { kind: 'busy'; until: Date } => c.kind === 'busy');
    expect(busy).toHaveLength(9);
    expect(new Set(busy.map((c) => c.until.getTime())).size).toBe(1);
    expect((await b.deliveries(submission.id))[0]).toMatchObject({ state: 'pending', attempts: 1 });
  });

  test('two deliveries of one submission finishing at once on two instances: the submission reaches its final state', async () => {
    // Repeated, because the interleaving that loses the final state needs both transactions to overlap.
    for (let i = 0; i < 20; i += 1) {
      const { submission } = await acceptOn(a, `b7d2e4c1-0000-4000-8000-${String(i).padStart(12, '0')}`);
      await a.recordRouting(submission.id, facts, ['r'], [{ target: 't1', route: 'r' }, { target: 't2', route: 'r' }]);
      expect(await a.claimAttempt(submission.id, 't1', 60_000)).toMatchObject({ kind: 'claimed', attempt: 1 });
      expect(await b.claimAttempt(submission.id, 't2', 60_000)).toMatchObject({ kind: 'claimed', attempt: 1 });
      const last = i % 2 ? { kind: 'dead' as const, reason: 'http-status', detail: 'HTTP 400' } : { kind: 'delivered' as const };
      await Promise.all([
        a.recordOutcome(submission.id, 't1', 1, { kind: 'delivered' }),
        b.recordOutcome(submission.id, 't2', 1, last),
      ]);
      expect((await a.get(submission.id))!.state).toBe(i % 2 ? 'failed' : 'delivered');
    }
    expect(await b.countByState()).toEqual({ received: 0, routed: 0, parked: 0, delivered: 10, failed: 10, discarded: 0 });
  });

  test('a rate limit holds across instances: of 20 concurrent requests only the burst is granted', async () => {
    const waits = await onBoth(20, (store) => store.takeRateToken('t1', { perSecond: 0.5, burst: 5 }));
    expect(waits.filter((w) => w === 0)).toHaveLength(5);
    // The others reserved consecutive slots 2 s apart (none lost to a concurrent update, none refilled
    // twice); the test's own runtime refills a little, so each wait is at most that much shorter.
    const reserved = waits.filter((w) => w > 0).sort((x, y) => x - y);
    reserved.forEach((wait, k) => {
      expect(wait).toBeLessThanOrEqual(2000 * (k + 1));
      expect(wait).toBeGreaterThan(2000 * (k + 1) - 1000);
    });
  });

  test('maxInFlight holds across instances: concurrent claims of 10 deliveries take exactly the limit', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 10; i += 1) {
      const { submission } = await acceptOn(a, `d7d2e4c1-0000-4000-8000-00000000000${i}`);
      await a.recordRouting(submission.id, facts, ['r'], [{ target: 't1', route: 'r' }]);
      ids.push(submission.id);
    }
    const claims = await onBoth(10, (store, i) => store.claimAttempt(ids[i]!, 't1', 60_000, 3));
    expect(claims.filter((c) => c.kind === 'claimed')).toHaveLength(3);
    expect(claims.filter((c) => c.kind === 'throttled')).toHaveLength(7);
  });

  test('an instance that starts later leaves the leases of running instances alone', async () => {
    const { submission } = await acceptOn(a);
    await a.recordRouting(submission.id, facts, ['r'], [{ target: 't1', route: 'r' }]);
    expect(await a.claimAttempt(submission.id, 't1', 60_000)).toMatchObject({ kind: 'claimed', attempt: 1 });
    const later = await openPostgres(url, schema);
    opened.push(later);
    expect((await later.claimAttempt(submission.id, 't1', 60_000)).kind).toBe('busy');
  });

  test('each instance works in its own schema only', async () => {
    const otherSchema = runId('st');
    const other = await openPostgres(url, otherSchema);
    try {
      await acceptOn(a);
      expect(await other.countByState()).toEqual({ received: 0, routed: 0, parked: 0, delivered: 0, failed: 0, discarded: 0 });
      expect((await acceptOn(other)).created).toBe(true);
    } finally {
      await other.close();
      await dropSchema(url, otherSchema);
    }
  });

  test('payloads and attachment chunks are compressed with lz4 where the server has it; a payload reads back the same', async () => {
    const client = new Client({ connectionString: url });
    await client.connect();
    try {
      const { rows: [setting] } = await client.query<{ lz4: boolean }>(
        `SELECT 'lz4' = ANY(enumvals) AS lz4 FROM pg_settings WHERE name = 'default_toast_compression'`);
      const columns = await client.query<{ table: string; compression: string }>(
        `SELECT c.relname AS table, a.attcompression AS compression FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = $1 AND ((c.relname = 'payloads' AND a.attname = 'body') OR (c.relname = 'blob_chunks' AND a.attname = 'data')) ORDER BY 1`, [schema]);
      // Without lz4 (a server built without it) the migration leaves the default: nothing fails.
      const expected = setting?.lz4 ? 'l' : '';
      expect(columns.rows).toEqual([{ table: 'blob_chunks', compression: expected }, { table: 'payloads', compression: expected }]);
      const payload = Buffer.from(`<x>${'<feld>Beispielwert</feld>'.repeat(1000)}</x>`);
      const { submission } = await a.accept({ messageUuid: uuid, facts: { ...facts, messageUuid: uuid }, payload, source: 'http' });
      expect((await b.payload(submission.id))?.equals(payload)).toBe(true);
      const { rows: [stored] } = await client.query<{ method: string | null }>(
        `SELECT pg_column_compression(body) AS method FROM "${schema}".payloads WHERE submission_id = $1`, [submission.id]);
      expect(stored?.method).toBe(setting?.lz4 ? 'lz4' : 'pglz');
    } finally {
      await client.end();
    }
  });

  test('a claim reads its own delivery only, also when the statistics say almost nothing is pending (a backlog after a quiet time)', async () => {
    const client = new Client({ connectionString: url });
    await client.connect();
    const deliveriesRead = async () => {
      await client.query('SELECT pg_stat_clear_snapshot()');
      const { rows: [row] } = await client.query<{ n: string }>(
        `SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) AS n FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = 'deliveries'`, [schema]);
      return Number(row!.n);
    };
    try {
      await client.query(`ALTER TABLE "${schema}".deliveries SET (autovacuum_enabled = false)`);
      const accept = async (store: Store, i: number) => {
        const messageUuid = `c1d2e4c1-0000-4000-8000-${String(i).padStart(12, '0')}`;
        const { submission } = await store.accept({ messageUuid, facts: { ...facts, messageUuid }, payload: Buffer.from('<x/>'), source: 'http',
          routing: { facts, routes: ['r'], targets: [{ target: 't1', route: 'r' }] } });
        return submission.id;
      };
      // A quiet time: everything delivered, and the statistics say so.
      for (let i = 0; i < 50; i += 1) {
        const id = await accept(a, i);
        const claim = await a.claimAttempt(id, 't1', 60_000);
        if (claim.kind !== 'claimed') throw new Error('not claimed');
        await a.recordOutcome(id, 't1', claim.attempt, { kind: 'delivered' }, { onlyDelivery: true });
      }
      await client.query(`ANALYZE "${schema}".deliveries`);
      // Then a backlog.
      const backlog: string[] = [];
      for (let i = 50; i < 2050; i += 1) backlog.push(await accept(a, i));
      // Fresh connections (their prepared statements planned with those statistics), closed after the
      // claims so that their table statistics are reported.
      const readBy = async (work: (store: PostgresStore) => Promise<unknown>) => {
        const fresh = await openPostgres(url, schema);
        const before = await deliveriesRead();
        await work(fresh);
        await fresh.close();
        let read = 0;
        for (let i = 0; i < 50 && read === 0; i += 1) {
          await new Promise((resolve) => setTimeout(resolve, 100));
          read = (await deliveriesRead()) - before;
        }
        return read;
      };
      const claimed = backlog.slice(0, 24);
      const claimsRead = await readBy(async (fresh) => {
        for (const id of claimed) expect((await fresh.claimAttempt(id, 't1', 60_000)).kind).toBe('claimed');
      });
      expect(claimsRead).toBeGreaterThan(0);
      // Each claim reads its delivery and counts its submission's deliveries: a few rows, not the backlog.
      expect(claimsRead).toBeLessThan(24 * 10);
      // So do outcomes, one by one and written together (one statement, planned for a few rows).
      const outcomesRead = await readBy(async (fresh) => {
        for (const id of claimed.slice(0, 8)) await fresh.recordOutcome(id, 't1', 1, { kind: 'delivered' }, { onlyDelivery: true });
        await Promise.all(claimed.slice(8).map((id) => fresh.recordOutcome(id, 't1', 1, { kind: 'delivered' }, { onlyDelivery: true })));
      });
      expect(outcomesRead).toBeGreaterThan(0);
      expect(outcomesRead).toBeLessThan(24 * 10);
    } finally {
      await client.end();
    }
  });

  test('a schema name that is not a plain identifier is refused before connecting', async () => {
    await expect(PostgresStore.open({ url, schema: 'x"; DROP SCHEMA public; --', log })).rejects.toThrow(/invalid PostgreSQL schema name/);
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
