// The production store on PostgreSQL (kysely over a pg pool), shared by several router instances at once.
import { randomUUID } from 'node:crypto';
import { Kysely, Migrator, PostgresDialect, sql, type ColumnType, type Generated, type PostgresPool, type PostgresPoolClient, type Transaction } from 'kysely';
import { DatabaseError, Pool, type PoolClient } from 'pg';
import type { Logger } from 'pino';
import { reservationWait, type RateLimit } from '../deliver/rate-limit';
import type { Facts } from '../envelope/envelope';
import type { RoutedTarget } from '../route/router';
import { POSTGRES_MIGRATIONS } from './postgres-migrations';
import { WriteBatcher } from './write-batcher';
import { PostgresPayloadStore } from './postgres-payload-store';
import { describeReceipt, finalState, receiptRecord, routingEvent, tenantOf } from './operations';
import {
  SUBMISSION_STATES, purgedDetail, receivedDetail,
  type AttachmentRecord, type AttemptOutcome, type AuditEntry, type AuditRecord, type Claim, type DeliveryRecord, type DeliveryState, type HistoryEvent, type NewSubmission,
  mergeMinutes, type OperatorResult, type Receipt, type Store, type StoreStats, type SubmissionListItem, type SubmissionQuery, type SubmissionState, type SubmissionStatus, type SubmissionSummary,
} from './store';

/** Written as `now()` of the database, read as a Date. */
type Timestamp = ColumnType<Date, Date, Date>;

interface SubmissionsTable {
  id: string;
  message_uuid: string;
  state: SubmissionState;
  reason: string | null;
  source: string;
  facts: ColumnType<Facts, string, string>;
  routes: ColumnType<string[], string | undefined, string>;
  size: number;
  received_at: Timestamp;
  updated_at: Timestamp;
  tenant: string | null;
  client: ColumnType<string | null, string | null | undefined, string | null>;
  purged_at: Date | null;
}

interface AttachmentsTable {
  submission_id: string;
  position: number;
  id: string;
  name: string;
  media_type: string;
  /** bigint: pg hands it out as a string. */
  size: ColumnType<string, number, number>;
  sha256: string;
  blob_key: string;
  role: AttachmentRecord['role'];
}

interface AuditTable {
  id: Generated<string>;
  at: Timestamp;
  actor: string;
  action: string;
  submission_id: string | null;
  target: string | null;
  detail: string | null;
}

interface PayloadsTable {
  submission_id: string;
  body: Buffer;
}

interface DeliveriesTable {
  submission_id: string;
  target: string;
  position: number;
  route: string;
  state: DeliveryState;
  attempts: Generated<number>;
  reason: string | null;
  detail: string | null;
  reference: string | null;
  next_attempt_at: Date | null;
  lease_until: Date | null;
  updated_at: Timestamp;
  receipt: ColumnType<Receipt | null, string | null | undefined, string | null>;
}

interface EventsTable {
  id: Generated<string>;
  submission_id: string;
  at: Timestamp;
  event: HistoryEvent['event'];
  target: string | null;
  attempt: number | null;
  outcome: HistoryEvent['outcome'] | null;
  reason: string | null;
  detail: string | null;
}

interface RateLimitsTable {
  target: string;
  tokens: number;
  updated_at: Timestamp;
}

interface Database {
  attachments: AttachmentsTable;
  audit: AuditTable;
  rate_limits: RateLimitsTable;
  submissions: SubmissionsTable;
  payloads: PayloadsTable;
  deliveries: DeliveriesTable;
  events: EventsTable;
}

export interface PostgresStoreOptions {
  /** Connection string, e.g. postgres://user:password@host:5432/db. */
  url: string;
  /** The schema that holds the store's tables (created if missing); lower case, digits and `_`. */
  schema: string;
  /** Connections in the pool (default 10). */
  poolSize?: number;
  log: Logger;
}

/** One attempt's outcome to record. */
interface OutcomeWrite {
  id: string;
  target: string;
  attempt: number;
  outcome: AttemptOutcome;
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]*$/;

/** The database's clock: all instances stamp and compare times with one clock, whatever their own say. */
const now = sql<Date>`now()`;

const orUndefined = <T>(value: T | null): T | undefined => (value === null ? undefined : value);

/** PostgreSQL's "schema … does not exist" (3F000) about a schema other than ours. */
function isOtherSchemaGone(error: unknown, ours: string): boolean {
  const { code, message } = error as { code?: string; message?: string };
  const named = /schema "([^"]+)" does not exist/.exec(message ?? '')?.[1];
  return code === '3F000' && named !== undefined && named !== ours;
}
const iso = (value: Date): string => value.toISOString();

/** Marks a hot statement (first thing in its text) to be sent as a prepared statement of that name. */
const PREPARED = /^\s*\/\* prepared:([a-z0-9-]+) \*\//;

/** Most writes of one kind in one statement (see WriteBatcher). */
const MAX_BATCH = 8;

/**
 * The pool as kysely sees it, except that hot statements — those whose text starts with
 * `/* prepared:<name> *\/` — go to PostgreSQL as named prepared statements: parsed and planned once per
 * connection instead of on every call (measured: a third less server CPU for the intake's statement).
 * Only statements whose text never varies may be marked (a name stands for one text).
 */
export function preparingPool(pool: Pool): PostgresPool {
  const wrap = (client: PoolClient): PostgresPoolClient => ({
    query: ((text: string | object, values?: ReadonlyArray<unknown>) => {
      if (typeof text !== 'string') return client.query(text as never);
      const name = PREPARED.exec(text)?.[1];
      return client.query(name ? { name, text, values: values as unknown[] } : { text, values: values as unknown[] });
    }) as unknown as PostgresPoolClient['query'],
    release: () => client.release(),
  });
  return { connect: async () => wrap(await pool.connect()), end: () => pool.end() };
}

export class PostgresStore implements Store {
  /** The payload store on the same pool and schema (attachment bytes as chunked rows). */
  readonly payloadStore: PostgresPayloadStore;

  /** New submissions, written in batches (group commit). */
  private readonly accepts = new WriteBatcher((inputs: readonly NewSubmission[]) => this.insertSubmissions(inputs), {
    maxBatch: MAX_BATCH, parallel: 2, retryAlone: (error, size) => this.batchFailed('accept', error, size),
  });
  /** Outcomes of submissions' only deliveries, written in batches; those of one submission one after the other. */
  private readonly outcomes = new WriteBatcher((writes: readonly OutcomeWrite[]) => this.writeOutcomes(this.db, writes), {
    maxBatch: MAX_BATCH, parallel: 2, key: (write) => write.id, retryAlone: (error, size) => this.batchFailed('outcome', error, size),
  });

  private constructor(private readonly db: Kysely<Database>, pool: Pool, private readonly log: Logger) {
    this.payloadStore = new PostgresPayloadStore(pool);
  }

  /**
   * A batch of writes failed: they are tried one by one only when PostgreSQL refused the statement (then it
   * was rolled back); after a lost connection it may have committed, so each write fails with the error, as
   * a single statement would. Logged with codes only (PostgreSQL's messages may quote values).
   */
  private batchFailed(kind: 'accept' | 'outcome', error: unknown, size: number): boolean {
    const refused = error instanceof DatabaseError;
    const { code, constraint } = error as { code?: string; constraint?: string };
    this.log.warn({ event: 'batch-failed', kind, size, code, constraint },
      refused ? 'PostgreSQL refused a batch of writes; writing them one by one' : 'a batch of writes failed; each write fails');
    return refused;
  }

  /**
   * Connects and migrates. Several instances may open the same schema at once: kysely's Migrator creates
   * the schema if missing (tolerating a concurrent creation) and applies migrations under an advisory lock
   * in one transaction, so exactly one instance migrates and the others find the schema up to date.
   * Unlike the embedded store, leases are not cleared here: they may be held by other running instances
   * (an expired lease is taken over by the next claim anyway).
   */
  static async open(options: PostgresStoreOptions): Promise<PostgresStore> {
    const { url, schema, poolSize = 10, log } = options;
    if (!SCHEMA_NAME.test(schema) || schema.length > 63) {
      throw new Error(`invalid PostgreSQL schema name ${JSON.stringify(schema)} (lower case letters, digits and _, at most 63 characters)`);
    }
    const pool = new Pool({
      connectionString: url,
      max: poolSize,
      // Every connection, including those the pool opens later, works in the store's schema.
      options: `-c search_path="${schema}"`,
    });
    // An idle connection that breaks (database restart, network) must not crash the process; the pool replaces it.
    pool.on('error', (error) => log.warn({ err: error }, 'idle PostgreSQL connection failed; the pool will reconnect'));
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: preparingPool(pool) }) });
    try {
      const migrator = new Migrator({
        db,
        provider: { getMigrations: async () => POSTGRES_MIGRATIONS },
        migrationTableSchema: schema,
      });
      // kysely's migrator looks for its table through the catalog of every schema; when another deployment's
      // schema is dropped in that moment (several schemas in one database), PostgreSQL answers "schema …
      // does not exist" for that other schema. Nothing of ours failed: try again.
      let { error, results } = await migrator.migrateToLatest();
      for (let retry = 1; error && retry <= 5 && isOtherSchemaGone(error, schema); retry += 1) {
        log.warn({ event: 'migration-retry', schema, retry }, 'another schema vanished during the migration check; trying again');
        await new Promise((resolve) => setTimeout(resolve, 100 * retry));
        ({ error, results } = await migrator.migrateToLatest());
      }
      for (const result of results ?? []) {
        if (result.status === 'Success') log.info({ migration: result.migrationName, schema }, 'store migration applied');
        else if (result.status === 'Error') log.error({ migration: result.migrationName, schema }, 'store migration failed');
      }
      if (error) throw new Error(`opening the PostgreSQL store (schema ${schema}) failed while migrating: ${(error as Error).message ?? String(error)}`, { cause: error });
    } catch (error) {
      await db.destroy();
      throw error;
    }
    return new PostgresStore(db, pool, log);
  }

  private async event(trx: Kysely<Database>, id: string, event: Omit<HistoryEvent, 'at'>): Promise<void> {
    await trx.insertInto('events').values({
      submission_id: id, at: now, event: event.event, target: event.target ?? null, attempt: event.attempt ?? null,
      outcome: event.outcome ?? null, reason: event.reason ?? null, detail: event.detail ?? null,
    }).execute();
  }

  /**
   * Race-safe across instances: the insert does nothing when the messageUuid exists; when another
   * instance's insert of the same messageUuid is still uncommitted, it waits for that transaction and
   * then does nothing (or inserts, should that one roll back). Exactly one caller gets `created: true`.
   */
  async accept(input: NewSubmission): Promise<{ submission: SubmissionSummary; created: boolean }> {
    const inserted = await this.accepts.submit(input);
    if (inserted) return { submission: inserted, created: true };
    const detail = receivedDetail(input);
    return this.db.transaction().execute(async (trx) => {
      // A new statement in READ COMMITTED: sees the row the conflicting transaction committed.
      const existing = await trx.selectFrom('submissions').select(['id', 'message_uuid', 'state'])
        .where('message_uuid', '=', input.messageUuid).executeTakeFirstOrThrow();
      await this.event(trx, existing.id, { event: 'resent', detail });
      return { submission: { id: existing.id, messageUuid: existing.message_uuid, state: existing.state }, created: false };
    });
  }

  /**
   * Stores a batch of new submissions in one statement, so one round trip and one commit: each submission
   * (skipped when its messageUuid exists — in the table or earlier in the batch), then, only for a row
   * inserted, its payload, attachment references, deliveries and events. A concurrent insert of the same
   * messageUuid makes the statement wait for it and then insert nothing for that one. Answers, per input,
   * the submission when inserted. Prepared per batch size (the text varies only with the payloads' count).
   * Inserted in messageUuid order: two batches holding the same messageUuids (on this instance or another)
   * wait for each other in one order, never in a circle.
   */
  private async insertSubmissions(inputs: readonly NewSubmission[]): Promise<Array<SubmissionSummary | undefined>> {
    const rows = inputs.map((input, index) => {
      const { routing } = input;
      const parked = routing !== undefined && routing.targets.length === 0;
      const claimed = new Set(input.claimed?.targets);
      return {
        n: index + 1, id: randomUUID(), message_uuid: input.messageUuid, state: parked ? 'parked' : 'received', reason: parked ? 'no-route' : null,
        source: input.source, client: input.client ?? null, facts: routing?.facts ?? input.facts, routes: routing?.routes ?? [],
        tenant: routing ? tenantOf(routing.facts) ?? null : null, size: input.payload.length, lease_secs: (input.claimed?.leaseMs ?? 0) / 1000,
        attachments: (input.attachments ?? []).map((a, position) => ({
          position, id: a.id, name: a.name, media_type: a.mediaType, size: a.size, sha256: a.sha256, blob_key: a.key, role: a.role,
        })),
        deliveries: (routing?.targets ?? []).map((t, position) => ({ target: t.target, position, route: t.route, claimed: claimed.has(t.target) })),
        events: [{ event: 'received', detail: receivedDetail(input) } as Omit<HistoryEvent, 'at'>, ...(routing ? [routingEvent(routing.routes, routing.targets)] : [])]
          .map((e) => ({ event: e.event, reason: e.reason ?? null, detail: e.detail ?? null })),
      };
    });
    const payloads = sql.join(inputs.map((input) => sql`${input.payload}::bytea`));
    const { rows: inserted } = await sql<{ id: string }>`/* prepared:accept-${sql.raw(String(inputs.length))} */
      WITH x AS (
        SELECT * FROM jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) AS x(n integer, id text, message_uuid text, state text, reason text,
          source text, client text, facts jsonb, routes jsonb, tenant text, size integer, lease_secs float8, attachments jsonb, deliveries jsonb, events jsonb)
      ), s AS (
        INSERT INTO submissions (id, message_uuid, state, reason, source, client, facts, routes, tenant, size, received_at, updated_at)
        SELECT id, message_uuid, state, reason, source, client, facts, routes, tenant, size, now(), now() FROM x ORDER BY message_uuid
        ON CONFLICT (message_uuid) DO NOTHING
        RETURNING id
      ), i AS (
        SELECT x.* FROM x JOIN s USING (id)
      ), p AS (
        INSERT INTO payloads (submission_id, body)
        SELECT i.id, b.body FROM i JOIN unnest(ARRAY[${payloads}]) WITH ORDINALITY AS b(body, n) ON b.n = i.n
      ), a AS (
        INSERT INTO attachments (submission_id, position, id, name, media_type, size, sha256, blob_key, role)
        SELECT i.id, y.position, y.id, y.name, y.media_type, y.size, y.sha256, y.blob_key, y.role
        FROM i, jsonb_to_recordset(i.attachments)
          AS y(position integer, id text, name text, media_type text, size bigint, sha256 text, blob_key text, role text)
      ), d AS (
        INSERT INTO deliveries (submission_id, target, position, route, state, attempts, lease_until, updated_at)
        SELECT i.id, y.target, y.position, y.route, 'pending', CASE WHEN y.claimed THEN 1 ELSE 0 END,
          CASE WHEN y.claimed THEN now() + make_interval(secs => i.lease_secs) END, now()
        FROM i, jsonb_to_recordset(i.deliveries) AS y(target text, position integer, route text, claimed boolean)
      ), e AS (
        INSERT INTO events (submission_id, at, event, reason, detail)
        SELECT i.id, now(), y.e->>'event', y.e->>'reason', y.e->>'detail'
        FROM i, jsonb_array_elements(i.events) WITH ORDINALITY AS y(e, k)
        ORDER BY i.n, y.k
      )
      SELECT id FROM s`.execute(this.db);
    const ids = new Set(inserted.map((r) => r.id));
    return rows.map((row) => (ids.has(row.id) ? { id: row.id, messageUuid: row.message_uuid, state: row.state as SubmissionState } : undefined));
  }

  /** Reads submission, deliveries and history in one snapshot, so they agree while other instances write. */
  async get(id: string): Promise<SubmissionStatus | undefined> {
    return this.db.transaction().setIsolationLevel('repeatable read').setAccessMode('read only').execute(async (trx) => {
      const row = await trx.selectFrom('submissions').selectAll().where('id', '=', id).executeTakeFirst();
      if (!row) return undefined;
      const events = await trx.selectFrom('events')
        .select(['at', 'event', 'target', 'attempt', 'outcome', 'reason', 'detail'])
        .where('submission_id', '=', id).orderBy('id').execute();
      return {
        id: row.id,
        messageUuid: row.message_uuid,
        state: row.state,
        reason: orUndefined(row.reason),
        source: row.source,
        client: orUndefined(row.client),
        size: row.size,
        receivedAt: iso(row.received_at),
        updatedAt: iso(row.updated_at),
        facts: row.facts,
        routes: row.routes,
        deliveries: await this.readDeliveries(trx, id),
        history: events.map((e) => ({
          at: iso(e.at), event: e.event, target: orUndefined(e.target), attempt: orUndefined(e.attempt),
          outcome: orUndefined(e.outcome), reason: orUndefined(e.reason), detail: orUndefined(e.detail),
        })),
        attachments: (await this.readAttachments(trx, id)).map(({ name: _name, key: _key, ...reference }) => reference),
        purgedAt: row.purged_at ? iso(row.purged_at) : undefined,
      };
    });
  }

  async attachments(id: string): Promise<AttachmentRecord[]> {
    return this.readAttachments(this.db, id);
  }

  private async readAttachments(db: Kysely<Database> | Transaction<Database>, id: string): Promise<AttachmentRecord[]> {
    const rows = await db.selectFrom('attachments').selectAll().where('submission_id', '=', id).orderBy('position').execute();
    return rows.map((a) => ({ id: a.id, name: a.name, mediaType: a.media_type, size: Number(a.size), sha256: a.sha256, key: a.blob_key, role: a.role }));
  }

  async unreferencedKeys(keys: readonly string[]): Promise<string[]> {
    if (keys.length === 0) return [];
    const rows = await this.db.selectFrom('attachments').select('blob_key').where('blob_key', 'in', [...keys]).execute();
    const referenced = new Set(rows.map((r) => r.blob_key));
    return keys.filter((key) => !referenced.has(key));
  }

  async listPurgeable(deliveredBefore: Date, limit: number): Promise<string[]> {
    const rows = await this.db.selectFrom('submissions').select('id')
      .where('state', 'in', ['delivered', 'discarded']).where('purged_at', 'is', null).where('updated_at', '<', deliveredBefore)
      .orderBy('updated_at').limit(limit).execute();
    return rows.map((r) => r.id);
  }

  async deleteHistory(purgedBefore: Date, limit: number): Promise<number> {
    return this.db.transaction().execute(async (trx) => {
      // SKIP LOCKED: instances running the job at once take different submissions.
      const rows = await trx.selectFrom('submissions').select('id').where('purged_at', 'is not', null).where('purged_at', '<', purgedBefore)
        .orderBy('purged_at').limit(limit).forUpdate().skipLocked().execute();
      const ids = rows.map((r) => r.id);
      if (ids.length === 0) return 0;
      await trx.deleteFrom('events').where('submission_id', 'in', ids).execute();
      await trx.deleteFrom('deliveries').where('submission_id', 'in', ids).execute();
      await trx.deleteFrom('attachments').where('submission_id', 'in', ids).execute();
      await trx.deleteFrom('payloads').where('submission_id', 'in', ids).execute();
      await trx.deleteFrom('submissions').where('id', 'in', ids).execute();
      return ids.length;
    });
  }

  /** Marks first (one winner among instances), then deletes, all in one transaction. */
  async purge(id: string): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      const marked = await trx.updateTable('submissions').set({ purged_at: now }).where('id', '=', id).where('purged_at', 'is', null)
        .returning('id').executeTakeFirst();
      if (!marked) return false;
      await trx.deleteFrom('payloads').where('submission_id', '=', id).execute();
      const deleted = await trx.deleteFrom('attachments').where('submission_id', '=', id).executeTakeFirst();
      await this.event(trx, id, { event: 'purged', detail: purgedDetail(Number(deleted.numDeletedRows)) });
      return true;
    });
  }

  async payload(id: string): Promise<Buffer | undefined> {
    // Read by every delivery the document cache misses (a backlog): prepared once per connection.
    const { rows: [row] } = await sql<{ body: Buffer }>`/* prepared:payload */ SELECT body FROM payloads WHERE submission_id = ${id}`.execute(this.db);
    return row?.body;
  }

  async listReceived(before?: Date, { skipLeased = false } = {}): Promise<string[]> {
    let query = this.db.selectFrom('submissions as s').select('s.id').where('s.state', '=', 'received');
    if (before) query = query.where('s.received_at', '<', before);
    if (skipLeased) {
      query = query.where(({ not, exists, selectFrom }) => not(exists(
        selectFrom('deliveries as d').select('d.target').whereRef('d.submission_id', '=', 's.id').where('d.lease_until', '>', now),
      )));
    }
    const rows = await query.orderBy('s.received_at').execute();
    return rows.map((r) => r.id);
  }

  /**
   * One winner across instances: the state changes only `WHERE state = 'received'`; a concurrent second
   * update waits for the first's row lock, re-checks the condition, matches nothing and returns false.
   */
  async recordRouting(id: string, facts: Facts, routes: string[], targets: RoutedTarget[]): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      const parked = targets.length === 0;
      const updated = await trx.updateTable('submissions')
        .set({ state: parked ? 'parked' : 'routed', reason: parked ? 'no-route' : null, facts: JSON.stringify(facts), routes: JSON.stringify(routes), tenant: tenantOf(facts) ?? null, updated_at: now })
        .where('id', '=', id).where('state', '=', 'received')
        // (a submission routed at intake is `received` with its deliveries until they are queued)
        .where(({ not, exists, selectFrom }) => not(exists(selectFrom('deliveries').select('target').where('deliveries.submission_id', '=', id))))
        .returning('id')
        .executeTakeFirst();
      if (!updated) return false;
      if (!parked) {
        await trx.insertInto('deliveries')
          .values(targets.map((t, position) => ({ submission_id: id, target: t.target, position, route: t.route, state: 'pending' as const, updated_at: now })))
          .execute();
      }
      await this.event(trx, id, routingEvent(routes, targets));
      return true;
    });
  }

  async markRouted(ids: readonly string[]): Promise<void> {
    if (!ids.length) return;
    // Without waiting for the WAL flush (one statement; `set_config(…, true)` holds for its transaction
    // only): should this write be lost, the sweep queues the deliveries again.
    await sql`UPDATE submissions SET state = 'routed', updated_at = now()
      FROM (SELECT set_config('synchronous_commit', 'off', true)) AS marks_commit
      WHERE id = ANY(${[...ids]}::text[]) AND state = 'received'`.execute(this.db);
  }

  async deliveries(id: string): Promise<DeliveryRecord[]> {
    return this.readDeliveries(this.db, id);
  }

  private async readDeliveries(db: Kysely<Database> | Transaction<Database>, id: string): Promise<DeliveryRecord[]> {
    const rows = await db.selectFrom('deliveries')
      .select(['target', 'route', 'state', 'attempts', 'reason', 'detail', 'reference', 'receipt', 'next_attempt_at', 'updated_at'])
      .where('submission_id', '=', id).orderBy('position').execute();
    return rows.map((d) => ({
      target: d.target, route: d.route, state: d.state, attempts: d.attempts, reason: orUndefined(d.reason),
      detail: orUndefined(d.detail), reference: orUndefined(d.reference), receipt: orUndefined(d.receipt),
      nextAttemptAt: d.next_attempt_at ? iso(d.next_attempt_at) : undefined, updatedAt: iso(d.updated_at),
    }));
  }

  /**
   * One conditional UPDATE ... RETURNING, atomic across instances: it counts the attempt and sets the lease
   * only if the delivery is pending, its lease is unset or expired and its next attempt is due, all by the
   * database's clock. Of
   * concurrent claims, the first takes the row lock; the others re-check the condition after it commits,
   * find the new lease and match nothing. Only then is the row read to tell `busy` from `done`.
   */
  async claimAttempt(id: string, target: string, leaseMs: number, maxInFlight?: number): Promise<Claim> {
    if (maxInFlight === undefined) return this.claim(this.db, id, target, leaseMs);
    // Counting the target's leases and taking one must not interleave with another instance doing the
    // same: a transaction-scoped advisory lock per target serializes them (released at commit).
    return this.db.transaction().execute(async (trx) => {
      await sql`select pg_advisory_xact_lock(hashtext(${`antragsrouter.inflight.${target}`}))`.execute(trx);
      const { n } = await trx.selectFrom('deliveries').select((eb) => eb.fn.countAll<string>().as('n'))
        // (`'pending'` as a literal: the partial index deliveries_leased matches it in any plan, generic ones too)
        .where('target', '=', target).where('state', '=', sql.lit('pending')).where('lease_until', '>', now).executeTakeFirstOrThrow();
      if (Number(n) >= maxInFlight) {
        const row = await trx.selectFrom('deliveries').select('state').where('submission_id', '=', id).where('target', '=', target).executeTakeFirst();
        if (!row) throw new Error(`no delivery ${target} for submission ${id}`);
        return row.state === 'pending' ? { kind: 'throttled' as const } : { kind: 'done' as const };
      }
      return this.claim(trx, id, target, leaseMs);
    });
  }

  async releaseClaim(id: string, target: string, attempt: number): Promise<boolean> {
    const { numUpdatedRows } = await this.db.updateTable('deliveries')
      .set((eb) => ({ attempts: eb('attempts', '-', 1), lease_until: null, updated_at: now }))
      .where('submission_id', '=', id).where('target', '=', target).where('state', '=', 'pending')
      .where('attempts', '=', attempt).where('lease_until', 'is not', null)
      .executeTakeFirst();
    return numUpdatedRows > 0n;
  }

  /**
   * Takes one token of the target's bucket under its row lock, by the database's clock: one statement, so
   * the lock is held for no round trip. The upsert locks the row first and only then evaluates its SET —
   * the clock is read after the lock, so under contention it never lies before the previous holder's
   * update (which would refill twice). The same arithmetic as `takeToken`. The commit does not wait for the
   * disk (`set_config(…, true)`: this statement's transaction only): the row lock is released at once rather
   * than after a WAL flush — which had capped a contended bucket near 1 / (flush time). A bucket update lost
   * in a crash of the database server only lets a few more attempts start afterwards.
   */
  async takeRateToken(target: string, limit: RateLimit): Promise<number> {
    const { rows: [row] } = await sql<{ tokens: number }>`/* prepared:rate */
      INSERT INTO rate_limits AS r (target, tokens, updated_at)
      SELECT ${target}, ${limit.burst}::float8 - 1, clock_timestamp() FROM (SELECT set_config('synchronous_commit', 'off', true)) AS rate_commit
      ON CONFLICT (target) DO UPDATE SET (tokens, updated_at) = (
        SELECT LEAST(${limit.burst}::float8, r.tokens + GREATEST(0, EXTRACT(EPOCH FROM c.at - r.updated_at)::float8) * ${limit.perSecond}::float8) - 1,
          GREATEST(c.at, r.updated_at)
        FROM (SELECT clock_timestamp() AS at) AS c)
      RETURNING tokens`.execute(this.db);
    return reservationWait(row!.tokens, limit);
  }

  private async claim(db: Kysely<Database>, id: string, target: string, leaseMs: number): Promise<Claim> {
    // With the claim, in the same round trip, what the attempt needs of the submission. The lease commits
    // without waiting for the disk (`set_config(…, true)`: this statement's transaction only): visible to
    // every instance at once, it would be lost only if the database server itself crashed within the WAL
    // writer's delay (≤ 3 × 200 ms) — the attempt is then made again, with the same idempotency key, as
    // after any crash mid-attempt. Every outcome waits for the flush, and with it for the leases before it.
    const { rows: [claimed] } = await sql<{ attempts: number; route: string; facts: Facts; received_at: Date; client: string | null; attachments: string; deliveries: string }>`/* prepared:claim */
      UPDATE deliveries d
      SET attempts = d.attempts + 1, lease_until = now() + make_interval(secs => ${leaseMs / 1000}), updated_at = now()
      FROM submissions s, (SELECT set_config('synchronous_commit', 'off', true)) AS lease_commit
      WHERE d.submission_id = ${id} AND d.target = ${target} AND d.state = 'pending'
        AND (d.lease_until IS NULL OR d.lease_until <= now()) AND (d.next_attempt_at IS NULL OR d.next_attempt_at <= now())
        AND s.id = d.submission_id
      RETURNING d.attempts, d.route, s.facts, s.received_at, s.client,
        (SELECT count(*) FROM attachments a WHERE a.submission_id = d.submission_id) AS attachments,
        (SELECT count(*) FROM deliveries o WHERE o.submission_id = d.submission_id) AS deliveries`.execute(db);
    if (claimed) {
      return {
        kind: 'claimed', attempt: claimed.attempts,
        context: { facts: claimed.facts, route: claimed.route, receivedAt: iso(claimed.received_at), client: orUndefined(claimed.client), attachments: Number(claimed.attachments), deliveries: Number(claimed.deliveries) },
      };
    }
    const row = await db.selectFrom('deliveries').select(['state', 'lease_until', 'next_attempt_at', sql<Date>`now()`.as('now')])
      .where('submission_id', '=', id).where('target', '=', target).executeTakeFirst();
    if (!row) throw new Error(`no delivery ${target} for submission ${id}`);
    if (row.state !== 'pending') return { kind: 'done' };
    // Leased, or not due yet. (A lease that ended between the update and this read: look again now.)
    const until = Math.max(row.lease_until?.getTime() ?? 0, row.next_attempt_at?.getTime() ?? 0, row.now.getTime());
    return { kind: 'busy', until: new Date(until) };
  }

  /**
   * Locks the submission row first (SELECT ... FOR UPDATE), so that outcomes of two deliveries of one
   * submission, recorded at once by two instances, are serialized: the second counts the deliveries only
   * after the first committed, and one of them sees no delivery pending and sets the final state.
   */
  async recordOutcome(id: string, target: string, attempt: number, outcome: AttemptOutcome, options: { onlyDelivery?: boolean } = {}): Promise<void> {
    const write = { id, target, attempt, outcome };
    // The submission's only delivery, leased by this attempt: nothing else changes the submission now.
    const [found] = options.onlyDelivery
      ? [await this.outcomes.submit(write)]
      : await this.db.transaction().execute(async (trx) => {
        // The submission's row lock first, so that outcomes of two deliveries of one submission, recorded at
        // once by two instances, are serialized; the statement after it (a new snapshot in READ COMMITTED)
        // sees what the previous holder committed.
        await trx.selectFrom('submissions').select('id').where('id', '=', id).forUpdate().executeTakeFirstOrThrow(
          () => new Error(`no submission ${id}`),
        );
        return this.writeOutcomes(trx, [write]);
      });
    if (!found) throw new Error(`no delivery ${target} for submission ${id}`);
  }

  /**
   * Records attempts' outcomes in one statement: per write, the delivery, its event, and its submission's
   * state from the submission's other deliveries plus this one's new state (a statement does not see its own
   * CTEs' changes). The same rule as finalState(), but a submission still `received` stays so while a
   * delivery is pending (see Store.recordOutcome). Answers, per write, whether its delivery exists. At most one
   * write per submission: two deliveries of one submission are recorded under its row lock, one by one.
   *
   * Each write has CTEs of its own that name their rows by key (prepared per batch size): every table is read
   * by its primary key in any plan — a join of a batch's rows with the tables could be planned as a scan
   * while the tables are small, and a prepared statement keeps that plan as they grow.
   */
  private async writeOutcomes(db: Kysely<Database>, writes: readonly OutcomeWrite[]): Promise<boolean[]> {
    // In submission id order, as markRouted (an index scan over its ids) and other batches lock them: the
    // lock waits between them never form a circle.
    const order = writes.map((_, index) => index).sort((a, b) => (writes[a]!.id < writes[b]!.id ? -1 : writes[a]!.id > writes[b]!.id ? 1 : 0));
    const parts = order.map((position, index) => {
      const { id, target, attempt, outcome } = writes[position]!;
      const state = outcome.kind === 'delivered' ? 'delivered' : outcome.kind === 'dead' ? 'dead' : 'pending';
      const reason = outcome.kind === 'delivered' ? null : outcome.reason;
      const detail = outcome.detail ?? null;
      const reference = outcome.kind === 'delivered' ? outcome.reference ?? null : null;
      const nextAttemptAt = outcome.kind === 'retry' ? outcome.nextAttemptAt : null;
      const eventDetail = outcome.kind === 'retry' ? `${outcome.detail}; next attempt ${outcome.nextAttemptAt.toISOString()}` : outcome.detail ?? null;
      const [d, e, states, s] = ['d', 'e', 'states', 's'].map((name) => sql.raw(`${name}${index}`));
      return sql`${d} AS (
          UPDATE deliveries SET state = ${state}, reason = ${reason}, detail = ${detail}, reference = COALESCE(${reference}, reference),
            next_attempt_at = ${nextAttemptAt}, lease_until = NULL, updated_at = now()
          WHERE submission_id = ${id} AND target = ${target}
          RETURNING 1
        ), ${e} AS (
          INSERT INTO events (submission_id, at, event, target, attempt, outcome, reason, detail)
          SELECT ${id}, now(), 'attempt', ${target}, ${attempt}, ${outcome.kind}, ${reason}, ${eventDetail} FROM ${d}
        ), ${states} AS (
          SELECT state FROM deliveries WHERE submission_id = ${id} AND target <> ${target}
          UNION ALL SELECT ${state}::text FROM ${d}
        ), ${s} AS (
          UPDATE submissions SET state = CASE
              WHEN EXISTS (SELECT 1 FROM ${states} WHERE state = 'pending') THEN CASE WHEN submissions.state = 'received' THEN 'received' ELSE 'routed' END
              WHEN EXISTS (SELECT 1 FROM ${states} WHERE state = 'dead') THEN 'failed'
              WHEN EXISTS (SELECT 1 FROM ${states} WHERE state = 'delivered') THEN 'delivered'
              ELSE 'discarded' END,
            reason = NULL, updated_at = now()
          WHERE id = ${id} AND EXISTS (SELECT 1 FROM ${d})
        )`;
    });
    const found = sql.join(writes.map((_, index) => sql`EXISTS (SELECT 1 FROM ${sql.raw(`d${index}`)})`));
    const { rows: [row] } = await sql<{ found: boolean[] }>`/* prepared:outcome-${sql.raw(String(writes.length))} */
      WITH ${sql.join(parts)}
      SELECT ARRAY[${found}] AS found`.execute(db);
    const answers = new Array<boolean>(writes.length);
    order.forEach((position, index) => { answers[position] = row!.found[index]!; });
    return answers;
  }

  /** Sets the submission's state from its deliveries (inside the caller's transaction, which holds the submission's row lock). */
  private async settleState(trx: Transaction<Database>, id: string): Promise<void> {
    const rows = await trx.selectFrom('deliveries').select((eb) => ['state', eb.fn.countAll<string>().as('n')])
      .where('submission_id', '=', id).groupBy('state').execute();
    const counts = Object.fromEntries(rows.map((r) => [r.state, Number(r.n)]));
    await trx.updateTable('submissions').set({ state: finalState(counts), reason: null, updated_at: now }).where('id', '=', id).execute();
  }

  private async auditIn(db: Kysely<Database>, entry: AuditEntry): Promise<void> {
    await db.insertInto('audit').values({
      at: now, actor: entry.actor, action: entry.action, submission_id: entry.submissionId ?? null, target: entry.target ?? null, detail: entry.detail ?? null,
    }).execute();
  }

  /** Runs an operator action in a transaction holding the submission's row lock; rolls back when it refuses. */
  private async operate(id: string, action: (trx: Transaction<Database>, row: { state: SubmissionState }) => Promise<OperatorResult>): Promise<OperatorResult> {
    const refused = new Error('refused');
    let result: OperatorResult = { ok: false, problem: 'not-found', detail: `no submission ${id}` };
    try {
      await this.db.transaction().execute(async (trx) => {
        const row = await trx.selectFrom('submissions').select('state').where('id', '=', id).forUpdate().executeTakeFirst();
        if (!row) throw refused;
        result = await action(trx, row);
        if (!result.ok) throw refused;
      });
    } catch (error) {
      if (error !== refused) throw error;
    }
    return result;
  }

  async list(query: SubmissionQuery): Promise<SubmissionListItem[]> {
    let q = this.db.selectFrom('submissions as s').selectAll('s');
    if (query.states?.length) q = q.where('s.state', 'in', query.states);
    if (query.tenant) q = q.where('s.tenant', '=', query.tenant);
    if (query.receivedFrom) q = q.where('s.received_at', '>=', query.receivedFrom);
    if (query.receivedTo) q = q.where('s.received_at', '<', query.receivedTo);
    if (query.target || query.deliveryState || query.route) {
      q = q.where(({ exists, selectFrom }) => {
        let d = selectFrom('deliveries as d').select('d.target').whereRef('d.submission_id', '=', 's.id');
        if (query.target) d = d.where('d.target', '=', query.target);
        if (query.deliveryState) d = d.where('d.state', '=', query.deliveryState);
        if (query.route) d = d.where('d.route', '=', query.route);
        return exists(d);
      });
    }
    if (query.after) {
      const cursor = await this.db.selectFrom('submissions').select(['id', 'received_at']).where('id', '=', query.after).executeTakeFirst();
      if (!cursor) return [];
      q = q.where((eb) => eb.or([
        eb('s.received_at', '<', cursor.received_at),
        eb.and([eb('s.received_at', '=', cursor.received_at), eb('s.id', '<', cursor.id)]),
      ]));
    }
    const rows = await q.orderBy('s.received_at', 'desc').orderBy('s.id', 'desc').limit(Math.max(1, Math.min(500, query.limit))).execute();
    return Promise.all(rows.map(async (row) => ({
      id: row.id, state: row.state, reason: orUndefined(row.reason), tenant: orUndefined(row.tenant),
      messageType: typeof row.facts.messageType === 'string' ? row.facts.messageType : undefined,
      source: row.source, receivedAt: iso(row.received_at), updatedAt: iso(row.updated_at), deliveries: await this.deliveries(row.id),
    })));
  }

  async replay(id: string, target: string, options: { toTarget?: RoutedTarget; audit: AuditEntry }): Promise<OperatorResult> {
    return this.operate(id, async (trx) => {
      const deliveries = await this.readDeliveries(trx, id);
      const delivery = deliveries.find((d) => d.target === target);
      if (!delivery) return { ok: false, problem: 'not-found', detail: `submission ${id} has no delivery to ${target}` };
      if (delivery.state !== 'dead') return { ok: false, problem: 'wrong-state', detail: `the delivery to ${target} is ${delivery.state}, not dead` };
      const to = options.toTarget;
      if (!to || to.target === target) {
        await trx.updateTable('deliveries')
          .set({ state: 'pending', attempts: 0, reason: null, detail: null, next_attempt_at: null, lease_until: null, updated_at: now })
          .where('submission_id', '=', id).where('target', '=', target).execute();
        await this.event(trx, id, { event: 'replayed', target, detail: `by ${options.audit.actor}` });
      } else {
        if (deliveries.some((d) => d.target === to.target)) return { ok: false, problem: 'wrong-state', detail: `submission ${id} already has a delivery to ${to.target}` };
        await trx.updateTable('deliveries').set({ state: 'discarded', reason: 'replayed', detail: `replayed to ${to.target}`, lease_until: null, updated_at: now })
          .where('submission_id', '=', id).where('target', '=', target).execute();
        await trx.insertInto('deliveries')
          .values({ submission_id: id, target: to.target, position: deliveries.length, route: to.route, state: 'pending', updated_at: now }).execute();
        await this.event(trx, id, { event: 'replayed', target: to.target, detail: `from ${target}, by ${options.audit.actor}` });
      }
      await this.settleState(trx, id);
      await this.auditIn(trx, options.audit);
      return { ok: true };
    });
  }

  async reroute(id: string, audit: AuditEntry): Promise<OperatorResult> {
    return this.operate(id, async (trx, row) => {
      if (row.state !== 'parked') return { ok: false, problem: 'wrong-state', detail: `submission ${id} is ${row.state}, not parked` };
      await trx.updateTable('submissions').set({ state: 'received', reason: null, updated_at: now }).where('id', '=', id).execute();
      await this.event(trx, id, { event: 'rerouted', detail: `by ${audit.actor}` });
      await this.auditIn(trx, audit);
      return { ok: true };
    });
  }

  async discard(id: string, target: string | undefined, audit: AuditEntry): Promise<OperatorResult> {
    return this.operate(id, async (trx, row) => {
      const reason = audit.detail ?? 'discarded by an operator';
      if (target === undefined) {
        if (row.state !== 'parked') return { ok: false, problem: 'wrong-state', detail: `submission ${id} is ${row.state}, not parked` };
        await trx.updateTable('submissions').set({ state: 'discarded', reason: 'discarded', updated_at: now }).where('id', '=', id).execute();
      } else {
        const delivery = (await this.readDeliveries(trx, id)).find((d) => d.target === target);
        if (!delivery) return { ok: false, problem: 'not-found', detail: `submission ${id} has no delivery to ${target}` };
        if (delivery.state !== 'dead') return { ok: false, problem: 'wrong-state', detail: `the delivery to ${target} is ${delivery.state}, not dead` };
        await trx.updateTable('deliveries').set({ state: 'discarded', reason: 'discarded', detail: reason, lease_until: null, updated_at: now })
          .where('submission_id', '=', id).where('target', '=', target).execute();
        await this.settleState(trx, id);
      }
      await this.event(trx, id, { event: 'discarded', target, reason: 'discarded', detail: `${reason} (by ${audit.actor})` });
      await this.auditIn(trx, audit);
      return { ok: true };
    });
  }

  async stats(since: Date): Promise<StoreStats> {
    const minute = (column: string) => sql<string>`to_char(${sql.ref(column)} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI')`;
    const [attempts, received, delivered] = await Promise.all([
      this.db.selectFrom('events').select((eb) => ['target', 'outcome', eb.fn.countAll<string>().as('count')])
        .where('event', '=', 'attempt').where('at', '>=', since).groupBy(['target', 'outcome']).orderBy('target').orderBy('outcome').execute(),
      this.db.selectFrom('submissions').select((eb) => [minute('received_at').as('minute'), eb.fn.countAll<string>().as('count')])
        .where('received_at', '>=', since).groupBy(sql`1`).execute(),
      this.db.selectFrom('events').select((eb) => [minute('at').as('minute'), eb.fn.countAll<string>().as('count')])
        .where('event', '=', 'attempt').where('outcome', '=', 'delivered').where('at', '>=', since).groupBy(sql`1`).execute(),
    ]);
    return {
      attempts: attempts.map((a) => ({ target: a.target!, outcome: a.outcome!, count: Number(a.count) })),
      perMinute: mergeMinutes(received.map((r) => ({ minute: r.minute, count: Number(r.count) })), delivered.map((d) => ({ minute: d.minute, count: Number(d.count) }))),
    };
  }

  async recordReceipt(id: string, target: string, receipt: Receipt, actor: string): Promise<OperatorResult & { changed?: boolean }> {
    let changed = false;
    const result = await this.operate(id, async (trx) => {
      const delivery = (await this.readDeliveries(trx, id)).find((d) => d.target === target);
      if (!delivery) return { ok: false, problem: 'not-found', detail: `submission ${id} has no delivery to ${target}` };
      if (delivery.state !== 'delivered') return { ok: false, problem: 'wrong-state', detail: `the delivery to ${target} is ${delivery.state}, not delivered` };
      const record = receiptRecord(receipt);
      if (JSON.stringify(delivery.receipt && receiptRecord(delivery.receipt)) === JSON.stringify(record)) return { ok: true };
      await trx.updateTable('deliveries')
        .set((eb) => ({ receipt: JSON.stringify(record), reference: receipt.fileNumber ?? eb.ref('reference'), updated_at: now }))
        .where('submission_id', '=', id).where('target', '=', target).execute();
      await this.event(trx, id, { event: 'receipt', target, reason: receipt.reason, detail: describeReceipt(receipt, actor) });
      changed = true;
      return { ok: true };
    });
    return result.ok ? { ...result, changed } : result;
  }

  async storedBytes(): Promise<{ payloads: number; attachments: number }> {
    const [payloads, attachments] = await Promise.all([
      this.db.selectFrom('submissions').select((eb) => eb.fn.coalesce(eb.fn.sum<string>('size'), sql<string>`0`).as('bytes')).where('purged_at', 'is', null).executeTakeFirstOrThrow(),
      this.db.selectFrom('attachments').select((eb) => eb.fn.coalesce(eb.fn.sum<string>('size'), sql<string>`0`).as('bytes')).executeTakeFirstOrThrow(),
    ]);
    return { payloads: Number(payloads.bytes), attachments: Number(attachments.bytes) };
  }

  async recordAudit(entry: AuditEntry): Promise<void> {
    await this.auditIn(this.db, entry);
  }

  async audit(query: { submissionId?: string; limit: number }): Promise<AuditRecord[]> {
    let q = this.db.selectFrom('audit').selectAll();
    if (query.submissionId) q = q.where('submission_id', '=', query.submissionId);
    const rows = await q.orderBy('id', 'desc').limit(Math.max(1, Math.min(1000, query.limit))).execute();
    return rows.map((r) => ({ id: String(r.id), at: iso(r.at), actor: r.actor, action: r.action, submissionId: orUndefined(r.submission_id), target: orUndefined(r.target), detail: orUndefined(r.detail) }));
  }

  async check(): Promise<{ ok: boolean; detail: string }> {
    try {
      await sql`select 1`.execute(this.db);
      return { ok: true, detail: 'PostgreSQL answers' };
    } catch (error) {
      return { ok: false, detail: `PostgreSQL does not answer: ${(error as Error).message}` };
    }
  }

  async countByState(): Promise<Record<SubmissionState, number>> {
    const counts = Object.fromEntries(SUBMISSION_STATES.map((state) => [state, 0])) as Record<SubmissionState, number>;
    const rows = await this.db.selectFrom('submissions')
      .select((eb) => ['state', eb.fn.countAll<string>().as('n')])
      .groupBy('state').execute();
    for (const row of rows) counts[row.state] = Number(row.n);
    return counts;
  }

  /** Ends the pool, after the writes queued for a batch and the queries in flight. */
  async close(): Promise<void> {
    await Promise.all([this.accepts.idle(), this.outcomes.idle()]);
    await this.db.destroy();
    this.log.debug('PostgreSQL store closed');
  }
}
