// The `sftp` adapter: uploads one delivery as one directory on the back office's SFTP server, atomically.
//
//   <directory>/.<name>.<random>.tmp/   ← payload, attachments/…, manifest.json (written last)
//   <directory>/<name>/                 ← the same directory after one rename
//
// A back office polling <directory> sees a submission's directory only once it is complete (it skips
// dot names). A repeated attempt finds <name>/ with its own idempotency key in manifest.json and reports
// delivered without uploading again; a directory of that name from another delivery is a conflict.
// The server's host key must match a pinned SHA-256 fingerprint (as `ssh-keygen -lf` prints it) unless
// `allowUnpinnedHostKey` is set explicitly. Credentials (password, private key, passphrase) are secret
// references, read at connect. One SSH connection per delivery: simple and safe with SFTP servers that
// limit sessions; deliveries to drop folders are not latency-bound.
import { createHash, randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import SftpClient from 'ssh2-sftp-client';
import { z } from 'zod';
import { defineAdapter, type DeliveryOutcome, type DeliveryRequest } from '../../src/deliver/adapter';
import { readSecret, readSecretBytes, secretRefSchema } from '../../src/config/secret';
import { fileNameFor } from '../file';
import { AttachmentReadError, templateValues } from '../../src/deliver/delivery-helpers';

/** `SHA256:` + unpadded base64, as OpenSSH prints fingerprints. */
const fingerprintSchema = z.string().regex(/^SHA256:[A-Za-z0-9+/]{43}$/, 'a SHA-256 host key fingerprint like SHA256:… (ssh-keygen -lf <host key>.pub)');

const configSchema = z.strictObject({
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535).default(22),
  username: z.string().min(1),
  password: secretRefSchema.optional(),
  privateKey: secretRefSchema.optional(),
  passphrase: secretRefSchema.optional(),
  /** Accepted host key fingerprints (more than one during a key rotation). */
  hostKeySha256: z.array(fingerprintSchema).default([]),
  /** Connect to whatever host key the server shows. Only for test set-ups; never the default. */
  allowUnpinnedHostKey: z.boolean().default(false),
  /** Remote directory the back office polls; must exist. */
  directory: z.string().min(1),
  /** Name of each delivery's directory; `{submissionId}`, `{target}`, `{messageUuid}`, `{messageType}` are replaced. */
  name: z.string().min(1).default('{submissionId}'),
  /** File name of the payload inside it; `{ext}` is the mapping's extension. */
  payloadName: z.string().min(1).default('payload.{ext}'),
  timeoutMs: z.number().int().min(100).max(600_000).default(20_000),
})
  .refine((c) => c.password !== undefined || c.privateKey !== undefined, 'configure password or privateKey (a secret reference)')
  .refine((c) => c.hostKeySha256.length > 0 || c.allowUnpinnedHostKey, 'pin the server\'s host key with hostKeySha256 (or set allowUnpinnedHostKey: true explicitly)');

export type SftpAdapterConfig = z.output<typeof configSchema>;

const MANIFEST = 'manifest.json';

/**
 * Bytes of an attachment an upload may have in flight. ssh2 writes one chunk and waits for the server's
 * answer before the next, unless chunks are buffered: then they go out together (pipelined). 1 MiB
 * buffered keeps that up without reading an attachment ahead by more than that.
 */
const UPLOAD_WINDOW = 1024 * 1024;
// ssh2-sftp-client passes writeStreamOptions on to ssh2's createWriteStream, a Writable that honours
// highWaterMark; the type definitions (written for its version 9) do not list it.
const UPLOAD_OPTIONS = { writeStreamOptions: { highWaterMark: UPLOAD_WINDOW } } as SftpClient.TransferOptions;

export interface Manifest {
  idempotencyKey: string;
  submissionId: string;
  target: string;
  messageType?: string;
  payload: { file: string; contentType: string; size: number; sha256: string };
  attachments: Array<{ id: string; name: string; file: string; mediaType: string; size: number; sha256: string }>;
}

/** The fingerprint OpenSSH shows for a raw public key blob. */
export const fingerprintOf = (key: Buffer): string => `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;

class Classified extends Error {
  constructor(readonly outcome: DeliveryOutcome) {
    super(outcome.status === 'delivered' ? 'delivered' : outcome.reason);
  }
}

export default defineAdapter<SftpAdapterConfig>({
  name: 'sftp',
  summary: 'Upload to an SFTP drop folder, one directory per delivery (atomic rename), host key pinned',
  configSchema,
  defaultConcurrency: 2,
  create(config) {
    let credentials: { password?: string; privateKey?: Buffer; passphrase?: string };

    /** Opens a session; connection failures become classified outcomes. */
    async function session(): Promise<SftpClient> {
      const client = new SftpClient();
      let offered: string | undefined;
      let rawError: (Error & { level?: string; code?: string }) | undefined;
      client.on('error', (error: Error) => {
        rawError ??= error;
      });
      try {
        await client.connect({
          host: config.host,
          port: config.port,
          username: config.username,
          ...credentials,
          readyTimeout: config.timeoutMs,
          // A server that stops answering mid-upload is noticed (and the attempt is retryable) instead of hanging.
          keepaliveInterval: Math.max(1000, Math.floor(config.timeoutMs / 3)),
          keepaliveCountMax: 3,
          hostVerifier: (key: Buffer) => {
            offered = fingerprintOf(key);
            return config.allowUnpinnedHostKey || config.hostKeySha256.includes(offered);
          },
        });
        return client;
      } catch (error) {
        await client.end().catch(() => undefined);
        const pinned = offered !== undefined && !config.allowUnpinnedHostKey && !config.hostKeySha256.includes(offered);
        if (pinned) throw new Classified({ status: 'retryable', reason: 'sftp-host-key-mismatch', detail: `server ${config.host}:${config.port} offered host key ${offered}, which is not pinned in hostKeySha256` });
        const cause = rawError ?? (error as Error & { level?: string; code?: string });
        if (cause.level === 'client-authentication') throw new Classified({ status: 'retryable', reason: 'sftp-auth-failed', detail: `login as ${config.username} refused by ${config.host}:${config.port}` });
        throw new Classified({ status: 'retryable', reason: 'network-error', detail: `cannot connect to ${config.host}:${config.port} (${cause.code ?? cause.level ?? 'error'})` });
      }
    }

    async function existingManifest(client: SftpClient, dir: string): Promise<Manifest | undefined> {
      if ((await client.exists(posix.join(dir, MANIFEST))) !== '-') return undefined;
      try {
        return JSON.parse(((await client.get(posix.join(dir, MANIFEST))) as Buffer).toString('utf8')) as Manifest;
      } catch {
        return undefined;
      }
    }

    /** Delivered when `<name>/` holds this delivery already; a conflict when it holds another. */
    async function alreadyThere(client: SftpClient, finalDir: string, request: DeliveryRequest): Promise<DeliveryOutcome | undefined> {
      if ((await client.exists(finalDir)) === false) return undefined;
      const manifest = await existingManifest(client, finalDir);
      if (manifest?.idempotencyKey === request.idempotencyKey) return { status: 'delivered', reference: posix.basename(finalDir), detail: 'already uploaded by an earlier attempt' };
      return { status: 'rejected', reason: 'sftp-name-conflict', detail: `${posix.basename(finalDir)} exists in the target directory and belongs to another delivery` };
    }

    async function upload(client: SftpClient, request: DeliveryRequest, name: string): Promise<DeliveryOutcome> {
      const directory = config.directory;
      if ((await client.exists(directory)) !== 'd') return { status: 'retryable', reason: 'sftp-upload-failed', detail: 'target directory does not exist on the server' };
      const finalDir = posix.join(directory, name);
      const before = await alreadyThere(client, finalDir, request);
      if (before) return before;

      // Leftovers of an attempt of this same delivery that died mid-upload (only one attempt of a delivery
      // runs at a time, so these are never another attempt's live upload).
      const prefix = `.${name}.`;
      for (const entry of await client.list(directory, (item) => item.name.startsWith(prefix) && item.name.endsWith('.tmp'))) {
        await client.rmdir(posix.join(directory, entry.name), true);
      }

      const tempDir = posix.join(directory, `${prefix}${randomBytes(6).toString('hex')}.tmp`);
      const values = templateValues(request);
      const payloadFile = fileNameFor(config.payloadName, values);
      const manifest: Manifest = {
        idempotencyKey: request.idempotencyKey,
        submissionId: request.submissionId,
        target: request.target,
        messageType: values.messageType,
        payload: { file: payloadFile, contentType: request.payload.contentType, size: request.payload.body.length, sha256: createHash('sha256').update(request.payload.body).digest('hex') },
        attachments: [],
      };
      try {
        await client.mkdir(tempDir);
        await client.put(request.payload.body, posix.join(tempDir, payloadFile));
        if (request.attachments.length > 0) await client.mkdir(posix.join(tempDir, 'attachments'));
        for (const [index, attachment] of request.attachments.entries()) {
          // The index keeps two attachments of the same name apart; the name is already a safe base name.
          const file = `attachments/${String(index + 1).padStart(3, '0')}-${attachment.name.replace(/[^\p{L}\p{N}._-]/gu, '_')}`;
          let sourceError: unknown;
          try {
            const stream = await attachment.open().catch((error: unknown) => {
              sourceError = error;
              throw error;
            });
            stream.once('error', (error) => {
              sourceError = error;
            });
            try {
              await client.put(stream, posix.join(tempDir, file), UPLOAD_OPTIONS);
            } finally {
              stream.destroy();
            }
          } catch (error) {
            if (sourceError !== undefined) throw new AttachmentReadError(attachment.id, sourceError);
            throw error;
          }
          const { size } = await client.stat(posix.join(tempDir, file));
          if (size !== attachment.size) return { status: 'retryable', reason: 'sftp-upload-failed', detail: `attachment ${attachment.id}: ${size} bytes arrived, ${attachment.size} expected` };
          manifest.attachments.push({ id: attachment.id, name: attachment.name, file, mediaType: attachment.mediaType, size: attachment.size, sha256: attachment.sha256 });
        }
        await client.put(Buffer.from(JSON.stringify(manifest, null, 2)), posix.join(tempDir, MANIFEST));
        try {
          await client.rename(tempDir, finalDir);
        } catch (error) {
          // Another attempt may have finished in between; then its result stands.
          const after = await alreadyThere(client, finalDir, request);
          if (after) return after;
          throw error;
        }
      } catch (error) {
        await client.rmdir(tempDir, true).catch(() => undefined);
        throw error;
      }
      const bytes = request.payload.body.length + request.attachments.reduce((sum, a) => sum + a.size, 0);
      return { status: 'delivered', reference: name, detail: `${1 + request.attachments.length} files, ${bytes} bytes` };
    }

    return {
      async connect() {
        credentials = {
          password: config.password ? readSecret(config.password) : undefined,
          privateKey: config.privateKey ? readSecretBytes(config.privateKey) : undefined,
          passphrase: config.passphrase ? readSecret(config.passphrase) : undefined,
        };
      },
      async deliver(request): Promise<DeliveryOutcome> {
        let name: string;
        try {
          name = fileNameFor(config.name, templateValues(request));
        } catch (error) {
          return { status: 'rejected', reason: 'sftp-upload-failed', detail: (error as Error).message };
        }
        let client: SftpClient | undefined;
        try {
          client = await session();
          return await upload(client, request, name);
        } catch (error) {
          if (error instanceof Classified) return error.outcome;
          if (error instanceof AttachmentReadError) return { status: 'retryable', reason: 'attachment-read-failed', detail: error.message };
          const code = (error as { code?: string | number }).code;
          return { status: 'retryable', reason: 'sftp-upload-failed', detail: `upload of ${name} failed (${code ?? 'error'})` };
        } finally {
          await client?.end().catch(() => undefined);
        }
      },
      async check() {
        let client: SftpClient | undefined;
        try {
          client = await session();
          const kind = await client.exists(config.directory);
          return kind === 'd' ? { ok: true, detail: `connected; target directory exists` } : { ok: false, detail: 'connected; target directory does not exist' };
        } catch (error) {
          if (error instanceof Classified && error.outcome.status !== 'delivered') return { ok: false, detail: `${error.outcome.reason}: ${error.outcome.detail}` };
          return { ok: false, detail: `check failed (${(error as { code?: string }).code ?? 'error'})` };
        } finally {
          await client?.end().catch(() => undefined);
        }
      },
      async close() {},
    };
  },
});
