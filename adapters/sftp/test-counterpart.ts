// The sftp adapter's counterpart for tests: a real OpenSSH server (the Debian package openssh-server) on
// loopback, started as a child process with a generated host key, an authorized client key and a temp
// directory as the drop folder. Kept apart from the test so that a shared conformance suite can use it.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, promises as fs } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { closedPort } from '../../test/support/delivery';

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
    this.child = spawn(SSHD, ['-D', '-e', '-f', path.join(this.dir, 'sshd_config'), '-p', String(this.port)], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child.stderr!.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString();
    });
    await this.waitUntilListening();
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
    const child = this.child;
    this.child = undefined;
    if (child && child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    await fs.rm(this.dir, { recursive: true, force: true });
  }
}
