// The email adapter against the conformance suite, twice: plain MIME mail, and S/MIME signed and encrypted.
// The counterpart is a real SMTP server on loopback (smtp-server, STARTTLS with a certificate from a
// private CA, login), see test-counterpart.ts. What the back office "received" is read back as a mail
// client would: mailparser; for S/MIME first `openssl cms -decrypt` with the back office's key and
// `openssl cms -verify` against the router's certificate, so a delivery only counts if standard tools
// can open it. Modes: fail → 451 after DATA (try later), reject → 550 at RCPT (mailbox refused for good),
// down → the server stops (sessions ended with 421) and comes back on the same port.
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { simpleParser } from 'mailparser';
import { describeAdapterConformance, type ConformanceCounterpart, type ReceivedDelivery } from '../../src/testkit/conformance';
import emailAdapter from './index';
import { OpenSsl, SmtpBackOffice } from './test-counterpart';

const SMTP_PASSWORD = 'smtp-Geheimnis-4711';
process.env.CONFORMANCE_SMTP_PASSWORD = SMTP_PASSWORD;

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

interface SmimeParties {
  backOffice: { cert: string; key: string };
  router: { cert: string; key: string };
}

/** An SMTP back office as a conformance counterpart; with `smime`, mails are decrypted and verified before they count. */
class SmtpCounterpart implements ConformanceCounterpart {
  readonly openssl = new OpenSsl();
  office!: SmtpBackOffice;
  serverTls!: { cert: string; key: string };
  parties?: SmimeParties;
  private running = false;
  readonly secrets: string[] = [SMTP_PASSWORD];

  constructor(private readonly smime: boolean) {}

  async start(): Promise<void> {
    this.serverTls = await this.openssl.certificate('localhost', { dns: 'localhost' });
    if (this.smime) {
      const [backOffice, router] = await Promise.all([
        this.openssl.certificate('lbk-eingang', { email: 'lbk-eingang@muenchen.example' }),
        this.openssl.certificate('antragsrouter', { email: 'antragsrouter@muenchen.example' }),
      ]);
      this.parties = { backOffice, router };
      // A line of the router's private key: it must never be logged either.
      this.secrets.push(readFileSync(router.key, 'utf8').split('\n')[1]!);
    }
    this.office = new SmtpBackOffice({
      tls: { key: readFileSync(this.serverTls.key), cert: readFileSync(this.serverTls.cert) },
      users: { antragsrouter: SMTP_PASSWORD },
      closeTimeoutMs: 100,
    });
    await this.office.start();
    this.running = true;
  }

  async stop(): Promise<void> {
    if (this.running) await this.office.stop();
    this.running = false;
    await this.openssl.remove();
  }

  async behave(mode: 'accept' | 'fail' | 'reject' | 'down'): Promise<void> {
    if (mode === 'down') {
      if (this.running) await this.office.stop();
      this.running = false;
      return;
    }
    if (!this.running) {
      await this.office.start();
      this.running = true;
    }
    this.office.failure = mode === 'fail' ? { stage: 'data', code: 451 } : mode === 'reject' ? { stage: 'rcpt', code: 550 } : undefined;
  }

  async reset(): Promise<void> {
    this.office.received.length = 0;
    await this.behave('accept');
  }

  holdAfter(bytes: number) {
    return this.office.holdAfter(bytes);
  }

  /** The MIME entity as the back office's mail client shows it: decrypted and signature-checked for S/MIME. */
  private async content(raw: Buffer): Promise<Buffer> {
    if (!this.parties) return raw;
    const decrypted = await this.openssl.decrypt(raw, this.parties.backOffice);
    return this.openssl.verify(decrypted, this.parties.router.cert);
  }

  async received(): Promise<ReceivedDelivery[]> {
    const deliveries: ReceivedDelivery[] = [];
    for (const mail of this.office.received) {
      const outer = await simpleParser(mail.raw);
      const content = await simpleParser(await this.content(mail.raw));
      const submissionId = outer.headers.get('x-antragsrouter-submission-id');
      const payloadName = `antrag-${String(submissionId)}.xml`;
      const payload = content.attachments.find((a) => a.filename === payloadName);
      if (!payload) throw new Error(`a mail without the payload part ${payloadName}`);
      deliveries.push({
        key: outer.messageId,
        payload: payload.content,
        attachments: content.attachments.filter((a) => a !== payload).map((a) => ({ name: a.filename ?? '', size: a.content.length, sha256: sha256(a.content) })),
      });
    }
    return deliveries;
  }
}

const baseConfig = (counterpart: SmtpCounterpart) => ({
  host: '127.0.0.1',
  port: counterpart.office.port,
  tls: { caFile: counterpart.serverTls.cert, servername: 'localhost' },
  auth: { user: 'antragsrouter', password: { env: 'CONFORMANCE_SMTP_PASSWORD' } },
  from: 'antragsrouter@muenchen.example',
  to: ['lbk-eingang@muenchen.example'],
  timeoutMs: 5000,
});

const plain = new SmtpCounterpart(false);
describeAdapterConformance({
  label: 'plain MIME over STARTTLS with login',
  definition: emailAdapter,
  config: () => baseConfig(plain),
  counterpart: plain,
});

const smime = new SmtpCounterpart(true);
describeAdapterConformance({
  label: 'S/MIME signed and encrypted',
  definition: emailAdapter,
  config: () => ({
    ...baseConfig(smime),
    smime: {
      recipientCertificateFile: smime.parties!.backOffice.cert,
      signingCertificateFile: smime.parties!.router.cert,
      signingKey: { file: smime.parties!.router.key },
    },
  }),
  // S/MIME composes, signs and encrypts the whole message in memory (node-forge, bounded by smime.maxBytes,
  // default 20 MiB): with the suite's 20 MiB attachment that is over the default limit and takes about 20 s
  // of CPU. 8 MiB checks the same (names, sizes, SHA-256 after decryption) within the default limit.
  largeAttachmentBytes: 8 * 1024 * 1024,
  counterpart: {
    start: () => smime.start(),
    stop: () => smime.stop(),
    behave: (mode) => smime.behave(mode),
    received: () => smime.received(),
    reset: () => smime.reset(),
    // No holdAfter: S/MIME signs and encrypts the whole entity before sending, so the adapter reads every
    // attachment (bounded by smime.maxBytes, documented in the adapter's README) before the server sees a
    // byte; the read-ahead check applies to the plain run above, which streams.
    get secrets() {
      return smime.secrets;
    },
  },
});
