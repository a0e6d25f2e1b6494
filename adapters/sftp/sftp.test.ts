// The sftp adapter against a real OpenSSH server on loopback (needs the Debian package openssh-server):
// atomic per-delivery directories, idempotency, host key pinning, key/password/passphrase auth,
// attachments streamed byte-identical, classification of failures, and check.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Adapter } from '../../src/deliver/adapter';
import { SecretMissingError } from '../../src/config/secret';
import { attachmentOf, binary, brokenAttachment, closedPort, deliveryRequest, sha256, silentLog } from '../../test/support/delivery';
import sftpAdapter, { type Manifest } from './index';
import { generateKey, OpenSshServer } from './test-counterpart';

let server: OpenSshServer;

beforeAll(async () => {
  server = new OpenSshServer();
  await server.start();
});
afterAll(() => server?.stop());

beforeEach(async () => {
  await fs.rm(server.dropDir, { recursive: true, force: true });
  await fs.mkdir(server.dropDir);
});

async function adapterFor(config: Record<string, unknown>): Promise<Adapter> {
  const adapter = sftpAdapter.create(sftpAdapter.configSchema.parse(config), { target: 'bo-sftp', log: silentLog });
  await adapter.connect();
  return adapter;
}

const readManifest = async (name: string) => JSON.parse(await fs.readFile(path.join(server.dropDir, name, 'manifest.json'), 'utf8')) as Manifest;

describe('delivered', () => {
  it('one complete directory per delivery: payload, attachments byte-identical, manifest', async () => {
    const scan = binary(1_500_000);
    const plan = binary(20_000);
    const request = deliveryRequest({ attachments: [attachmentOf('a1', 'Lageplan M\u00fcnchen.pdf', scan, 'application/pdf'), attachmentOf('a2', 'Lageplan M\u00fcnchen.pdf', plan, 'application/pdf')] });
    const adapter = await adapterFor(server.adapterConfig());
    expect(await adapter.deliver(request)).toEqual({ status: 'delivered', reference: request.submissionId, detail: `3 files, ${request.payload.body.length + scan.length + plan.length} bytes` });

    expect(await server.listing()).toEqual([request.submissionId]);
    const dir = path.join(server.dropDir, request.submissionId);
    expect((await fs.readdir(dir)).sort()).toEqual(['attachments', 'manifest.json', 'payload.json']);
    expect((await fs.readFile(path.join(dir, 'payload.json'))).equals(request.payload.body)).toBe(true);
    expect((await fs.readFile(path.join(dir, 'attachments/001-Lageplan_M\u00fcnchen.pdf'))).equals(scan)).toBe(true);
    expect((await fs.readFile(path.join(dir, 'attachments/002-Lageplan_M\u00fcnchen.pdf'))).equals(plan)).toBe(true);
    expect(await readManifest(request.submissionId)).toEqual({
      idempotencyKey: request.idempotencyKey,
      submissionId: request.submissionId,
      target: 'back-office',
      messageType: '0200',
      payload: { file: 'payload.json', contentType: 'application/json; charset=utf-8', size: request.payload.body.length, sha256: sha256(request.payload.body) },
      attachments: [
        { id: 'a1', name: 'Lageplan M\u00fcnchen.pdf', file: 'attachments/001-Lageplan_M\u00fcnchen.pdf', mediaType: 'application/pdf', size: scan.length, sha256: sha256(scan) },
        { id: 'a2', name: 'Lageplan M\u00fcnchen.pdf', file: 'attachments/002-Lageplan_M\u00fcnchen.pdf', mediaType: 'application/pdf', size: plan.length, sha256: sha256(plan) },
      ],
    });
  });

  it('name templates', async () => {
    const adapter = await adapterFor(server.adapterConfig({ name: '{messageType}_{submissionId}', payloadName: 'antrag-{messageType}.{ext}' }));
    const request = deliveryRequest();
    expect(await adapter.deliver(request)).toMatchObject({ status: 'delivered', reference: `0200_${request.submissionId}` });
    expect(await fs.readdir(path.join(server.dropDir, `0200_${request.submissionId}`))).toEqual(expect.arrayContaining(['antrag-0200.json', 'manifest.json']));
  });

  it('a back office polling the folder never sees a directory without its complete content', async () => {
    const big = binary(4_000_000);
    const request = deliveryRequest({ attachments: [attachmentOf('a1', 'scan.tif', big, 'image/tiff')] });
    const adapter = await adapterFor(server.adapterConfig());
    const seen: string[] = [];
    let polling = true;
    const poller = (async () => {
      while (polling) {
        for (const name of await fs.readdir(server.dropDir)) {
          if (name.startsWith('.')) continue;
          // Visible means complete: the manifest and every file it lists, at full size.
          const manifest = await readManifest(name);
          const stat = await fs.stat(path.join(server.dropDir, name, manifest.attachments[0]!.file));
          seen.push(`${name}:${stat.size}`);
        }
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    const outcome = await adapter.deliver(request);
    // Let the poller see the finished directory at least once.
    for (const deadline = Date.now() + 5000; seen.length === 0 && Date.now() < deadline;) await new Promise((resolve) => setTimeout(resolve, 10));
    polling = false;
    await poller;
    expect(outcome.status).toBe('delivered');
    expect(seen.length).toBeGreaterThan(0);
    expect(new Set(seen)).toEqual(new Set([`${request.submissionId}:${big.length}`]));
  });
});

describe('idempotency', () => {
  it('a repeated attempt finds its own directory and uploads nothing again', async () => {
    const attachment = attachmentOf('a1', 'x.pdf', binary(5000));
    const request = deliveryRequest({ attachments: [attachment] });
    const adapter = await adapterFor(server.adapterConfig());
    expect((await adapter.deliver(request)).status).toBe('delivered');
    const firstWrite = (await fs.stat(path.join(server.dropDir, request.submissionId, 'payload.json'))).mtimeMs;
    expect(await adapter.deliver({ ...request, attempt: 2 })).toEqual({ status: 'delivered', reference: request.submissionId, detail: 'already uploaded by an earlier attempt' });
    expect(attachment.opened).toBe(1);
    expect(await server.listing()).toEqual([request.submissionId]);
    expect((await fs.stat(path.join(server.dropDir, request.submissionId, 'payload.json'))).mtimeMs).toBe(firstWrite);
  });

  it('a directory of the same name from another delivery is a conflict, left untouched', async () => {
    const adapter = await adapterFor(server.adapterConfig());
    const first = deliveryRequest();
    await adapter.deliver(first);
    const other = { ...deliveryRequest({ submissionId: first.submissionId }), idempotencyKey: `${first.submissionId}/other-target` };
    expect(await adapter.deliver(other)).toEqual({ status: 'rejected', reason: 'sftp-name-conflict', detail: `${first.submissionId} exists in the target directory and belongs to another delivery` });
    expect((await readManifest(first.submissionId)).idempotencyKey).toBe(first.idempotencyKey);
  });

  it('an attempt that dies mid-upload leaves no visible directory; its leftovers are removed by the next attempt', async () => {
    const request = deliveryRequest();
    // A crashed attempt's temp directory with half a file.
    const stale = path.join(server.dropDir, `.${request.submissionId}.0123456789ab.tmp`);
    await fs.mkdir(stale);
    await fs.writeFile(path.join(stale, 'payload.json'), '{"hal');
    // An attempt whose attachment stream breaks half way.
    const good = binary(200_000);
    const broken = brokenAttachment('a1', 'scan.pdf', good.subarray(0, 100_000));
    const adapter = await adapterFor(server.adapterConfig());
    const failed = await adapter.deliver({ ...request, attachments: [broken] });
    expect(failed).toEqual({ status: 'retryable', reason: 'attachment-read-failed', detail: 'reading attachment a1 failed (EIO)' });
    expect((await server.listing()).filter((name) => !name.startsWith('.'))).toEqual([]);

    expect((await adapter.deliver({ ...request, attachments: [attachmentOf('a1', 'scan.pdf', good)], attempt: 2 })).status).toBe('delivered');
    expect(await server.listing()).toEqual([request.submissionId]);
    expect((await fs.readFile(path.join(server.dropDir, request.submissionId, 'attachments/001-scan.pdf'))).equals(good)).toBe(true);
  });
});

describe('host key pinning', () => {
  it('a host key other than the pinned one is retryable with the offered fingerprint, and nothing is uploaded', async () => {
    const otherFingerprint = await generateKey(path.join(server.dir, `other_${Date.now()}`));
    const adapter = await adapterFor(server.adapterConfig({ hostKeySha256: [otherFingerprint] }));
    expect(await adapter.deliver(deliveryRequest())).toEqual({
      status: 'retryable', reason: 'sftp-host-key-mismatch',
      detail: `server 127.0.0.1:${server.port} offered host key ${server.hostKeySha256}, which is not pinned in hostKeySha256`,
    });
    expect(await server.listing()).toEqual([]);
    expect(await adapter.check()).toEqual({ ok: false, detail: `sftp-host-key-mismatch: server 127.0.0.1:${server.port} offered host key ${server.hostKeySha256}, which is not pinned in hostKeySha256` });
  });

  it('one of several pinned keys matching is enough (key rotation)', async () => {
    const otherFingerprint = await generateKey(path.join(server.dir, `rotated_${Date.now()}`));
    const adapter = await adapterFor(server.adapterConfig({ hostKeySha256: [otherFingerprint, server.hostKeySha256] }));
    expect((await adapter.deliver(deliveryRequest())).status).toBe('delivered');
  });

  it('unpinned only when explicitly allowed', async () => {
    const unpinned = server.adapterConfig({ hostKeySha256: [] });
    const refused = sftpAdapter.configSchema.safeParse(unpinned);
    expect(refused.success).toBe(false);
    expect(refused.error?.issues[0]?.message).toBe('pin the server\'s host key with hostKeySha256 (or set allowUnpinnedHostKey: true explicitly)');
    const adapter = await adapterFor({ ...unpinned, allowUnpinnedHostKey: true });
    expect((await adapter.deliver(deliveryRequest())).status).toBe('delivered');
  });
});

describe('authentication', () => {
  it('a passphrase-protected key with the passphrase from an environment variable', async () => {
    const key = path.join(server.dir, `protected_${Date.now()}`);
    await generateKey(key, 'korrekt-pferd-batterie');
    await server.authorize(`${key}.pub`);
    process.env.TEST_SFTP_PASSPHRASE = 'korrekt-pferd-batterie';
    const adapter = await adapterFor(server.adapterConfig({ privateKey: { file: key }, passphrase: { env: 'TEST_SFTP_PASSPHRASE' } }));
    expect((await adapter.deliver(deliveryRequest())).status).toBe('delivered');
    delete process.env.TEST_SFTP_PASSPHRASE;
  });

  it('a key the server does not know is retryable sftp-auth-failed', async () => {
    const key = path.join(server.dir, `unknown_${Date.now()}`);
    await generateKey(key);
    const adapter = await adapterFor(server.adapterConfig({ privateKey: { file: key } }));
    expect(await adapter.deliver(deliveryRequest())).toEqual({ status: 'retryable', reason: 'sftp-auth-failed', detail: `login as ${server.username} refused by 127.0.0.1:${server.port}` });
  });

  it('a wrong password is retryable sftp-auth-failed and never shown', async () => {
    process.env.TEST_SFTP_PASSWORD = 'falsch-s3cret';
    const adapter = await adapterFor({ ...server.adapterConfig({ password: { env: 'TEST_SFTP_PASSWORD' } }), privateKey: undefined });
    const outcome = await adapter.deliver(deliveryRequest());
    expect(outcome).toMatchObject({ status: 'retryable', reason: 'sftp-auth-failed' });
    const health = await adapter.check();
    expect(health.ok).toBe(false);
    expect(JSON.stringify([outcome, health])).not.toContain('falsch-s3cret');
    delete process.env.TEST_SFTP_PASSWORD;
  });

  it('a missing key file fails connect, naming the file only', async () => {
    const adapter = sftpAdapter.create(sftpAdapter.configSchema.parse(server.adapterConfig({ privateKey: { file: '/nonexistent/key' } })), { target: 't', log: silentLog });
    await expect(adapter.connect()).rejects.toThrow(new SecretMissingError({ file: '/nonexistent/key' }, 'cannot be read (ENOENT)'));
  });
});

describe('failures and check', () => {
  it('no server listening: retryable network-error, check not ok', async () => {
    const adapter = await adapterFor(server.adapterConfig({ port: await closedPort() }));
    expect(await adapter.deliver(deliveryRequest())).toMatchObject({ status: 'retryable', reason: 'network-error', detail: expect.stringContaining('(ECONNREFUSED)') });
    expect(await adapter.check()).toMatchObject({ ok: false, detail: expect.stringContaining('network-error: cannot connect') });
  });

  it('a missing target directory is retryable; check says so', async () => {
    const adapter = await adapterFor(server.adapterConfig({ directory: path.join(server.dropDir, 'fehlt') }));
    expect(await adapter.deliver(deliveryRequest())).toEqual({ status: 'retryable', reason: 'sftp-upload-failed', detail: 'target directory does not exist on the server' });
    expect(await adapter.check()).toEqual({ ok: false, detail: 'connected; target directory does not exist' });
  });

  it('check is ok when it can log in and the directory exists', async () => {
    expect(await (await adapterFor(server.adapterConfig())).check()).toEqual({ ok: true, detail: 'connected; target directory exists' });
  });
});

describe('configSchema', () => {
  it('fills defaults and checks fingerprints and credentials', () => {
    const fp = `SHA256:${'A'.repeat(43)}`;
    expect(sftpAdapter.configSchema.parse({ host: 'bo', username: 'u', password: { env: 'P' }, hostKeySha256: [fp], directory: '/in' })).toEqual({
      host: 'bo', port: 22, username: 'u', password: { env: 'P' }, hostKeySha256: [fp], allowUnpinnedHostKey: false,
      directory: '/in', name: '{submissionId}', payloadName: 'payload.{ext}', timeoutMs: 20_000,
    });
    expect(sftpAdapter.configSchema.safeParse({ host: 'bo', username: 'u', password: { env: 'P' }, hostKeySha256: ['ab:cd'], directory: '/in' }).success).toBe(false);
    expect(sftpAdapter.configSchema.safeParse({ host: 'bo', username: 'u', hostKeySha256: [fp], directory: '/in' }).success).toBe(false);
    expect(sftpAdapter.configSchema.safeParse({ host: 'bo', username: 'u', password: 'klartext', hostKeySha256: [fp], directory: '/in' }).success).toBe(false);
  });
});
