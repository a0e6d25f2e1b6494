// The PostgreSQL store's schema as kysely migrations (applied by PostgresStore.open under kysely's migration lock).
import { sql, type Kysely, type Migration } from 'kysely';

const SUBMISSION_STATES = sql`('received', 'routed', 'parked', 'delivered', 'failed')`;
const DELIVERY_STATES = sql`('pending', 'delivered', 'dead')`;
// 0003: operators can discard.
const SUBMISSION_STATES_3 = sql`('received', 'routed', 'parked', 'delivered', 'failed', 'discarded')`;
const DELIVERY_STATES_3 = sql`('pending', 'delivered', 'dead', 'discarded')`;

/**
 * Tables are created unqualified: every connection of the store's pool has `search_path` set to the
 * store's schema, so they land there. Append new migrations; never edit an applied one.
 */
export const POSTGRES_MIGRATIONS: Record<string, Migration> = {
  '0001_store': {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('submissions')
        // Text, not uuid: an id from a queue message or a caller that is not a UUID finds nothing instead of failing.
        .addColumn('id', 'text', (col) => col.primaryKey())
        .addColumn('message_uuid', 'text', (col) => col.notNull().unique())
        .addColumn('state', 'text', (col) => col.notNull().check(sql`state IN ${SUBMISSION_STATES}`))
        .addColumn('reason', 'text')
        .addColumn('source', 'text', (col) => col.notNull())
        .addColumn('facts', 'jsonb', (col) => col.notNull())
        .addColumn('routes', 'jsonb', (col) => col.notNull().defaultTo(sql`'[]'::jsonb`))
        .addColumn('size', 'integer', (col) => col.notNull())
        .addColumn('received_at', 'timestamptz', (col) => col.notNull())
        .addColumn('updated_at', 'timestamptz', (col) => col.notNull())
        .execute();
      await db.schema.createIndex('submissions_state').on('submissions').columns(['state', 'received_at']).execute();

      await db.schema
        .createTable('payloads')
        .addColumn('submission_id', 'text', (col) => col.primaryKey().references('submissions.id'))
        .addColumn('body', 'bytea', (col) => col.notNull())
        .execute();

      await db.schema
        .createTable('deliveries')
        .addColumn('submission_id', 'text', (col) => col.notNull().references('submissions.id'))
        .addColumn('target', 'text', (col) => col.notNull())
        // Order of the targets in the routing decision (SQLite lists deliveries by rowid, i.e. in that order).
        .addColumn('position', 'integer', (col) => col.notNull())
        .addColumn('route', 'text', (col) => col.notNull())
        .addColumn('state', 'text', (col) => col.notNull().check(sql`state IN ${DELIVERY_STATES}`))
        .addColumn('attempts', 'integer', (col) => col.notNull().defaultTo(0))
        .addColumn('reason', 'text')
        .addColumn('detail', 'text')
        .addColumn('reference', 'text')
        .addColumn('next_attempt_at', 'timestamptz')
        .addColumn('lease_until', 'timestamptz')
        .addColumn('updated_at', 'timestamptz', (col) => col.notNull())
        .addPrimaryKeyConstraint('deliveries_pkey', ['submission_id', 'target'])
        .execute();
      await db.schema.createIndex('deliveries_state').on('deliveries').column('state').execute();

      await db.schema
        .createTable('events')
        // bigserial: a submission's history is listed in id order, whichever instance wrote the events.
        .addColumn('id', 'bigserial', (col) => col.primaryKey())
        .addColumn('submission_id', 'text', (col) => col.notNull().references('submissions.id'))
        .addColumn('at', 'timestamptz', (col) => col.notNull())
        .addColumn('event', 'text', (col) => col.notNull())
        .addColumn('target', 'text')
        .addColumn('attempt', 'integer')
        .addColumn('outcome', 'text')
        .addColumn('reason', 'text')
        .addColumn('detail', 'text')
        .execute();
      await db.schema.createIndex('events_submission').on('events').columns(['submission_id', 'id']).execute();
    },
  },
  '0002_rate_limits': {
    async up(db: Kysely<unknown>): Promise<void> {
      // One token bucket per target, shared by every instance (updated under its row lock).
      await db.schema
        .createTable('rate_limits')
        .addColumn('target', 'text', (col) => col.primaryKey())
        .addColumn('tokens', 'double precision', (col) => col.notNull())
        .addColumn('updated_at', 'timestamptz', (col) => col.notNull())
        .execute();
    },
  },
  '0003_operations': {
    async up(db: Kysely<unknown>): Promise<void> {
      // The tenant for the operator's filters, discarded states, and the audit trail.
      await db.schema.alterTable('submissions').addColumn('tenant', 'text').execute();
      await sql`ALTER TABLE submissions DROP CONSTRAINT submissions_state_check, ADD CONSTRAINT submissions_state_check CHECK (state IN ${SUBMISSION_STATES_3})`.execute(db);
      await sql`ALTER TABLE deliveries DROP CONSTRAINT deliveries_state_check, ADD CONSTRAINT deliveries_state_check CHECK (state IN ${DELIVERY_STATES_3})`.execute(db);
      await db.schema.createIndex('submissions_received').on('submissions').columns(['received_at', 'id']).execute();
      await db.schema.createIndex('submissions_tenant').on('submissions').columns(['tenant', 'received_at']).execute();
      await db.schema
        .createTable('audit')
        .addColumn('id', 'bigserial', (col) => col.primaryKey())
        .addColumn('at', 'timestamptz', (col) => col.notNull())
        .addColumn('actor', 'text', (col) => col.notNull())
        .addColumn('action', 'text', (col) => col.notNull())
        .addColumn('submission_id', 'text')
        .addColumn('target', 'text')
        .addColumn('detail', 'text')
        .execute();
      await db.schema.createIndex('audit_submission').on('audit').columns(['submission_id', 'id']).execute();
    },
  },
  '0004_receipts': {
    async up(db: Kysely<unknown>): Promise<void> {
      // Status callbacks and receipts: the sending client, the back office's receipt (JSON).
      await db.schema.alterTable('submissions').addColumn('client', 'text').execute();
      await db.schema.alterTable('deliveries').addColumn('receipt', 'jsonb').execute();
    },
  },
  '0005_attachments': {
    async up(db: Kysely<unknown>): Promise<void> {
      // Attachment references of a submission (claim check); the bytes are in blobs/blob_chunks.
      await db.schema
        .createTable('attachments')
        .addColumn('submission_id', 'text', (col) => col.notNull().references('submissions.id'))
        .addColumn('position', 'integer', (col) => col.notNull())
        .addColumn('id', 'text', (col) => col.notNull())
        .addColumn('name', 'text', (col) => col.notNull())
        .addColumn('media_type', 'text', (col) => col.notNull())
        .addColumn('size', 'bigint', (col) => col.notNull())
        .addColumn('sha256', 'text', (col) => col.notNull())
        .addColumn('blob_key', 'text', (col) => col.notNull())
        .addColumn('role', 'text', (col) => col.notNull().check(sql`role IN ('attachment', 'rendering')`))
        .addPrimaryKeyConstraint('attachments_pkey', ['submission_id', 'position'])
        .execute();
      await db.schema.createIndex('attachments_blob').on('attachments').column('blob_key').execute();
      await db.schema.alterTable('submissions').addColumn('purged_at', 'timestamptz').execute();
      await sql`CREATE INDEX submissions_purgeable ON submissions (state, updated_at) WHERE purged_at IS NULL`.execute(db);
      // The payload store: one row per blob, its bytes in chunks of 256 KiB (deleted with the blob).
      await db.schema
        .createTable('blobs')
        .addColumn('key', 'text', (col) => col.primaryKey())
        .addColumn('size', 'bigint', (col) => col.notNull())
        .addColumn('created_at', 'timestamptz', (col) => col.notNull())
        .execute();
      await db.schema
        .createTable('blob_chunks')
        .addColumn('key', 'text', (col) => col.notNull().references('blobs.key').onDelete('cascade'))
        .addColumn('seq', 'integer', (col) => col.notNull())
        .addColumn('data', 'bytea', (col) => col.notNull())
        .addPrimaryKeyConstraint('blob_chunks_pkey', ['key', 'seq'])
        .execute();
    },
  },
  '0006_lz4': {
    async up(db: Kysely<unknown>): Promise<void> {
      // Payloads and attachment chunks are TOASTed with lz4 instead of pglz where the server has it
      // (PostgreSQL ≥ 14 built with lz4, as the Debian and Docker builds are): storing a 13 KB XBau
      // application costs ~0.1 ms less server CPU, at about the same size. Rows already stored
      // keep pglz (PostgreSQL reads both); without lz4 nothing changes.
      const { rows } = await sql<{ lz4: boolean }>`
        SELECT 'lz4' = ANY(enumvals) AS lz4 FROM pg_settings WHERE name = 'default_toast_compression'`.execute(db);
      if (!rows[0]?.lz4) return;
      await sql`ALTER TABLE payloads ALTER COLUMN body SET COMPRESSION lz4`.execute(db);
      await sql`ALTER TABLE blob_chunks ALTER COLUMN data SET COMPRESSION lz4`.execute(db);
    },
  },
  '0007_leased_deliveries_index': {
    async up(db: Kysely<unknown>): Promise<void> {
      // `deliveries_state (state)` let the planner answer the claim's `state = 'pending'` through that index
      // whenever the statistics came from a quiet time (almost every delivery delivered): during a backlog
      // every claim then read all pending deliveries, O(backlog) each (a 50,000 backlog: ~10 ms per claim).
      // The in-flight count of `maxInFlight` wants the leased ones of one target: a partial index of exactly
      // those, which the claim (lease unset or expired) cannot use. (Lists of dead deliveries: 0008.) Its
      // cost: `lease_until` is now indexed (in the predicate), so a claim is no longer a HOT update.
      // (IF [NOT] EXISTS: an operator may build and drop these beforehand, CONCURRENTLY; see the README.)
      await sql`CREATE INDEX IF NOT EXISTS deliveries_leased ON deliveries (target) WHERE state = 'pending' AND lease_until IS NOT NULL`.execute(db);
      await sql`DROP INDEX IF EXISTS deliveries_state`.execute(db);
    },
  },
  '0008_dead_deliveries_index': {
    async up(db: Kysely<unknown>): Promise<void> {
      // Listing dead deliveries (console, `antragsrouter dead`, admin API `deliveryState=dead`) found them
      // through deliveries_state; few among millions of delivered, they get a partial index of their own.
      // The claim (`state = 'pending'`) cannot use it.
      await sql`CREATE INDEX IF NOT EXISTS deliveries_dead ON deliveries (submission_id) WHERE state = 'dead'`.execute(db);
    },
  },
};
