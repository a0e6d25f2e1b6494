// Production mode's payload store: blobs in PostgreSQL as rows of bytea chunks, streamed in by binary COPY
// within one transaction (so a failed or oversized upload leaves no row) and read out by binary COPY too.
// Why COPY and not an INSERT per chunk: node-pg copies each parameter twice into its protocol buffers,
// which a 200 MB upload turns into hundreds of MB of garbage; COPY passes the received pieces on as they are.
// Why chunked bytea and not large objects: plain rows need no lo_* privileges or vacuumlo, are removed by an
// ordinary DELETE (cascade), and are read with plain queries through the store's pool.
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Pool } from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { newBlobKey, type PayloadStore } from './payload-store';

/** Bytes per row. */
const CHUNK_BYTES = 256 * 1024;

const COPY_CHUNKS = 'COPY blob_chunks (key, seq, data) FROM STDIN (FORMAT binary)';
/** PGCOPY signature, flags, header extension length (PostgreSQL docs, COPY, binary format). */
const COPY_HEADER = Buffer.concat([Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'), Buffer.alloc(8)]);
const COPY_TRAILER = Buffer.from([0xff, 0xff]);
const KEY = /^[0-9a-f-]{36}$/;

/**
 * The rows (key, seq, data) of binary COPY for a stream of bytes, CHUNK_BYTES of data each. The incoming
 * pieces are passed on as they are, behind a tuple header, never copied into a row buffer.
 */
async function* binaryCopyRows(key: string, bytes: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const keyBytes = Buffer.from(key, 'utf8');
  let seq = 0;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  function* row(): Generator<Buffer> {
    const header = Buffer.alloc(2 + 4 + keyBytes.length + 4 + 4 + 4);
    let at = header.writeInt16BE(3, 0);
    at = header.writeInt32BE(keyBytes.length, at);
    at += keyBytes.copy(header, at);
    at = header.writeInt32BE(4, at);
    at = header.writeInt32BE(seq++, at);
    header.writeInt32BE(pendingBytes, at);
    yield header;
    yield* pending;
    pending = [];
    pendingBytes = 0;
  }
  yield COPY_HEADER;
  for await (let piece of bytes) {
    while (piece.length > 0) {
      const take = Math.min(CHUNK_BYTES - pendingBytes, piece.length);
      pending.push(piece.subarray(0, take));
      pendingBytes += take;
      piece = piece.subarray(take);
      if (pendingBytes === CHUNK_BYTES) yield* row();
    }
  }
  if (pendingBytes > 0) yield* row();
  yield COPY_TRAILER;
}

/**
 * The field bytes of binary COPY output with one column, as they arrive: the header and tuple headers are
 * skipped, field data is passed on as slices of the received pieces.
 */
export async function* binaryCopyFields(stream: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let pending: Buffer = Buffer.alloc(0);
  let fieldLeft = 0;
  let started = false;
  let ended = false;
  for await (const chunk of stream) {
    // Only a few header bytes are ever held back and joined with the next piece.
    let data = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    pending = Buffer.alloc(0);
    while (data.length > 0 && !ended) {
      if (fieldLeft > 0) {
        const take = Math.min(fieldLeft, data.length);
        yield data.subarray(0, take);
        fieldLeft -= take;
        data = data.subarray(take);
      } else if (!started) {
        if (data.length < COPY_HEADER.length) break;
        data = data.subarray(COPY_HEADER.length);
        started = true;
      } else {
        if (data.length < 2) break;
        if (data.readInt16BE(0) === -1) {
          ended = true;
          break;
        }
        if (data.length < 6) break;
        fieldLeft = Math.max(0, data.readInt32BE(2));
        data = data.subarray(6);
      }
    }
    if (!ended) pending = data;
  }
  if (!ended) throw new Error('COPY output ended early');
}

export class PostgresPayloadStore implements PayloadStore {
  /** `pool` is the store's pool: its connections work in the store's schema, where migration 0003 created the tables. */
  constructor(private readonly pool: Pool) {}

  async write(source: Readable): Promise<string> {
    const key = newBlobKey();
    const client = await this.pool.connect();
    let failed = false;
    try {
      await client.query('BEGIN');
      await client.query('INSERT INTO blobs (key, size, created_at) VALUES ($1, 0, now())', [key]);
      let size = 0;
      const counted = (async function* () {
        for await (const chunk of source) {
          size += (chunk as Buffer).length;
          yield chunk as Buffer;
        }
      })();
      // The COPY stream's backpressure reaches the upload: it waits while the database is behind.
      await pipeline(Readable.from(binaryCopyRows(key, counted), { objectMode: false }), client.query(copyFrom(COPY_CHUNKS)));
      await client.query('UPDATE blobs SET size = $2 WHERE key = $1', [key, size]);
      await client.query('COMMIT');
      return key;
    } catch (error) {
      failed = true;
      source.destroy();
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      // A connection that failed mid-COPY is not given back to the pool.
      client.release(failed ? true : undefined);
    }
  }

  async open(key: string): Promise<Readable> {
    if (!KEY.test(key)) throw new Error('invalid payload key');
    const { rowCount } = await this.pool.query('SELECT 1 FROM blobs WHERE key = $1', [key]);
    if (!rowCount) throw new Error('no such payload');
    const pool = this.pool;
    async function* bytes(): AsyncGenerator<Buffer> {
      const client = await pool.connect();
      let complete = false;
      try {
        // COPY takes no parameters; the key is a UUID (checked above), so it is safe inline.
        const copy = client.query(copyTo(`COPY (SELECT data FROM blob_chunks WHERE key = '${key}' ORDER BY seq) TO STDOUT (FORMAT binary)`));
        yield* binaryCopyFields(copy);
        complete = true;
      } finally {
        // A connection left mid-COPY (the reader stopped early) is not given back to the pool.
        client.release(complete ? undefined : true);
      }
    }
    return Readable.from(bytes(), { objectMode: false });
  }

  async delete(keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return;
    await this.pool.query('DELETE FROM blobs WHERE key = ANY($1::text[])', [[...keys]]);
  }

  async list(before: Date, limit: number): Promise<string[]> {
    const { rows } = await this.pool.query<{ key: string }>('SELECT key FROM blobs WHERE created_at < $1 ORDER BY created_at LIMIT $2', [before, limit]);
    return rows.map((r) => r.key);
  }

  /** The pool belongs to the PostgreSQL store, which closes it. */
  async close(): Promise<void> {}
}
