// The email adapter against a real SMTP server on loopback (smtp-server, STARTTLS, login): what arrives
// (read back with mailparser), idempotent Message-IDs, no header injection from facts or file names,
// SMTP failure classification, check; and S/MIME that standard tools read: `openssl cms -decrypt` with
// the back office's key, `openssl cms -verify` / `openssl smime -verify` with the router's certificate.
import { readFileSync } from 'node:fs';
import { simpleParser, type ParsedMail } from 'mailparser';
import forge from 'node-forge';
import type { Adapter } from '../../src/deliver/adapter';
import { SecretMissingError } from '../../src/config/secret';
import { attachmentOf, binary, brokenAttachment, closedPort, deliveryRequest, silentLog } from '../../test/support/delivery';
import emailAdapter, { messageIdFor } from './index';
import { OpenSsl, SmtpBackOffice } from './test-counterpart';

const openssl = new OpenSsl();
let serverTls: { cert: string; key: string };
let backOffice: SmtpBackOffice;
const adapters: Adapter[] = [];

beforeAll(async () => {
  serverTls = await openssl.certificate('localhost', { dns: 'localhost' });
  process.env.TEST_SMTP_PASSWORD = 'smtp-s3cret';
});
afterAll(async () => {
  delete process.env.TEST_SMTP_PASSWORD;
  await openssl.remove();
});

beforeEach(async () => {
  backOffice = new SmtpBackOffice({ tls: { key: readFileSync(serverTls.key), cert: readFileSync(serverTls.cert) }, users: { antragsrouter: 'smtp-s3cret' } });
  await backOffice.start();
});
afterEach(async () => {
  await Promise.all(adapters.splice(0).map((adapter) => adapter.close()));
  await backOffice.stop();
});

const baseConfig = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  host: '127.0.0.1',
  port: backOffice.port,
  tls: { caFile: serverTls.cert, servername: 'localhost' },
  auth: { user: 'antragsrouter', password: { env: 'TEST_SMTP_PASSWORD' } },
  from: 'antragsrouter@muenchen.example',
  to: ['lbk-eingang@muenchen.example'],
  timeoutMs: 5000,
  ...extra,
});

async function adapterFor(config: Record<string, unknown>): Promise<Adapter> {
  const adapter = emailAdapter.create(emailAdapter.configSchema.parse(config), { target: 'bo-mail', log: silentLog });
  await adapter.connect();
  adapters.push(adapter);
  return adapter;
}

const attachmentBytes = (mail: ParsedMail, filename: string) => mail.attachments.find((a) => a.filename === filename)?.content;

describe('plain mail', () => {
  it('payload and attachments as MIME parts, over STARTTLS with login; Message-ID from the idempotency key', async () => {
    const scan = binary(1_000_000);
    const plan = binary(3000);
    const request = deliveryRequest({ attachments: [attachmentOf('a1', 'Lageplan M\u00fcnchen.pdf', scan, 'application/pdf'), attachmentOf('a2', 'ansicht.png', plan, 'image/png')] });
    const adapter = await adapterFor(baseConfig());
    const messageId = messageIdFor(request.idempotencyKey, 'muenchen.example');
    expect(await adapter.deliver(request)).toEqual({ status: 'delivered', reference: messageId, detail: 'accepted for 1 recipient(s)' });

    expect(backOffice.received).toHaveLength(1);
    const [got] = backOffice.received;
    expect(got).toMatchObject({ from: 'antragsrouter@muenchen.example', to: ['lbk-eingang@muenchen.example'], secure: true, user: 'antragsrouter' });
    const mail = await backOffice.parsed(0);
    expect(mail.messageId).toBe(messageId);
    expect(mail.subject).toBe(`Antrag 0200 ${request.submissionId}`);
    expect(mail.headers.get('x-antragsrouter-submission-id')).toBe(request.submissionId);
    expect(mail.headers.get('x-antragsrouter-message-type')).toBe('0200');
    expect(mail.text).toContain(`Submission: ${request.submissionId}`);
    expect(mail.text).not.toContain('M\u00fcnchen');
    expect(mail.attachments.map((a) => [a.filename, a.contentType])).toEqual([
      [`antrag-${request.submissionId}.json`, 'application/json'],
      ['Lageplan M\u00fcnchen.pdf', 'application/pdf'],
      ['ansicht.png', 'image/png'],
    ]);
    expect(attachmentBytes(mail, `antrag-${request.submissionId}.json`)!.equals(request.payload.body)).toBe(true);
    expect(attachmentBytes(mail, 'Lageplan M\u00fcnchen.pdf')!.equals(scan)).toBe(true);
    expect(attachmentBytes(mail, 'ansicht.png')!.equals(plan)).toBe(true);
  });

  it('every attempt of a delivery carries the same Message-ID; another delivery another one', async () => {
    const adapter = await adapterFor(baseConfig());
    const request = deliveryRequest();
    await adapter.deliver(request);
    await adapter.deliver({ ...request, attempt: 2 });
    await adapter.deliver(deliveryRequest());
    const ids = await Promise.all([0, 1, 2].map(async (i) => (await backOffice.parsed(i)).messageId));
    expect(ids[0]).toBe(ids[1]);
    expect(ids[2]).not.toBe(ids[0]);
    expect(ids[0]).toMatch(/^<[0-9a-f]{40}\.antragsrouter@muenchen\.example>$/);
  });

  it('CR/LF in facts and file names cannot inject headers or recipients', async () => {
    const adapter = await adapterFor(baseConfig({ subject: 'Antrag {messageType} {tenant}' }));
    const request = deliveryRequest({
      facts: { messageType: '0200\r\nBcc: evil@attacker.example\r\nX-Evil: 1', tenant: '09162000\nCc: evil@attacker.example' },
      attachments: [attachmentOf('a1', 'plan\r\nBcc: evil@attacker.example\r\n.pdf', binary(100), 'application/pdf')],
    });
    expect((await adapter.deliver(request)).status).toBe('delivered');
    const [got] = backOffice.received;
    expect(got!.to).toEqual(['lbk-eingang@muenchen.example']);
    const headerBlock = got!.raw.toString('latin1').split('\r\n\r\n')[0]!;
    expect(headerBlock).not.toMatch(/^(Bcc|Cc|X-Evil):/im);
    const mail = await backOffice.parsed(0);
    expect(mail.subject).toBe('Antrag 0200 Bcc: evil@attacker.example X-Evil: 1 09162000 Cc: evil@attacker.example');
    expect(mail.headers.has('bcc')).toBe(false);
    expect(mail.headers.has('cc')).toBe(false);
    expect(mail.headers.has('x-evil')).toBe(false);
    expect(mail.headers.get('x-antragsrouter-message-type')).toBe('0200 Bcc: evil@attacker.example X-Evil: 1');
    expect(mail.attachments[1]!.filename).toBe('plan Bcc: evil@attacker.example .pdf');
  });

  it('an attachment stream that breaks is retryable and nothing is accepted', async () => {
    const broken = brokenAttachment('a1', 'scan.pdf', binary(100_000));
    const adapter = await adapterFor(baseConfig());
    expect(await adapter.deliver(deliveryRequest({ attachments: [broken] }))).toEqual({ status: 'retryable', reason: 'attachment-read-failed', detail: 'an attachment stream failed while sending; nothing was accepted' });
    expect(backOffice.received).toEqual([]);
  });
});

describe('lifecycle', () => {
  it('sequential deliveries share one pooled connection; close ends it', async () => {
    const adapter = await adapterFor(baseConfig());
    for (let i = 0; i < 3; i += 1) expect((await adapter.deliver(deliveryRequest())).status).toBe('delivered');
    expect(backOffice.connectionsOpened).toBe(1);
    expect(backOffice.openConnections()).toBe(1);
    await adapter.close();
    for (const deadline = Date.now() + 5000; backOffice.openConnections() > 0 && Date.now() < deadline;) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(backOffice.openConnections()).toBe(0);
  });
});

describe('SMTP failures', () => {
  it.each([
    ['rcpt', 450, { status: 'retryable', reason: 'smtp-temporary', detail: 'SMTP 450 after RCPT' }],
    ['data', 452, { status: 'retryable', reason: 'smtp-temporary', detail: 'SMTP 452 after DATA' }],
    ['rcpt', 550, { status: 'rejected', reason: 'smtp-rejected', detail: 'SMTP 550 after RCPT' }],
    ['mail', 553, { status: 'rejected', reason: 'smtp-rejected', detail: 'SMTP 553 after MAIL' }],
    ['data', 554, { status: 'rejected', reason: 'smtp-rejected', detail: 'SMTP 554 after DATA' }],
  ] as const)('%s answered %i', async (stage, code, expected) => {
    backOffice.failure = { stage, code };
    const adapter = await adapterFor(baseConfig());
    expect(await adapter.deliver(deliveryRequest())).toEqual(expected);
    backOffice.failure = undefined;
    expect((await adapter.deliver(deliveryRequest())).status).toBe('delivered');
  });

  it('one of two recipients refused: delivered to the other, the refusal in the detail', async () => {
    backOffice.failure = { stage: 'rcpt', code: 550, address: 'alt@muenchen.example' };
    const adapter = await adapterFor(baseConfig({ to: ['lbk-eingang@muenchen.example', 'alt@muenchen.example'] }));
    expect(await adapter.deliver(deliveryRequest())).toMatchObject({ status: 'delivered', detail: 'accepted for 1 recipient(s), refused for 1' });
    expect(backOffice.received.map((m) => m.to)).toEqual([['lbk-eingang@muenchen.example']]);
  });

  it('implicit TLS (SMTPS) with secure: true', async () => {
    const smtps = new SmtpBackOffice({ tls: { key: readFileSync(serverTls.key), cert: readFileSync(serverTls.cert) }, implicitTls: true, users: { antragsrouter: 'smtp-s3cret' } });
    await smtps.start();
    try {
      const adapter = await adapterFor(baseConfig({ port: smtps.port, secure: true }));
      expect((await adapter.deliver(deliveryRequest())).status).toBe('delivered');
      expect(smtps.received[0]).toMatchObject({ secure: true, user: 'antragsrouter' });
    } finally {
      await Promise.all(adapters.splice(0).map((adapter) => adapter.close()));
      await smtps.stop();
    }
  });

  it('a wrong password is retryable smtp-auth-failed, never shown; check says so', async () => {
    process.env.TEST_SMTP_WRONG = 'falsch-s3cret';
    const adapter = await adapterFor(baseConfig({ auth: { user: 'antragsrouter', password: { env: 'TEST_SMTP_WRONG' } } }));
    const outcome = await adapter.deliver(deliveryRequest());
    expect(outcome).toEqual({ status: 'retryable', reason: 'smtp-auth-failed', detail: 'SMTP login refused (535)' });
    const health = await adapter.check();
    expect(health).toEqual({ ok: false, detail: 'smtp-auth-failed: SMTP login refused (535)' });
    expect(JSON.stringify([outcome, health])).not.toContain('falsch-s3cret');
    delete process.env.TEST_SMTP_WRONG;
  });

  it('no server listening is a retryable network-error; check not ok', async () => {
    const adapter = await adapterFor(baseConfig({ port: await closedPort() }));
    expect(await adapter.deliver(deliveryRequest())).toEqual({ status: 'retryable', reason: 'network-error', detail: 'SMTP connection failed (ESOCKET)' });
    expect(await adapter.check()).toEqual({ ok: false, detail: 'network-error: SMTP connection failed (ESOCKET)' });
  });

  it('a server certificate from an unknown CA is refused (retryable), nothing sent', async () => {
    const adapter = await adapterFor(baseConfig({ tls: {} }));
    expect(await adapter.deliver(deliveryRequest())).toMatchObject({ status: 'retryable', reason: 'network-error', detail: 'SMTP connection failed (ESOCKET)' });
    expect(backOffice.received).toEqual([]);
  });

  it('a server without STARTTLS is refused while requireTLS holds (the default)', async () => {
    const plainServer = new SmtpBackOffice();
    await plainServer.start();
    try {
      const adapter = await adapterFor(baseConfig({ port: plainServer.port, auth: undefined }));
      const outcome = await adapter.deliver(deliveryRequest());
      expect(outcome).toMatchObject({ status: 'retryable', reason: 'network-error', detail: expect.stringMatching(/^TLS could not be established \(ETLS/) });
      expect(plainServer.received).toEqual([]);
      const optional = await adapterFor(baseConfig({ port: plainServer.port, auth: undefined, requireTLS: false }));
      expect((await optional.deliver(deliveryRequest())).status).toBe('delivered');
      expect(plainServer.received[0]!.secure).toBe(false);
    } finally {
      await Promise.all(adapters.splice(0).map((adapter) => adapter.close()));
      await plainServer.stop();
    }
  });

  it('a missing password secret fails connect, naming the variable only', async () => {
    const adapter = emailAdapter.create(emailAdapter.configSchema.parse(baseConfig({ auth: { user: 'u', password: { env: 'TEST_SMTP_UNSET' } } })), { target: 't', log: silentLog });
    await expect(adapter.connect()).rejects.toThrow(new SecretMissingError({ env: 'TEST_SMTP_UNSET' }, 'is not set'));
  });

  it('check is ok when the server takes connection, STARTTLS and login', async () => {
    const adapter = await adapterFor(baseConfig());
    expect(await adapter.check()).toEqual({ ok: true, detail: `SMTP server 127.0.0.1:${backOffice.port} accepted the connection and login` });
  });
});

describe('S/MIME', () => {
  let backOfficeCert: { cert: string; key: string };
  let routerCert: { cert: string; key: string };
  let strangerCert: { cert: string; key: string };

  beforeAll(async () => {
    [backOfficeCert, routerCert, strangerCert] = await Promise.all([
      openssl.certificate('lbk-eingang', { email: 'lbk-eingang@muenchen.example' }),
      openssl.certificate('antragsrouter', { email: 'antragsrouter@muenchen.example' }),
      openssl.certificate('stranger', { email: 'stranger@example.org' }),
    ]);
  });

  const smimeConfig = (smime: Record<string, unknown>) => baseConfig({ smime });
  const signing = () => ({ signingCertificateFile: routerCert.cert, signingKey: { file: routerCert.key } });

  it('signed and encrypted: openssl decrypts with the back office key, verifies the router signature, attachments byte-identical', async () => {
    const scan = binary(400_000);
    const request = deliveryRequest({ attachments: [attachmentOf('a1', 'scan.tif', scan, 'image/tiff')] });
    const adapter = await adapterFor(smimeConfig({ recipientCertificateFile: backOfficeCert.cert, ...signing() }));
    expect(await adapter.deliver(request)).toMatchObject({ status: 'delivered', reference: messageIdFor(request.idempotencyKey, 'muenchen.example') });

    const { raw } = backOffice.received[0]!;
    const outer = await simpleParser(raw);
    expect(outer.messageId).toBe(messageIdFor(request.idempotencyKey, 'muenchen.example'));
    expect(outer.subject).toBe(`Antrag 0200 ${request.submissionId}`);
    expect(outer.headers.get('content-type')).toMatchObject({ value: 'application/pkcs7-mime', params: { 'smime-type': 'enveloped-data' } });
    expect(raw.includes(request.payload.body)).toBe(false);

    const decrypted = await openssl.decrypt(raw, backOfficeCert);
    expect(decrypted.toString('latin1')).toMatch(/^Content-Type: multipart\/signed; protocol="application\/pkcs7-signature";/);
    for (const tool of ['cms', 'smime'] as const) {
      const content = await simpleParser(await openssl.verify(decrypted, routerCert.cert, tool));
      expect(content.attachments.map((a) => a.filename)).toEqual([`antrag-${request.submissionId}.json`, 'scan.tif']);
      expect(attachmentBytes(content, `antrag-${request.submissionId}.json`)!.equals(request.payload.body)).toBe(true);
      expect(attachmentBytes(content, 'scan.tif')!.equals(scan)).toBe(true);
    }
    await expect(openssl.verify(decrypted, strangerCert.cert)).rejects.toThrow();
    await expect(openssl.decrypt(raw, strangerCert)).rejects.toThrow();
  });

  it('encrypted only', async () => {
    const plan = binary(5000);
    const adapter = await adapterFor(smimeConfig({ recipientCertificateFile: backOfficeCert.cert }));
    expect((await adapter.deliver(deliveryRequest({ attachments: [attachmentOf('a1', 'plan.pdf', plan, 'application/pdf')] }))).status).toBe('delivered');
    const content = await simpleParser(await openssl.decrypt(backOffice.received[0]!.raw, backOfficeCert));
    expect(attachmentBytes(content, 'plan.pdf')!.equals(plan)).toBe(true);
  });

  it('signed only: verifies as received, and a changed byte breaks the signature', async () => {
    const request = deliveryRequest();
    const adapter = await adapterFor(smimeConfig(signing()));
    expect((await adapter.deliver(request)).status).toBe('delivered');
    const { raw } = backOffice.received[0]!;
    const content = await simpleParser(await openssl.verify(raw, routerCert.cert, 'smime'));
    expect(attachmentBytes(content, `antrag-${request.submissionId}.json`)!.equals(request.payload.body)).toBe(true);
    const tampered = Buffer.from(raw.toString('latin1').replace('Submission: ', 'Submissi0n: '), 'latin1');
    expect(tampered.equals(raw)).toBe(false);
    await expect(openssl.verify(tampered, routerCert.cert)).rejects.toThrow();
  });

  it('a passphrase-protected signing key (PKCS#8, from a file reference) with its passphrase from the environment', async () => {
    const protectedCert = await openssl.certificate('router-protected', { email: 'antragsrouter@muenchen.example', passphrase: 'geheimer-satz' });
    process.env.TEST_SMIME_PASSPHRASE = 'geheimer-satz';
    const adapter = await adapterFor(smimeConfig({ signingCertificateFile: protectedCert.cert, signingKey: { file: protectedCert.key }, signingKeyPassphrase: { env: 'TEST_SMIME_PASSPHRASE' } }));
    expect((await adapter.deliver(deliveryRequest())).status).toBe('delivered');
    await openssl.verify(backOffice.received[0]!.raw, protectedCert.cert);
    process.env.TEST_SMIME_PASSPHRASE = 'falsch';
    const wrong = emailAdapter.create(emailAdapter.configSchema.parse(smimeConfig({ signingCertificateFile: protectedCert.cert, signingKey: { file: protectedCert.key }, signingKeyPassphrase: { env: 'TEST_SMIME_PASSPHRASE' } })), { target: 't', log: silentLog });
    await expect(wrong.connect()).rejects.toThrow('smime.signingKey: cannot read the RSA private key (wrong passphrase?)');
    delete process.env.TEST_SMIME_PASSPHRASE;
  });

  it('check is not ok once the back office certificate has expired', async () => {
    const keys = forge.pki.rsa.generateKeyPair({ bits: 1024, e: 0x10001 });
    const certificate = forge.pki.createCertificate();
    certificate.publicKey = keys.publicKey;
    certificate.serialNumber = '01';
    certificate.validity.notBefore = new Date(Date.now() - 3 * 86_400_000);
    certificate.validity.notAfter = new Date(Date.now() - 86_400_000);
    certificate.setSubject([{ name: 'commonName', value: 'expired' }]);
    certificate.setIssuer([{ name: 'commonName', value: 'expired' }]);
    certificate.sign(keys.privateKey, forge.md.sha256.create());
    const file = await openssl.file(Buffer.from(forge.pki.certificateToPem(certificate)));
    const adapter = await adapterFor(smimeConfig({ recipientCertificateFile: file }));
    expect(await adapter.check()).toEqual({ ok: false, detail: 'S/MIME recipient certificate expired' });
    expect(await (await adapterFor(smimeConfig({ recipientCertificateFile: backOfficeCert.cert }))).check()).toMatchObject({ ok: true });
  });

  it('more than maxBytes is rejected before anything is sent', async () => {
    const adapter = await adapterFor(smimeConfig({ recipientCertificateFile: backOfficeCert.cert, maxBytes: 10_000 }));
    const outcome = await adapter.deliver(deliveryRequest({ attachments: [attachmentOf('a1', 'a.pdf', binary(6000)), attachmentOf('a2', 'b.pdf', binary(6000))] }));
    expect(outcome).toEqual({ status: 'rejected', reason: 'attachment-too-large', detail: 'attachment a2 exceeds the limit of 10000 bytes (S/MIME maxBytes)' });
    expect(backOffice.received).toEqual([]);
  });

  it('an unreadable certificate fails connect with the config key named', async () => {
    const adapter = emailAdapter.create(emailAdapter.configSchema.parse(smimeConfig({ recipientCertificateFile: routerCert.key })), { target: 't', log: silentLog });
    await expect(adapter.connect()).rejects.toThrow(/^smime\.recipientCertificateFile: not a PEM X\.509 certificate/);
  });
});

describe('configSchema', () => {
  it('fills defaults', () => {
    expect(emailAdapter.configSchema.parse({ host: 'smtp.bo.example', from: 'a@b.example', to: ['c@d.example'] })).toEqual({
      host: 'smtp.bo.example', port: 587, secure: false, requireTLS: true, tls: { rejectUnauthorized: true },
      from: 'a@b.example', to: ['c@d.example'], subject: 'Antrag {messageType} {submissionId}', payloadName: 'antrag-{submissionId}.{ext}',
      pool: { maxConnections: 2, maxMessages: 100 }, timeoutMs: 30_000,
    });
  });

  it('refuses plain-text passwords, bad addresses, half S/MIME signing set-ups', () => {
    const base = { host: 'h', from: 'a@b.example', to: ['c@d.example'] };
    expect(emailAdapter.configSchema.safeParse({ ...base, auth: { user: 'u', password: 'klartext' } }).success).toBe(false);
    expect(emailAdapter.configSchema.safeParse({ ...base, to: ['kein-at'] }).success).toBe(false);
    expect(emailAdapter.configSchema.safeParse({ ...base, smime: { signingCertificateFile: 'c.pem' } }).success).toBe(false);
    expect(emailAdapter.configSchema.safeParse({ ...base, smime: {} }).success).toBe(false);
  });
});
