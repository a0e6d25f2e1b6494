// The `file` adapter: drops the mapped payload into a directory atomically (write a temp file, fsync,
// rename, fsync the directory), so that a back office polling the directory never sees half a file.
// The file name is fixed per submission and target, so a repeated attempt overwrites, never duplicates.
// Attachments go into `<file name>.attachments/` beside it (numbered, with a manifest.json of names, sizes
// and SHA-256), each written the same way and checked against its hash; the payload file comes last, so
// its appearance tells the back office that everything is there.
import { createHash, randomBytes } from 'node:crypto';
import { constants, createWriteStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { z } from 'zod';
import { defineAdapter, type DeliveryAttachment, type DeliveryOutcome } from '../../src/deliver/adapter';

const configSchema = z.strictObject({
  directory: z.string().min(1),
  /** File name template; `{submissionId}`, `{target}`, `{messageUuid}`, `{messageType}` and `{ext}` are replaced. */
  fileName: z.string().min(1).default('{submissionId}.{ext}'),
  /** Create the directory if it is missing. */
  createDirectory: z.boolean().default(true),
});

export type FileAdapterConfig = z.output<typeof configSchema>;

const SAFE = /[^A-Za-z0-9._-]/g;
/** `.<final name>.<12 hex>.tmp`: hidden from a back office that skips dot files. */
const TEMP_NAME = /^\..+\.[0-9a-f]{12}\.tmp$/;

/** Fills the template; every inserted value is reduced to safe characters, so no value can leave the directory. */
export function fileNameFor(template: string, values: Record<string, string | undefined>): string {
  const name = template.replace(/\{(\w+)\}/g, (_, key: string) => (values[key] ?? '').replace(SAFE, '_'));
  if (name.includes('/') || name.includes('\\') || name.startsWith('.') || name === '') throw new Error(`file name template gives an unsafe name`);
  return name;
}

export default defineAdapter<FileAdapterConfig>({
  name: 'file',
  summary: 'Write the mapped payload into a directory (atomic rename)',
  configSchema,
  defaultConcurrency: 4,
  create(config) {
    const directory = path.resolve(config.directory);
    return {
      async connect() {
        if (config.createDirectory) await fs.mkdir(directory, { recursive: true });
        // A process killed between writing and renaming leaves its temp file behind; the delivery itself is
        // retried, so the orphan is removed here. Only names of our own temp pattern are touched.
        const entries = await fs.readdir(directory).catch(() => [] as string[]);
        await Promise.all(entries.filter((entry) => TEMP_NAME.test(entry)).map((entry) => fs.rm(path.join(directory, entry), { force: true })));
      },
      async deliver(request): Promise<DeliveryOutcome> {
        let name: string;
        try {
          name = fileNameFor(config.fileName, {
            submissionId: request.submissionId,
            target: request.target,
            ext: request.payload.extension,
            messageUuid: typeof request.facts.messageUuid === 'string' ? request.facts.messageUuid : undefined,
            messageType: typeof request.facts.messageType === 'string' ? request.facts.messageType : undefined,
          });
        } catch (error) {
          return { status: 'rejected', reason: 'file-write-failed', detail: (error as Error).message };
        }
        try {
          if (request.attachments.length) await writeAttachments(directory, name, request.attachments);
          await writeAtomically(directory, name, (file) => fs.writeFile(file, request.payload.body, { flag: 'wx', mode: 0o640 }));
          const bytes = request.attachments.reduce((sum, a) => sum + a.size, request.payload.body.length);
          return { status: 'delivered', reference: name, detail: `${bytes} bytes${request.attachments.length ? ` with ${request.attachments.length} attachments` : ''}` };
        } catch (error) {
          if (error instanceof CorruptAttachmentError) return { status: 'rejected', reason: 'attachment-corrupt', detail: error.message };
          // Disk full, permissions, a missing mount: an operator can fix these, so retry (capped by maxAttempts).
          return { status: 'retryable', reason: 'file-write-failed', detail: `${(error as NodeJS.ErrnoException).code ?? 'error'} writing into the target directory` };
        }
      },
      async check() {
        try {
          await fs.access(directory, constants.W_OK);
          return { ok: true };
        } catch (error) {
          return { ok: false, detail: `directory not writable (${(error as NodeJS.ErrnoException).code})` };
        }
      },
      async close() {},
    };
  },
});

/** The stored bytes of an attachment differ from the SHA-256 recorded at intake. */
class CorruptAttachmentError extends Error {}

/** Writes `<directory>/<name>` via a temp file (fsync, rename, fsync of the directory); the temp file is removed on failure. */
async function writeAtomically(directory: string, name: string, write: (tempPath: string) => Promise<void>, into = directory): Promise<void> {
  const tempPath = path.join(directory, `.${name}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await write(tempPath);
    await sync(tempPath);
    await fs.rename(tempPath, path.join(into, name));
    await sync(into);
  } catch (error) {
    await fs.rm(tempPath, { force: true }).catch(() => undefined);
    throw error;
  }
}

/** fsync of a file or directory through a descriptor of its own (on Linux it flushes whichever descriptor asks). */
async function sync(target: string): Promise<void> {
  const handle = await fs.open(target, constants.O_RDONLY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** `01-Lageplan.pdf`: numbered in the order received (names may repeat), reduced to safe characters. */
export const attachmentFileName = (position: number, name: string): string => `${String(position).padStart(2, '0')}-${name.replace(SAFE, '_')}`;

/** Streams each attachment into `<name>.attachments/` (temp files in the target directory, cleaned like the payload's). */
async function writeAttachments(directory: string, name: string, attachments: readonly DeliveryAttachment[]): Promise<void> {
  const into = path.join(directory, `${name}.attachments`);
  await fs.mkdir(into, { recursive: true });
  const manifest: Array<Record<string, string | number>> = [];
  for (const [index, attachment] of attachments.entries()) {
    const file = attachmentFileName(index + 1, attachment.name);
    const hash = createHash('sha256');
    const hashing = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        hash.update(chunk);
        done(null, chunk);
      },
    });
    await writeAtomically(directory, file, async (tempPath) => {
      await pipeline(await attachment.open(), hashing, createWriteStream(tempPath, { flags: 'wx', mode: 0o640 }));
      if (hash.digest('hex') !== attachment.sha256) throw new CorruptAttachmentError(`attachment ${index + 1}: stored bytes do not match their SHA-256`);
    }, into);
    manifest.push({ file, id: attachment.id, name: attachment.name, mediaType: attachment.mediaType, size: attachment.size, sha256: attachment.sha256 });
  }
  await writeAtomically(directory, 'manifest.json', (tempPath) => fs.writeFile(tempPath, `${JSON.stringify(manifest, null, 2)}\n`, { flag: 'wx', mode: 0o640 }), into);
}
