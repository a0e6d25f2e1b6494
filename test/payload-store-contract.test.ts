// The payload store contract (claim check), run against both implementations: a local directory (embedded
// mode) and PostgreSQL chunks (production mode); plus the attachment references the submission store keeps.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import pino from 'pino';
import { DirectoryPayloadStore } from '../src/store/directory-payload-store';
import { storeMetered, type PayloadStore } from '../src/store/payload-store';
import { Retention } from '../src/store/retention';
import { PostgresStore } from '../src/store/postgres-store';
import { openSqlite } from '../src/store/sqlite';
import { SqliteStore } from '../src/store/sqlite-store';
import type { AttachmentRecord, Store } from '../src/store/store';
import { tempDir } from './support/harness';
import { databaseUrl, dropSchema, payloadRows, runId, stopServices } from './support/services';

afterAll(() => stopServices());

interface Implementation {
  store: Store;
  payloads: PayloadStore;
  /** Everything the payload store holds (files, or blob and chunk rows). */
  held(): Promise<number>;
  close(): Promise<void>;
}

const implementations: Array<[string, () => Promise<Implementation>]> = [
  ['directory', async () => {
    const dir = tempDir();
    const db = openSqlite(path.join(dir, 'store.db'));
    const root = path.join(dir, 'payloads');
    return {
      store: new SqliteStore(db),
      payloads: await DirectoryPayloadStore.open(root),
      held: async () => readdirSync(root, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).length,
      close: async () => { db.close(); },
    };
  }],
  ['postgres', async () => {
    const url = await databaseUrl();
    const schema = runId('ps');
    const store = await PostgresStore.open({ url, schema, log: pino({ level: 'silent' }) });
    return {
      store,
      payloads: store.payloadStore,
      held: () => payloadRows(url, schema),
      close: async () => {
        await store.close();
        await dropSchema(url, schema);
      },
    };
  }],
];

const LIMIT = { maxBytes: 8 * 1024 * 1024, code: 'attachment-limit-exceeded' as const, detail: 'attachment 1 exceeds 8388608 bytes' };
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** A stream of `bytes` in uneven pieces, as a network would deliver them. */
const pieces = (bytes: Buffer) => Readable.from((function* () {
  for (let at = 0; at < bytes.length; at += 65_521) yield bytes.subarray(at, at + 65_521);
})(), { objectMode: false });

const readAll = async (stream: Readable) => {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
};

describe.each(implementations)('%s payload store', (_name, create) => {
  let impl: Implementation;
  beforeEach(async () => {
    impl = await create();
  });
  afterEach(() => impl.close());

  it('streams bytes in and out unchanged, with size and SHA-256, as often as asked', async () => {
    const bytes = randomBytes(3 * 1024 * 1024 + 17);
    const blob = await storeMetered(impl.payloads, pieces(bytes), LIMIT);
    expect(blob).toEqual({ key: expect.stringMatching(/^[0-9a-f-]{36}$/), size: bytes.length, sha256: sha256(bytes) });
    for (let i = 0; i < 2; i += 1) expect((await readAll(await impl.payloads.open(blob.key))).equals(bytes)).toBe(true);
    const empty = await storeMetered(impl.payloads, Readable.from([], { objectMode: false }), LIMIT);
    expect(empty.size).toBe(0);
    expect(await readAll(await impl.payloads.open(empty.key))).toHaveLength(0);
  });

  it('refuses a stream over its limit while it arrives and keeps nothing of it', async () => {
    await storeMetered(impl.payloads, pieces(randomBytes(100)), LIMIT);
    const before = await impl.held();
    const tooLarge = storeMetered(impl.payloads, pieces(randomBytes(LIMIT.maxBytes + 1)), LIMIT);
    await expect(tooLarge).rejects.toMatchObject({ code: 'attachment-limit-exceeded', detail: LIMIT.detail });
    expect(await impl.held()).toBe(before);
  });

  it('keeps nothing of a stream that fails midway (an aborted upload)', async () => {
    const before = await impl.held();
    const failing = Readable.from((function* () {
      yield randomBytes(2 * 1024 * 1024);
      throw new Error('connection reset');
    })(), { objectMode: false });
    await expect(storeMetered(impl.payloads, failing, LIMIT)).rejects.toThrow('connection reset');
    expect(await impl.held()).toBe(before);
  });

  it('deletes keys, repeatedly without error; a deleted key no longer opens', async () => {
    const blob = await storeMetered(impl.payloads, pieces(randomBytes(1500)), LIMIT);
    await impl.payloads.delete([blob.key]);
    await impl.payloads.delete([blob.key]);
    await expect(impl.payloads.open(blob.key)).rejects.toThrow();
    expect(await impl.held()).toBe(0);
  });

  it('lists keys by age; retention deletes orphans older than a day and keeps referenced bytes', async () => {
    const [kept, orphan] = await Promise.all([1, 2].map(() => storeMetered(impl.payloads, pieces(randomBytes(10)), LIMIT)));
    await impl.store.accept({
      messageUuid: runId('m'), facts: {}, payload: Buffer.from('<x/>'), source: 'test',
      attachments: [{ ...kept!, id: 'a', name: 'a.pdf', mediaType: 'application/pdf', role: 'attachment' }],
    });
    expect(await impl.payloads.list(new Date(Date.now() - 60_000), 10)).toEqual([]);
    expect((await impl.payloads.list(new Date(Date.now() + 60_000), 10)).sort()).toEqual([kept!.key, orphan!.key].sort());
    expect(await impl.store.unreferencedKeys([kept!.key, orphan!.key])).toEqual([orphan!.key]);
    const retention = new Retention({ store: impl.store, payloads: impl.payloads, afterDelivery: 3_600_000, interval: 3_600_000, log: pino({ level: 'silent' }) });
    await retention.run(new Date(Date.now() + 3_600_000));
    expect((await impl.payloads.list(new Date(Date.now() + 60_000), 10)).sort()).toEqual([kept!.key, orphan!.key].sort());
    await retention.run(new Date(Date.now() + 25 * 3_600_000));
    expect(await impl.payloads.list(new Date(Date.now() + 60_000), 10)).toEqual([kept!.key]);
  });

  it('the submission store keeps attachment references in order and drops them when purged', async () => {
    const blobs = await Promise.all([1, 2].map(() => storeMetered(impl.payloads, pieces(randomBytes(10)), LIMIT)));
    const attachments: AttachmentRecord[] = blobs.map((b, i) => ({ ...b, id: `a${i}`, name: `Plan ${i}.pdf`, mediaType: 'application/pdf', role: i ? 'attachment' : 'rendering' }));
    const { submission } = await impl.store.accept({ messageUuid: runId('m'), facts: { messageType: '0200' }, payload: Buffer.from('<x/>'), source: 'test', attachments });
    expect(await impl.store.attachments(submission.id)).toEqual(attachments);
    const status = (await impl.store.get(submission.id))!;
    expect(status.attachments).toEqual(attachments.map(({ name: _n, key: _k, ...rest }) => rest));
    expect(JSON.stringify(status)).not.toContain('Plan 0');
    expect(status.history[0]!.detail).toBe('source test, 4 bytes, 2 attachments (20 bytes)');

    // Only delivered submissions are purgeable.
    expect(await impl.store.listPurgeable(new Date(Date.now() + 60_000), 10)).toEqual([]);
    await impl.store.recordRouting(submission.id, { messageType: '0200' }, ['r'], [{ target: 't', route: 'r' }]);
    await impl.store.claimAttempt(submission.id, 't', 60_000);
    await impl.store.recordOutcome(submission.id, 't', 1, { kind: 'delivered' });
    expect(await impl.store.listPurgeable(new Date(Date.now() - 60_000), 10)).toEqual([]);
    expect(await impl.store.listPurgeable(new Date(Date.now() + 60_000), 10)).toEqual([submission.id]);
    expect(await impl.store.purge(submission.id)).toBe(true);
    expect(await impl.store.purge(submission.id)).toBe(false);
    expect(await impl.store.payload(submission.id)).toBeUndefined();
    expect(await impl.store.attachments(submission.id)).toEqual([]);
    expect(await impl.store.listPurgeable(new Date(Date.now() + 60_000), 10)).toEqual([]);
    const purged = (await impl.store.get(submission.id))!;
    expect(purged).toMatchObject({ state: 'delivered', purgedAt: expect.any(String), attachments: [] });
    expect(purged.history.at(-1)).toMatchObject({ event: 'purged', detail: 'retention: payload and 2 attachments deleted' });
  });

  it('discarded submissions are purged too; history is deleted a retention period after purging, the audit trail stays', async () => {
    const { submission } = await impl.store.accept({ messageUuid: runId('m'), facts: { messageType: '0200' }, payload: Buffer.from('<x/>'), source: 'test' });
    await impl.store.recordRouting(submission.id, { messageType: '0200' }, [], []);
    const audit = { actor: 'ops', action: 'discard', submissionId: submission.id, detail: 'test message' };
    expect((await impl.store.discard(submission.id, undefined, audit)).ok).toBe(true);
    expect(await impl.store.listPurgeable(new Date(Date.now() + 60_000), 10)).toContain(submission.id);
    expect(await impl.store.purge(submission.id)).toBe(true);
    expect(await impl.store.deleteHistory(new Date(Date.now() - 60_000), 10)).toBe(0);
    expect(await impl.store.get(submission.id)).toBeDefined();
    expect(await impl.store.deleteHistory(new Date(Date.now() + 60_000), 10)).toBeGreaterThanOrEqual(1);
    expect(await impl.store.get(submission.id)).toBeUndefined();
    expect((await impl.store.audit({ submissionId: submission.id, limit: 10 })).map((a) => a.action)).toEqual(['discard']);
  });
});

test('the directory store removes temp files a killed process left behind', async () => {
  const root = path.join(tempDir(), 'payloads');
  await DirectoryPayloadStore.open(root);
  writeFileSync(path.join(root, '.incoming', 'left-behind'), 'x');
  await DirectoryPayloadStore.open(root);
  expect(existsSync(path.join(root, '.incoming', 'left-behind'))).toBe(false);
});
