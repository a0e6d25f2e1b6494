// The sftp adapter against the conformance suite; its counterpart is a real OpenSSH server on loopback
// (test-counterpart.ts; needs the Debian package openssh-server) with a drop folder, as a back office runs
// it. What arrived is read as the back office's import would: every complete directory (no dot name), its
// files hashed from disk. Modes: fail → the drop folder is gone (e.g. an unmounted share: try later);
// down → sshd stops listening and comes back on the same port; hold → the SFTP session processes are
// stopped (SIGSTOP), so the adapter is held by SSH flow control while it uploads.
//
// No 'reject': an SFTP server has no answer that refuses one delivery for good. Permission denied or a
// missing directory says something about the server's set-up, which an operator fixes, and then the
// waiting deliveries must go through (the adapter treats them as retryable, as it does refused logins).
// The adapter's one permanent refusal, a directory of the same name from another delivery
// (sftp-name-conflict), is tested in sftp.test.ts.
import { createHash } from 'node:crypto';
import { promises as fs, readFileSync } from 'node:fs';
import path from 'node:path';
import { describeAdapterConformance, type ConformanceCounterpart, type ReceivedDelivery } from '../../src/testkit/conformance';
import { createHold } from '../../src/testkit/hold';
import sftpAdapter, { type Manifest } from './index';
import { OpenSshServer } from './test-counterpart';

const server = new OpenSshServer();

/** Sizes of all files under `dir`, dot directories (uploads in progress) included. */
async function fileSizes(dir: string): Promise<number[]> {
  const entries = await fs.readdir(dir, { withFileTypes: true, recursive: true }).catch(() => []);
  const sizes = await Promise.all(entries.filter((e) => e.isFile()).map((e) => fs.stat(path.join(e.parentPath, e.name)).then((s) => s.size, () => 0)));
  return sizes;
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

const counterpart: ConformanceCounterpart = {
  start: () => server.start(),
  stop: () => server.stop(),
  async behave(mode) {
    if (mode === 'down') return server.takeDown();
    await server.bringUp();
    if (mode === 'fail') await fs.rm(server.dropDir, { recursive: true, force: true });
    else await fs.mkdir(server.dropDir, { recursive: true });
  },
  async received(): Promise<ReceivedDelivery[]> {
    const deliveries: ReceivedDelivery[] = [];
    for (const name of await server.listing()) {
      if (name.startsWith('.')) continue;
      const dir = path.join(server.dropDir, name);
      const manifest = JSON.parse(await fs.readFile(path.join(dir, 'manifest.json'), 'utf8')) as Manifest;
      const attachments = await Promise.all(manifest.attachments.map(async (attachment) => {
        const bytes = await fs.readFile(path.join(dir, attachment.file));
        return { name: attachment.name, size: bytes.length, sha256: sha256(bytes) };
      }));
      // Every file in the directory is accounted for by the manifest.
      const files = (await fs.readdir(dir, { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).length;
      if (files !== 2 + attachments.length) throw new Error(`${name}: ${files} files, the manifest lists ${2 + attachments.length}`);
      deliveries.push({ key: name, payload: await fs.readFile(path.join(dir, manifest.payload.file)), attachments });
    }
    return deliveries;
  },
  async reset() {
    await server.bringUp();
    await fs.rm(server.dropDir, { recursive: true, force: true });
    await fs.mkdir(server.dropDir);
  },
  canReject: false,
  // Read when the suite checks the logs (after start): a line of the client's private key.
  get secrets() {
    return [readFileSync(server.clientKey, 'utf8').split('\n')[1]!];
  },
  async holdAfter(bytes) {
    let timer: NodeJS.Timeout | undefined;
    const { hold, handle } = createHold(bytes, () => {
      clearTimeout(timer);
      server.signalSessions('SIGCONT');
    });
    const watch = async () => {
      if (hold.released) return;
      if ((await fileSizes(server.dropDir)).some((size) => size >= bytes) && server.signalSessions('SIGSTOP') > 0) {
        hold.reached();
        return;
      }
      timer = setTimeout(() => void watch(), 10);
    };
    void watch();
    return handle;
  },
};

describeAdapterConformance({
  definition: sftpAdapter,
  config: () => server.adapterConfig(),
  counterpart,
});
