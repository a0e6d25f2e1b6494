// Opens the embedded SQLite database (better-sqlite3) that holds the single-node store and queue,
// and applies its migrations. WAL with synchronous=FULL: a commit is on disk when it returns.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';

export type SqliteDatabase = Database.Database;

const MIGRATIONS: string[] = [
  `CREATE TABLE submissions (
     id TEXT PRIMARY KEY,
     message_uuid TEXT NOT NULL UNIQUE,
     state TEXT NOT NULL,
     reason TEXT,
     source TEXT NOT NULL,
     facts TEXT NOT NULL,
     routes TEXT NOT NULL DEFAULT '[]',
     size INTEGER NOT NULL,
     received_at TEXT NOT NULL,
     updated_at TEXT NOT NULL
   );
   CREATE INDEX submissions_state ON submissions(state);
   CREATE TABLE payloads (
     submission_id TEXT PRIMARY KEY REFERENCES submissions(id),
     body BLOB NOT NULL
   );
   CREATE TABLE deliveries (
     submission_id TEXT NOT NULL REFERENCES submissions(id),
     target TEXT NOT NULL,
     route TEXT NOT NULL,
     state TEXT NOT NULL,
     attempts INTEGER NOT NULL DEFAULT 0,
     reason TEXT,
     detail TEXT,
     reference TEXT,
     next_attempt_at TEXT,
     updated_at TEXT NOT NULL,
     PRIMARY KEY (submission_id, target)
   );
   CREATE INDEX deliveries_state ON deliveries(state);
   CREATE TABLE events (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     submission_id TEXT NOT NULL,
     at TEXT NOT NULL,
     event TEXT NOT NULL,
     target TEXT,
     attempt INTEGER,
     outcome TEXT,
     reason TEXT,
     detail TEXT
   );
   CREATE INDEX events_submission ON events(submission_id, id);
   CREATE TABLE jobs (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     queue TEXT NOT NULL,
     key TEXT NOT NULL,
     body TEXT NOT NULL,
     available_at INTEGER NOT NULL,
     leased INTEGER NOT NULL DEFAULT 0,
     deliveries INTEGER NOT NULL DEFAULT 0,
     UNIQUE (queue, key)
   );
   CREATE INDEX jobs_ready ON jobs(queue, leased, available_at);
   CREATE TABLE dead_letters (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     queue TEXT NOT NULL,
     key TEXT NOT NULL,
     body TEXT NOT NULL,
     reason TEXT NOT NULL,
     deliveries INTEGER NOT NULL,
     at TEXT NOT NULL
   );`,
  `ALTER TABLE deliveries ADD COLUMN lease_until INTEGER;`,
  // Operations: the tenant for the operator's filters, and the audit trail.
  `ALTER TABLE submissions ADD COLUMN tenant TEXT;
   CREATE INDEX submissions_received ON submissions(received_at, id);
   CREATE INDEX submissions_tenant ON submissions(tenant, received_at);
   CREATE TABLE audit (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     at TEXT NOT NULL,
     actor TEXT NOT NULL,
     action TEXT NOT NULL,
     submission_id TEXT,
     target TEXT,
     detail TEXT
   );
   CREATE INDEX audit_submission ON audit(submission_id, id);`,
  // Status callbacks and receipts: the sending client, the back office's receipt.
  `ALTER TABLE submissions ADD COLUMN client TEXT;
   ALTER TABLE deliveries ADD COLUMN receipt TEXT;`,
];

/**
 * Opens (creating if needed) the database at `file`. The database is locked exclusively for this
 * process: a second router on the same file fails at once instead of corrupting the queue.
 */
export function openSqlite(file: string): SqliteDatabase {
  if (file !== ':memory:') mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const db = new Database(file, { timeout: 0 });
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    db.pragma('locking_mode = EXCLUSIVE');
    // Take the exclusive lock now (the first write acquires it) so that a second process fails here.
    db.exec('BEGIN IMMEDIATE; COMMIT;');
    migrate(db);
  } catch (error) {
    db.close();
    if ((error as { code?: string }).code === 'SQLITE_BUSY') {
      throw new Error(`the store ${file} is in use by another process (embedded mode runs one router per store)`, { cause: error });
    }
    throw error;
  }
  return db;
}

function migrate(db: SqliteDatabase): void {
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)');
  const applied = new Set(db.prepare('SELECT version FROM schema_migrations').pluck().all() as number[]);
  MIGRATIONS.forEach((sql, index) => {
    const version = index + 1;
    if (applied.has(version)) return;
    db.transaction(() => {
      db.exec(sql);
      db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(version, new Date().toISOString());
    })();
  });
}
