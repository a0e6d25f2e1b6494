// Production mode's payload store: blobs in PostgreSQL as rows of 1 MiB bytea chunks, streamed in within one
// transaction (so a failed or oversized upload leaves no row) and streamed out one chunk at a time.
// Why chunked bytea and not large objects: plain rows need no lo_* privileges or vacuumlo, are removed by an
// ordinary DELETE (cascade), and are read with plain queries through the store's pool.
import { Readable } from 'node:stream';
import { sql, type Kysely } from 'kysely';
import { newBlobKey, type PayloadStore } from './payload-store';

/** Bytes per row: large enough for few round trips, small enough to keep memory per stream low. */
const CHUNK_BYTES = 1024 * 1024;

export interface BlobsTable {
  key: string;
  size: number;
  created_at: Date;
}

export interface BlobChunksTable {
  key: string;
  seq: number;
  data: Buffer;
}

export interface BlobTables {
  blobs: BlobsTable;
  blob_chunks: BlobChunksTable;
}

export class PostgresPayloadStore implements PayloadStore {
  /** `db` is the store's kysely instance (its pool works in the store's schema, where migration 0003 created the tables). */
  constructor(private readonly db: Kysely<BlobTables>) {}

  async write(source: Readable): Promise<string> {
    const key = newBlobKey();
    try {
      await this.db.transaction().execute(async (trx) => {
        await trx.insertInto('blobs').values({ key, size: 0, created_at: sql<Date>`now()` }).execute();
        let seq = 0;
        let size = 0;
        let pending: Buffer[] = [];
        let pendingBytes = 0;
        const flush = async () => {
          const data = Buffer.concat(pending, pendingBytes);
          pending = [];
          pendingBytes = 0;
          await trx.insertInto('blob_chunks').values({ key, seq: seq++, data }).execute();
        };
        // Awaiting each insert before reading on is the backpressure: the upload waits for the database.
        for await (const chunk of source) {
          let bytes = chunk as Buffer;
          size += bytes.length;
          while (bytes.length > 0) {
            const take = Math.min(CHUNK_BYTES - pendingBytes, bytes.length);
            pending.push(bytes.subarray(0, take));
            pendingBytes += take;
            bytes = bytes.subarray(take);
            if (pendingBytes === CHUNK_BYTES) await flush();
          }
        }
        if (pendingBytes > 0) await flush();
        await trx.updateTable('blobs').set({ size }).where('key', '=', key).execute();
      });
    } catch (error) {
      source.destroy();
      throw error;
    }
    return key;
  }

  async open(key: string): Promise<Readable> {
    const blob = await this.db.selectFrom('blobs').select('key').where('key', '=', key).executeTakeFirst();
    if (!blob) throw new Error('no such payload');
    const db = this.db;
    async function* chunks() {
      for (let seq = 0; ; seq += 1) {
        const row = await db.selectFrom('blob_chunks').select('data').where('key', '=', key).where('seq', '=', seq).executeTakeFirst();
        if (!row) return;
        yield row.data;
      }
    }
    return Readable.from(chunks(), { objectMode: false });
  }

  async delete(keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return;
    await this.db.deleteFrom('blobs').where('key', 'in', [...keys]).execute();
  }

  /** The pool belongs to the PostgreSQL store, which closes it. */
  async close(): Promise<void> {}
}
