// The xdomea package: a ZIP (yazl, streaming) holding the message XML and every document. Attachments
// are streamed into it one at a time, their size and SHA-256 checked on the way; the ZIP is collected up
// to a size limit, because the adapter contract hands a transport its payload as one buffer.
import { createHash } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import { ZipFile } from 'yazl';

export interface PackageEntry {
  name: string;
  /** Bytes in memory (message XML, mapped payload). */
  body?: Buffer;
  /** Or a stream of bytes opened when the entry is written, with the size and hash it must have. */
  open?: () => Promise<Readable>;
  size?: number;
  sha256?: string;
  /** Names the entry in errors (an id, never a file name, which may be personal). */
  label?: string;
}

export class PackageTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`the package exceeds the limit of ${limit} bytes`);
    this.name = 'PackageTooLargeError';
  }
}

/** Passes bytes through and fails at the end if their count or SHA-256 differ from what was announced. */
function verifying(label: string, size: number, sha256: string): Transform {
  const hash = createHash('sha256');
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      seen += chunk.length;
      done(null, chunk);
    },
    flush(done) {
      const digest = hash.digest('hex');
      if (seen !== size || digest !== sha256) done(new Error(`${label}: ${seen} bytes with SHA-256 ${digest.slice(0, 12)}…, expected ${size} bytes with ${sha256.slice(0, 12)}…`));
      else done();
    },
  });
}

/** Builds the ZIP. Entries keep their order; `mtime` is fixed so that the same input gives the same bytes. */
export async function buildPackage(entries: readonly PackageEntry[], mtime: Date, maxSize: number): Promise<Buffer> {
  const zip = new ZipFile();
  const chunks: Buffer[] = [];
  let total = 0;
  const output = zip.outputStream as Readable;
  const done = new Promise<Buffer>((resolve, reject) => {
    zip.on('error', reject);
    output.on('error', reject);
    output.on('data', (chunk: Buffer) => {
      total += chunk.length;
      if (total > maxSize) {
        output.destroy(new PackageTooLargeError(maxSize));
        return;
      }
      chunks.push(chunk);
    });
    output.on('end', () => resolve(Buffer.concat(chunks)));
  });
  const options = { mtime, mode: 0o100644, compress: true, forceDosTimestamp: true };
  for (const entry of entries) {
    if (entry.body) {
      zip.addBuffer(entry.body, entry.name, options);
    } else {
      const { open, size, sha256, name, label = 'entry' } = entry;
      // Opened only when yazl gets to this entry: one attachment stream at a time.
      zip.addReadStreamLazy(name, { ...options, size }, (callback) => {
        open!().then((stream) => {
          const checked = stream.pipe(verifying(label, size!, sha256!));
          stream.once('error', (error) => checked.destroy(error));
          // yazl does not watch lazily added streams for errors: a failed read must fail the package.
          checked.once('error', (error) => {
            stream.destroy();
            zip.emit('error', error);
          });
          callback(null, checked);
        }, (error: unknown) => callback(error, undefined as never));
      });
    }
  }
  zip.end();
  return done;
}
