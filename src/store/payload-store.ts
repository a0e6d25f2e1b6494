// The payload store (claim check): attachment bytes live here, streamed in as they arrive and out to the
// adapters; submissions and queue messages carry only references (key, size, media type, SHA-256).
// A local directory in embedded mode, PostgreSQL in production mode.
import { createHash, randomUUID } from 'node:crypto';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { InputError, type ReasonCode } from '../errors';

/** What the store keeps of one stream of bytes. */
export interface StoredBlob {
  key: string;
  size: number;
  /** Lower-case hex SHA-256 of the bytes. */
  sha256: string;
}

export interface PayloadStore {
  /**
   * Streams `source` into the store under a new key, resolving once the bytes are durable. Rejects with the
   * source's error (e.g. a size limit) and then leaves nothing behind: no half-written file or row.
   */
  write(source: Readable): Promise<string>;
  /** Opens the bytes stored under `key` as a fresh stream. */
  open(key: string): Promise<Readable>;
  /** Deletes the given keys; unknown keys are ignored (deletion may be repeated after a crash). */
  delete(keys: readonly string[]): Promise<void>;
  /** Up to `limit` keys written before `before` (for the retention job's sweep of orphans). */
  list(before: Date, limit: number): Promise<string[]>;
  close(): Promise<void>;
}

/** A limit a stream must stay within; exceeding it fails the stream with `code`. */
export interface ByteLimit {
  maxBytes: number;
  code: ReasonCode;
  /** Operator- and sender-facing explanation, e.g. `attachment 3 exceeds 10485760 bytes`. */
  detail: string;
}

/**
 * Counts and hashes the bytes passing through, and fails the stream with an InputError as soon as they
 * exceed the limit, so that an oversized upload is refused while it arrives, not after it was stored.
 */
export class Meter extends Transform {
  size = 0;
  private readonly hash = createHash('sha256');

  constructor(private readonly limit: ByteLimit) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.size += chunk.length;
    if (this.size > this.limit.maxBytes) {
      done(new InputError(this.limit.code, this.limit.detail));
      return;
    }
    this.hash.update(chunk);
    done(null, chunk);
  }

  digest(): string {
    return this.hash.digest('hex');
  }
}

/** Streams `source` through a Meter into `store`: the stored key with the size and hash of what was stored. */
export async function storeMetered(store: PayloadStore, source: Readable, limit: ByteLimit): Promise<StoredBlob> {
  const meter = new Meter(limit);
  // pipeline carries an error of either side to the other: a failing source fails the store's write (which
  // then cleans up), a failing write stops the source. Its own rejection is the same error, seen there.
  pipeline(source, meter).catch(() => undefined);
  const key = await store.write(meter);
  return { key, size: meter.size, sha256: meter.digest() };
}

/** A new random key (a UUID: no path characters, unique across instances). */
export const newBlobKey = (): string => randomUUID();

/** Reads a stream into memory, failing with `limit` beyond its size (for documents that are parsed whole). */
export async function readBounded(source: Readable, limit: ByteLimit): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of source) {
    size += (chunk as Buffer).length;
    if (size > limit.maxBytes) {
      source.destroy();
      throw new InputError(limit.code, limit.detail);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
