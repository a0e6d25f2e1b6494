// The `file` adapter: drops the mapped payload into a directory atomically (write a temp file, fsync,
// rename, fsync the directory), so that a back office polling the directory never sees half a file.
// The file name is fixed per submission and target, so a repeated attempt overwrites, never duplicates.
import { randomBytes } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { defineAdapter, type DeliveryOutcome } from '../../src/deliver/adapter';

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
        const finalPath = path.join(directory, name);
        const tempPath = path.join(directory, `.${name}.${randomBytes(6).toString('hex')}.tmp`);
        try {
          const handle = await fs.open(tempPath, 'wx', 0o640);
          try {
            await handle.writeFile(request.payload.body);
            await handle.sync();
          } finally {
            await handle.close();
          }
          await fs.rename(tempPath, finalPath);
          const dir = await fs.open(directory, constants.O_RDONLY);
          try {
            await dir.sync();
          } finally {
            await dir.close();
          }
          return { status: 'delivered', reference: name, detail: `${request.payload.body.length} bytes` };
        } catch (error) {
          await fs.rm(tempPath, { force: true }).catch(() => undefined);
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
