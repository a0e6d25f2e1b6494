// Test attachments for adapter tests: from a file on disk, from bytes, or generated as a stream of any size
// (the bytes are produced chunk by chunk on every open(), so a 20 MB attachment never sits in memory).
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, readFileSync, statSync } from 'node:fs';
import { Readable } from 'node:stream';
import type { DeliveryAttachment } from '../deliver/adapter';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** An attachment whose bytes are streamed from `file` on each open() (its hash is taken once, here). */
export function fileAttachment(id: string, name: string, mediaType: string, file: string): DeliveryAttachment {
  return { id, name, mediaType, size: statSync(file).size, sha256: sha256(readFileSync(file)), open: async () => createReadStream(file) };
}

/** An attachment with the given bytes (small ones). */
export function bufferAttachment(id: string, name: string, mediaType: string, bytes: Buffer): DeliveryAttachment {
  return { id, name, mediaType, size: bytes.length, sha256: sha256(bytes), open: async () => Readable.from([bytes]) };
}

const CHUNK = 64 * 1024;

/**
 * An attachment of `size` pseudo-random bytes, generated on each open() in 64 KiB chunks (a random block
 * with the chunk number stamped in, so no two chunks are alike). Its hash is computed once, streaming.
 */
export function generatedAttachment(id: string, name: string, size: number, mediaType = 'application/octet-stream'): DeliveryAttachment & { opened: () => number; produced: () => number } {
  const block = randomBytes(CHUNK);
  let produced = 0;
  function* chunks(count = false): Generator<Buffer> {
    for (let offset = 0, n = 0; offset < size; offset += CHUNK, n += 1) {
      const chunk = Buffer.from(block.subarray(0, Math.min(CHUNK, size - offset)));
      if (chunk.length >= 8) chunk.writeBigUInt64BE(BigInt(n), 0);
      if (count) produced += chunk.length;
      yield chunk;
    }
  }
  const hash = createHash('sha256');
  for (const chunk of chunks()) hash.update(chunk);
  let opened = 0;
  return {
    id,
    name,
    mediaType,
    size,
    sha256: hash.digest('hex'),
    open: async () => {
      opened += 1;
      return Readable.from(chunks(true), { objectMode: false });
    },
    opened: () => opened,
    /** Bytes handed out by all streams so far: shows whether a consumer reads ahead of what it sends. */
    produced: () => produced,
  };
}
