// The email adapter's counterpart for tests: a real SMTP server on loopback (the smtp-server package, with
// STARTTLS and login when asked), a reader for what arrived (mailparser), ways to make it refuse, and
// the openssl CLI for certificates, decryption and signature checks. Kept apart from the test so that a
// shared conformance suite can use it.
import { execFile } from 'node:child_process';
import { mkdtempSync, promises as fs } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer, type SMTPServerSession } from 'smtp-server';
import { createHold, pauseAtHold, type Hold } from '../../src/testkit/hold';

const execFileAsync = promisify(execFile);

export interface ReceivedMail {
  from: string;
  to: string[];
  raw: Buffer;
  /** Whether the session was upgraded to TLS. */
  secure: boolean;
  user?: string;
}

type Stage = 'mail' | 'rcpt' | 'data';

const smtpError = (code: number, message: string) => Object.assign(new Error(message), { responseCode: code });

export class SmtpBackOffice {
  readonly received: ReceivedMail[] = [];
  /** While set, the server answers this stage with this code (at `rcpt`: only for `address`, if given). */
  failure?: { stage: Stage; code: number; address?: string };
  /** SMTP connections accepted so far. */
  connectionsOpened = 0;
  private server?: SMTPServer;
  private hold?: Hold;
  /** Chosen by the first start(); a later start() (after stop()) listens on the same port again. */
  port = 0;

  /**
   * `tls`: STARTTLS with this key and certificate, or implicit TLS (SMTPS) with `implicitTls`.
   * `closeTimeoutMs`: how long stop() lets open sessions finish before it ends them with 421 (smtp-server's
   * default is 30 s; a test that takes the server down wants it gone at once).
   */
  constructor(private readonly options: { tls?: { key: Buffer; cert: Buffer }; implicitTls?: boolean; users?: Record<string, string>; closeTimeoutMs?: number } = {}) {}

  /**
   * Stops reading the next message's DATA after about `bytes` until release(): smtp-server then stops
   * reading the socket, so the client is held by TCP backpressure (as the conformance suite's holdAfter).
   */
  async holdAfter(bytes: number): Promise<{ reached: Promise<void>; release: () => void }> {
    const { hold, handle } = createHold(bytes, (released) => {
      if (this.hold === released) this.hold = undefined;
    });
    this.hold = hold;
    return handle;
  }

  async start(): Promise<number> {
    const fail = (stage: Stage, callback: (error?: Error) => void, address?: string) => {
      if (this.failure?.stage !== stage) return false;
      if (this.failure.address !== undefined && this.failure.address !== address) return false;
      callback(smtpError(this.failure.code, `test failure at ${stage}`));
      return true;
    };
    this.server = new SMTPServer({
      secure: this.options.implicitTls === true,
      key: this.options.tls?.key,
      cert: this.options.tls?.cert,
      disabledCommands: this.options.tls ? [] : ['STARTTLS'],
      authOptional: !this.options.users,
      authMethods: ['PLAIN', 'LOGIN'],
      allowInsecureAuth: false,
      logger: false,
      closeTimeout: this.options.closeTimeoutMs,
      onConnect: (_session, callback) => {
        this.connectionsOpened += 1;
        callback();
      },
      onAuth: (auth, _session, callback) => {
        if (this.options.users?.[auth.username ?? ''] === auth.password) callback(null, { user: auth.username });
        else callback(smtpError(535, 'authentication failed'));
      },
      onMailFrom: (_address, _session, callback) => fail('mail', callback) || callback(),
      onRcptTo: (address, _session, callback) => fail('rcpt', callback, address.address) || callback(),
      onData: (stream, session: SMTPServerSession, callback) => {
        const chunks: Buffer[] = [];
        stream.on('data', (chunk: Buffer) => chunks.push(chunk));
        pauseAtHold(this.hold, stream);
        stream.on('end', () => {
          if (fail('data', callback)) return;
          this.received.push({
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            to: session.envelope.rcptTo.map((r) => r.address),
            raw: Buffer.concat(chunks),
            secure: session.secure,
            user: session.user as string | undefined,
          });
          callback();
        });
      },
    });
    this.server.on('error', () => undefined);
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
    this.port = (this.server.server.address() as AddressInfo).port;
    return this.port;
  }

  /** SMTP connections open right now. */
  openConnections(): number {
    return (this.server as unknown as { connections: Set<unknown> }).connections.size;
  }

  /** The `index`th received message, parsed. */
  parsed(index: number): Promise<ParsedMail> {
    return simpleParser(this.received[index]!.raw);
  }

  async stop(): Promise<void> {
    if (this.server) await new Promise<void>((resolve) => this.server!.close(() => resolve()));
    this.server = undefined;
  }
}

/** openssl helpers on files in one temp directory. */
export class OpenSsl {
  readonly dir = mkdtempSync(path.join(tmpdir(), 'antragsrouter-smime-'));
  private count = 0;

  async run(args: string[], input?: Buffer): Promise<Buffer> {
    const child = execFileAsync('openssl', args, { encoding: 'buffer', maxBuffer: 256 * 1024 * 1024 });
    if (input) child.child.stdin!.end(input);
    const { stdout } = await child;
    return stdout;
  }

  /** A self-signed RSA certificate and key (PEM files, the key encrypted when a passphrase is given) for `name`. */
  async certificate(name: string, options: { email?: string; dns?: string; days?: number; passphrase?: string } = {}): Promise<{ cert: string; key: string }> {
    const cert = path.join(this.dir, `${name}.crt`);
    const key = path.join(this.dir, `${name}.key`);
    const san = [options.email ? `email:${options.email}` : undefined, options.dns ? `DNS:${options.dns},IP:127.0.0.1` : undefined].filter(Boolean).join(',');
    const keyProtection = options.passphrase ? ['-passout', `pass:${options.passphrase}`] : ['-nodes'];
    await this.run(['req', '-x509', '-newkey', 'rsa:2048', ...keyProtection, '-sha256', '-keyout', key, '-out', cert, '-days', String(options.days ?? 2),
      '-subj', `/CN=${name}${options.email ? `/emailAddress=${options.email}` : ''}`, ...(san ? ['-addext', `subjectAltName=${san}`] : [])]);
    return { cert, key };
  }

  /** A file in the temp directory holding `bytes`. */
  async file(bytes: Buffer): Promise<string> {
    const file = path.join(this.dir, `data-${(this.count += 1)}`);
    await fs.writeFile(file, bytes);
    return file;
  }

  /** `openssl cms -decrypt` of an S/MIME message with the recipient's certificate and key: the inner MIME entity. */
  async decrypt(message: Buffer, recipient: { cert: string; key: string }): Promise<Buffer> {
    return this.run(['cms', '-decrypt', '-in', await this.file(message), '-recip', recipient.cert, '-inkey', recipient.key]);
  }

  /** `openssl <cms|smime> -verify` against `caFile`: the signed content; throws when verification fails. */
  async verify(message: Buffer, caFile: string, tool: 'cms' | 'smime' = 'cms'): Promise<Buffer> {
    return this.run([tool, '-verify', '-in', await this.file(message), '-CAfile', caFile, '-purpose', 'any']);
  }

  async remove(): Promise<void> {
    await fs.rm(this.dir, { recursive: true, force: true });
  }
}
