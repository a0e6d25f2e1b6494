// The `file` adapter: drops the mapped payload into a directory atomically (write a temp file, fsync,
// rename, fsync the directory), so that a back office polling the directory never sees half a file.
// The file name is fixed per submission and target, so a repeated attempt overwrites, never duplicates.
// Attachments go first, streamed into `<name without extension>.attachments/` (built under a temp name,
// then renamed), so that once the payload file appears everything it refers to is complete.
import { randomBytes } from 'node:crypto';
import { constants, createWriteStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import { defineAdapter, type DeliveryAttachment, type DeliveryOutcome } from '../../src/deliver/adapter';
import { syncPath } from '../../src/util/fsync';

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

/** File names for attachments inside their directory: safe characters; a repeated name gets `-2`, `-3`, ... before its extension. */
export function attachmentFileNames(attachments: readonly Pick<DeliveryAttachment, 'name'>[]): string[] {
  const used = new Set<string>();
  return attachments.map(({ name }) => {
    const safe = name.replace(SAFE, '_').replace(/^\.+/, '_') || 'attachment';
    const dot = safe.lastIndexOf('.');
    const [stem, ext] = dot > 0 ? [safe.slice(0, dot), safe.slice(dot)] : [safe, ''];
    let candidate = safe;
    for (let n = 2; used.has(candidate); n += 1) candidate = `${stem}-${n}${ext}`;
    used.add(candidate);
    return candidate;
  });
}

/** Streams every attachment into `finalDir` (replacing an earlier attempt's), via a temp directory and a rename. */
async function writeAttachments(attachments: readonly DeliveryAttachment[], directory: string, finalDir: string, tempDir: string): Promise<void> {
  await fs.mkdir(tempDir, { mode: 0o750 });
  const names = attachmentFileNames(attachments);
  for (const [i, attachment] of attachments.entries()) {
    const file = path.join(tempDir, names[i]!);
    await pipeline(await attachment.open(), createWriteStream(file, { flags: 'wx', mode: 0o640 }));
    await syncPath(file);
  }
  await syncPath(tempDir);
  // An earlier attempt's directory is replaced; rename cannot replace a non-empty directory.
  await fs.rm(finalDir, { recursive: true, force: true });
  await fs.rename(tempDir, finalDir);
  await syncPath(directory);
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
        await Promise.all(entries.filter((entry) => TEMP_NAME.test(entry)).map((entry) => fs.rm(path.join(directory, entry), { recursive: true, force: true })));
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
        const attachmentsDir = path.join(directory, `${name.replace(/\.[^.]*$/, '')}.attachments`);
        const tempAttachmentsDir = path.join(directory, `.${name}.attachments.${randomBytes(6).toString('hex')}.tmp`);
        try {
          if (request.attachments.length) await writeAttachments(request.attachments, directory, attachmentsDir, tempAttachmentsDir);
          else await fs.rm(attachmentsDir, { recursive: true, force: true });
          const handle = await fs.open(tempPath, 'wx', 0o640);
          try {
            await handle.writeFile(request.payload.body);
            await handle.sync();
          } finally {
            await handle.close();
          }
          await fs.rename(tempPath, finalPath);
          await syncPath(directory);
          const extra = request.attachments.length ? ` and ${request.attachments.length} attachment(s)` : '';
          return { status: 'delivered', reference: name, detail: `${request.payload.body.length} bytes${extra}` };
        } catch (error) {
          await fs.rm(tempPath, { force: true }).catch(() => undefined);
          await fs.rm(tempAttachmentsDir, { recursive: true, force: true }).catch(() => undefined);
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
