// The `email` adapter: sends the mapped payload and the attachments as one e-mail over SMTP (nodemailer,
// pooled connections, STARTTLS or implicit TLS, login from secret references), optionally as S/MIME:
// signed with the router's certificate and/or encrypted to the back office's (see smime.ts).
//
// Idempotency: the Message-ID is derived from the idempotency key, so every attempt of a delivery sends
// the same Message-ID and a back office's mail import can drop a repeat. SMTP itself cannot.
// Outcomes: accepted → delivered; 4xx → retryable `smtp-temporary`; 5xx → rejected `smtp-rejected`;
// login refused → retryable `smtp-auth-failed` (credentials are the operator's to fix, not the
// message's fault); connection, TLS and timeout errors → retryable `network-error`.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import nodemailer from 'nodemailer';
import type { NodemailerError, Transporter } from 'nodemailer';
import { z } from 'zod';
import { defineAdapter, type DeliveryOutcome, type DeliveryRequest } from '../../src/deliver/adapter';
import { readSecret, secretRefSchema } from '../../src/config/secret';
import { AttachmentReadError, AttachmentTooLargeError, fillTemplate, readAttachmentBounded, templateValues } from '../../src/deliver/delivery-helpers';
import { fileNameFor } from '../file';
import { certificateFromPem, daysLeft, mimeNode, privateKeyFromPem, protect, type SmimeKeys } from './smime';

const smimeSchema = z.strictObject({
  /** PEM certificate of the back office: the message is encrypted to it (AES-256-CBC). */
  recipientCertificateFile: z.string().min(1).optional(),
  /** The router's own PEM certificate and RSA key: the message is signed (SHA-256). */
  signingCertificateFile: z.string().min(1).optional(),
  signingKey: secretRefSchema.optional(),
  signingKeyPassphrase: secretRefSchema.optional(),
  /** S/MIME needs the whole message in memory: payload and attachments together may not exceed this. */
  maxBytes: z.number().int().positive().max(256 * 1024 * 1024).default(20 * 1024 * 1024),
})
  .refine((s) => s.recipientCertificateFile !== undefined || s.signingCertificateFile !== undefined, 'S/MIME needs recipientCertificateFile (encrypt) or signingCertificateFile with signingKey (sign)')
  .refine((s) => (s.signingCertificateFile === undefined) === (s.signingKey === undefined), 'signingCertificateFile and signingKey go together');

const configSchema = z.strictObject({
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535).default(587),
  /** Implicit TLS (SMTPS, usually port 465). Otherwise STARTTLS, required unless `requireTLS: false`. */
  secure: z.boolean().default(false),
  requireTLS: z.boolean().default(true),
  tls: z.strictObject({
    /** PEM CA bundle for a server certificate from a private CA. */
    caFile: z.string().min(1).optional(),
    servername: z.string().min(1).optional(),
    rejectUnauthorized: z.boolean().default(true),
  }).default({ rejectUnauthorized: true }),
  auth: z.strictObject({ user: z.string().min(1), password: secretRefSchema }).optional(),
  from: z.email(),
  to: z.array(z.email()).min(1),
  /** Subject template: `{messageType}`, `{submissionId}`, `{target}`, `{tenant}`, `{leistung}`, `{messageUuid}`. */
  subject: z.string().min(1).default('Antrag {messageType} {submissionId}'),
  /** File name of the payload part; `{ext}` is the mapping's extension. */
  payloadName: z.string().min(1).default('antrag-{submissionId}.{ext}'),
  /** Domain of the generated Message-ID; default: the domain of `from`. */
  messageIdDomain: z.string().regex(/^[A-Za-z0-9.-]+$/).optional(),
  pool: z.strictObject({ maxConnections: z.number().int().min(1).max(50).default(2), maxMessages: z.number().int().min(1).default(100) }).default({ maxConnections: 2, maxMessages: 100 }),
  timeoutMs: z.number().int().min(100).max(600_000).default(30_000),
  smime: smimeSchema.optional(),
});

export type EmailAdapterConfig = z.output<typeof configSchema>;

/** Header values built from facts: control characters (CR, LF, …) can never start a new header line. */
export const headerSafe = (value: string): string => value.replace(/[\p{Cc}\u2028\u2029]+/gu, ' ').trim();

/** A stable Message-ID for an idempotency key (hashed: keys may hold characters not allowed there). */
export const messageIdFor = (idempotencyKey: string, domain: string): string =>
  `<${createHash('sha256').update(idempotencyKey).digest('hex').slice(0, 40)}.antragsrouter@${domain}>`;

function smtpFailure(error: NodemailerError): DeliveryOutcome {
  // TLS could not be set up (no STARTTLS offered, handshake failed): the server's or operator's to fix.
  if (error.code === 'ETLS' || error.code === 'EREQUIRETLS') return { status: 'retryable', reason: 'network-error', detail: `TLS could not be established (${error.code}${error.responseCode ? ` ${error.responseCode}` : ''})` };
  if (error.code === 'EAUTH' || error.code === 'ENOAUTH') return { status: 'retryable', reason: 'smtp-auth-failed', detail: `SMTP login refused${error.responseCode ? ` (${error.responseCode})` : ''}` };
  if (error.responseCode) {
    const detail = `SMTP ${error.responseCode}${error.command ? ` after ${error.command.split(' ')[0]}` : ''}`;
    if (error.permanent ?? (error.responseCode >= 500 && error.responseCode !== 503)) return { status: 'rejected', reason: 'smtp-rejected', detail };
    return { status: 'retryable', reason: 'smtp-temporary', detail };
  }
  return { status: 'retryable', reason: 'network-error', detail: `SMTP connection failed (${error.code ?? 'error'})` };
}

export default defineAdapter<EmailAdapterConfig>({
  name: 'email',
  summary: 'Send as e-mail over SMTP (nodemailer), optionally S/MIME signed and encrypted',
  configSchema,
  defaultConcurrency: 2,
  create(config) {
    let transporter: Transporter;
    let keys: SmimeKeys | undefined;
    const domain = config.messageIdDomain ?? config.from.split('@')[1]!;

    /** The text part: ids and counts only. */
    const textFor = (request: DeliveryRequest, payloadName: string, messageType: string) => [
      'antragsrouter delivery',
      `Submission: ${request.submissionId}`,
      `Message type: ${messageType}`,
      `Payload: ${payloadName} (${request.payload.body.length} bytes)`,
      `Attachments: ${request.attachments.length}`,
      '',
    ].join('\r\n');

    const headersFor = (request: DeliveryRequest, messageType: string) => ({
      'X-Antragsrouter-Submission-Id': headerSafe(request.submissionId),
      'X-Antragsrouter-Target': headerSafe(request.target),
      'X-Antragsrouter-Message-Type': messageType,
    });

    /** Plain: nodemailer composes the message, attachments streamed straight from the claim check. */
    async function sendPlain(request: DeliveryRequest, message: { subject: string; messageId: string; payloadName: string; messageType: string }) {
      const streams: Readable[] = [];
      try {
        const attachments = [{ filename: message.payloadName, content: request.payload.body, contentType: request.payload.contentType }];
        for (const attachment of request.attachments) {
          const stream = await attachment.open();
          streams.push(stream);
          attachments.push({ filename: headerSafe(attachment.name), content: stream as unknown as Buffer, contentType: attachment.mediaType });
        }
        return await transporter.sendMail({
          from: config.from,
          to: config.to,
          subject: message.subject,
          messageId: message.messageId,
          headers: headersFor(request, message.messageType),
          text: textFor(request, message.payloadName, message.messageType),
          attachments,
          disableFileAccess: true,
          disableUrlAccess: true,
        });
      } finally {
        for (const stream of streams) stream.destroy();
      }
    }

    /** S/MIME: the whole entity is composed in memory (bounded), protected, and sent as a raw message. */
    async function sendSmime(request: DeliveryRequest, message: { subject: string; messageId: string; payloadName: string; messageType: string }, smimeKeys: SmimeKeys, maxBytes: number) {
      const entity = mimeNode('multipart/mixed', { part: true });
      entity.createChild('text/plain; charset=utf-8').setContent(textFor(request, message.payloadName, message.messageType));
      entity.createChild(request.payload.contentType, { filename: message.payloadName }).setContent(request.payload.body);
      let budget = maxBytes - request.payload.body.length;
      if (budget < 0) throw new AttachmentTooLargeError('payload', maxBytes);
      for (const attachment of request.attachments) {
        const bytes = await readAttachmentBounded(attachment, budget).catch((error: unknown) => {
          throw error instanceof AttachmentTooLargeError ? new AttachmentTooLargeError(attachment.id, maxBytes) : error;
        });
        budget -= bytes.length;
        entity.createChild(attachment.mediaType, { filename: headerSafe(attachment.name) }).setContent(bytes);
      }
      const top = await protect(await entity.build(), smimeKeys);
      top.setHeader({ From: config.from, To: config.to.join(', '), Subject: message.subject, 'Message-ID': message.messageId, ...headersFor(request, message.messageType) });
      return transporter.sendMail({ envelope: { from: config.from, to: config.to }, raw: await top.build() });
    }

    return {
      async connect() {
        if (config.smime) {
          const smime = config.smime;
          keys = {};
          if (smime.recipientCertificateFile) keys.recipient = certificateFromPem(readFileSync(smime.recipientCertificateFile, 'utf8'), 'smime.recipientCertificateFile');
          if (smime.signingCertificateFile && smime.signingKey) {
            keys.signer = {
              certificate: certificateFromPem(readFileSync(smime.signingCertificateFile, 'utf8'), 'smime.signingCertificateFile'),
              key: privateKeyFromPem(readSecret(smime.signingKey), smime.signingKeyPassphrase ? readSecret(smime.signingKeyPassphrase) : undefined, 'smime.signingKey'),
            };
          }
        }
        transporter = nodemailer.createTransport({
          pool: true,
          host: config.host,
          port: config.port,
          secure: config.secure,
          requireTLS: !config.secure && config.requireTLS,
          ignoreTLS: false,
          auth: config.auth ? { user: config.auth.user, pass: readSecret(config.auth.password) } : undefined,
          tls: {
            ca: config.tls.caFile ? readFileSync(config.tls.caFile) : undefined,
            servername: config.tls.servername,
            rejectUnauthorized: config.tls.rejectUnauthorized,
            minVersion: 'TLSv1.2',
          },
          maxConnections: config.pool.maxConnections,
          maxMessages: config.pool.maxMessages,
          connectionTimeout: config.timeoutMs,
          greetingTimeout: config.timeoutMs,
          socketTimeout: config.timeoutMs,
          logger: false,
          debug: false,
        });
      },
      async deliver(request): Promise<DeliveryOutcome> {
        const values = templateValues(request);
        const messageType = headerSafe(values.messageType ?? '');
        let payloadName: string;
        try {
          payloadName = fileNameFor(config.payloadName, values);
        } catch (error) {
          return { status: 'rejected', reason: 'smtp-rejected', detail: (error as Error).message };
        }
        const message = {
          subject: headerSafe(fillTemplate(config.subject, values, headerSafe)),
          messageId: messageIdFor(request.idempotencyKey, domain),
          payloadName,
          messageType,
        };
        try {
          const info = keys && config.smime ? await sendSmime(request, message, keys, config.smime.maxBytes) : await sendPlain(request, message);
          const refused = info.rejected?.length ?? 0;
          return { status: 'delivered', reference: message.messageId, detail: `accepted for ${info.accepted?.length ?? 0} recipient(s)${refused ? `, refused for ${refused}` : ''}` };
        } catch (error) {
          if (error instanceof AttachmentTooLargeError) return { status: 'rejected', reason: 'attachment-too-large', detail: `${error.message} (S/MIME maxBytes)` };
          if (error instanceof AttachmentReadError) return { status: 'retryable', reason: 'attachment-read-failed', detail: error.message };
          if ((error as NodemailerError).code === 'ESTREAM') return { status: 'retryable', reason: 'attachment-read-failed', detail: 'an attachment stream failed while sending; nothing was accepted' };
          return smtpFailure(error as NodemailerError);
        }
      },
      async check() {
        for (const [what, certificate] of [['recipient', keys?.recipient], ['signing', keys?.signer?.certificate]] as const) {
          if (certificate && daysLeft(certificate) < 0) return { ok: false, detail: `S/MIME ${what} certificate expired` };
        }
        try {
          await transporter.verify();
          return { ok: true, detail: `SMTP server ${config.host}:${config.port} accepted the connection${config.auth ? ' and login' : ''}` };
        } catch (error) {
          const outcome = smtpFailure(error as NodemailerError);
          return { ok: false, detail: outcome.status === 'delivered' ? 'unexpected' : `${outcome.reason}: ${outcome.detail}` };
        }
      },
      async close() {
        transporter?.close();
      },
    };
  },
});
