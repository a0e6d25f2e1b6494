// The sftp adapter's counterpart for tests: a real OpenSSH server (the Debian package openssh-server) on
// loopback, started as a child process with a generated host key, an authorized client key and a temp
// directory as the drop folder, and that drop folder as a conformance counterpart (dropFolderCounterpart).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, promises as fs, readdirSync, readFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { ConformanceCounterpart, ReceivedDelivery } from '../../src/testkit/conformance';
import { createHold } from '../../src/testkit/hold';
import { closedPort } from '../../test/support/delivery';
import type { Manifest } from './index';

const run = promisify(execFile);
export const SSHD = '/usr/sbin/sshd';

/** Generates an ed25519 key pair at `file` / `file.pub`; returns the public key's SHA-256 fingerprint. */
export async function generateKey(file: string, passphrase = ''): Promise<string> {
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', passphrase, '-C', 'antragsrouter-test', '-f', file]);
  const { stdout } = await run('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${file}.pub`]);
  return stdout.split(' ')[1]!;
}

export class OpenSshServer {
  readonly dir = mkdtempSync(path.join(tmpdir(), 'antragsrouter-sshd-'));
  /** The drop folder the back office polls. */
  readonly dropDir = path.join(this.dir, 'drop');
  readonly clientKey = path.join(this.dir, 'client_ed25519');
  readonly username = userInfo().username;
  port = 0;
  hostKeySha256 = '';
  private child?: ChildProcess;
  private stderr = '';

  /** Keys, config, then sshd -D; resolves once it accepts connections. Fails clearly without openssh-server. */
  async start(): Promise<void> {
    if (!existsSync(SSHD)) {
      throw new Error(`OpenSSH server not found at ${SSHD}: the sftp adapter tests need it (Debian: apt-get install -y openssh-server)`);
    }
    // sshd insists on its privilege separation directory when run as root.
    if (process.getuid?.() === 0) await fs.mkdir('/run/sshd', { recursive: true, mode: 0o755 });
    await fs.mkdir(this.dropDir);
    this.hostKeySha256 = await generateKey(path.join(this.dir, 'host_ed25519'));
    await generateKey(this.clientKey);
    await fs.copyFile(`${this.clientKey}.pub`, path.join(this.dir, 'authorized_keys'));
    this.port = await closedPort();
    const config = [
      `ListenAddress 127.0.0.1`,
      `HostKey ${path.join(this.dir, 'host_ed25519')}`,
      `PidFile ${path.join(this.dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${path.join(this.dir, 'authorized_keys')}`,
      'StrictModes no',
      'UsePAM no',
      'PasswordAuthentication yes',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin prohibit-password',
      'Subsystem sftp internal-sftp',
      'LogLevel ERROR',
    ].join('\n');
    await fs.writeFile(path.join(this.dir, 'sshd_config'), `${config}\n`);
    await this.bringUp();
  }

  /** Starts sshd (again after takeDown(): same port, keys, configuration and drop folder). */
  async bringUp(): Promise<void> {
    if (this.child) return;
    this.stderr = '';
    this.child = spawn(SSHD, ['-D', '-e', '-f', path.join(this.dir, 'sshd_config'), '-p', String(this.port)], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child.stderr!.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString();
    });
    await this.waitUntilListening();
  }

  /** Stops the listening sshd (sessions already open go on), keeping everything for bringUp(). */
  async takeDown(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child && child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
  }

  /**
   * Stops (SIGSTOP) or continues (SIGCONT) every session process of this sshd, i.e. the SFTP servers of open
   * connections: a stopped one reads nothing more, so its client is held by SSH flow control and TCP.
   */
  signalSessions(signal: 'SIGSTOP' | 'SIGCONT'): number {
    if (!this.child?.pid) return 0;
    const parents = new Map<number, number>();
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        // /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may hold spaces, so split after the last ')'.
        const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
        parents.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
      } catch {
        // the process ended meanwhile
      }
    }
    const sessions: number[] = [];
    const descend = (pid: number) => {
      for (const [child, parent] of parents) {
        if (parent === pid) {
          sessions.push(child);
          descend(child);
        }
      }
    };
    descend(this.child.pid);
    for (const pid of sessions) {
      try {
        process.kill(pid, signal);
      } catch {
        // the session ended meanwhile
      }
    }
    return sessions.length;
  }

  /** Adds another public key to authorized_keys (e.g. a passphrase-protected one). */
  async authorize(publicKeyFile: string): Promise<void> {
    await fs.appendFile(path.join(this.dir, 'authorized_keys'), await fs.readFile(publicKeyFile));
  }

  /** The adapter configuration that uploads here with the client key (given as a secret file reference). */
  adapterConfig(extra: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      host: '127.0.0.1', port: this.port, username: this.username, privateKey: { file: this.clientKey },
      hostKeySha256: [this.hostKeySha256], directory: this.dropDir, ...extra,
    };
  }

  /** The names now in the drop folder (including dot names). */
  async listing(): Promise<string[]> {
    return (await fs.readdir(this.dropDir)).sort();
  }

  private async waitUntilListening(): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (this.child!.exitCode !== null) throw new Error(`sshd exited with ${this.child!.exitCode}: ${this.stderr.trim()}`);
      const up = await new Promise<boolean>((resolve) => {
        const socket = tcpConnect(this.port, '127.0.0.1', () => {
          socket.destroy();
          resolve(true);
        });
        socket.on('error', () => resolve(false));
      });
      if (up) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`sshd did not listen on port ${this.port} within 10 s: ${this.stderr.trim()}`);
  }

  async stop(): Promise<void> {
    await this.takeDown();
    await fs.rm(this.dir, { recursive: true, force: true });
  }
}

/** Sizes of all files under `dir`, dot directories (uploads in progress) included. */
async function fileSizes(dir: string): Promise<number[]> {
  const entries = await fs.readdir(dir, { withFileTypes: true, recursive: true }).catch(() => []);
  return Promise.all(entries.filter((e) => e.isFile()).map((e) => fs.stat(path.join(e.parentPath, e.name)).then((s) => s.size, () => 0)));
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/**
 * The server's drop folder as a conformance counterpart (src/testkit/conformance.ts), read as the back
 * office's import would: every complete directory (no dot name) with its manifest, files hashed from disk.
 * fail → the drop folder is gone (e.g. an unmounted share: try later); down → sshd stops listening and comes
 * back on the same port; holdAfter → the SFTP session processes are stopped (SIGSTOP) once an upload has
 * written that much, so the adapter is held by SSH flow control.
 *
 * No 'reject': an SFTP server has no answer that refuses one delivery for good. Permission denied or a
 * missing directory says something about the server's set-up, which an operator fixes, and then the
 * waiting deliveries must go through (the adapter treats them as retryable, as it does refused logins).
 * The adapter's one permanent refusal, a directory of the same name from another delivery
 * (sftp-name-conflict), is tested in sftp.test.ts.
 */
export function dropFolderCounterpart(server: OpenSshServer): ConformanceCounterpart {
  return {
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
}
