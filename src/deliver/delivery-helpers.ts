// Small helpers shared by the built-in adapters: template values from a delivery request, filling a
// template with sanitised values, and reading an attachment stream into memory within a bound (for
// protocols that cannot stream: one AMQP message, one S/MIME envelope).
import type { Readable } from 'node:stream';
import type { DeliveryAttachment, DeliveryRequest } from './adapter';

/** The values a name/subject/routing-key template may use: ids, types and keys only, never content. */
export function templateValues(request: DeliveryRequest): Record<string, string | undefined> {
  const fact = (name: string) => (typeof request.facts[name] === 'string' ? (request.facts[name] as string) : undefined);
  return {
    submissionId: request.submissionId,
    target: request.target,
    ext: request.payload.extension,
    messageType: fact('messageType'),
    messageUuid: fact('messageUuid'),
    tenant: fact('tenant'),
    leistung: fact('leistung'),
  };
}

/** Replaces `{name}` placeholders; each inserted value goes through `clean` (unknown names give ''). */
export function fillTemplate(template: string, values: Record<string, string | undefined>, clean: (value: string) => string): string {
  return template.replace(/\{(\w+)\}/g, (_, key: string) => clean(values[key] ?? ''));
}

/** An attachment is larger than an adapter can carry; `detail` names its id and sizes only. */
export class AttachmentTooLargeError extends Error {
  constructor(readonly attachmentId: string, readonly limit: number) {
    super(`attachment ${attachmentId} exceeds the limit of ${limit} bytes`);
    this.name = 'AttachmentTooLargeError';
  }
}

/** Opening or reading an attachment's stream failed; `detail` names its id and the error code only. */
export class AttachmentReadError extends Error {
  constructor(readonly attachmentId: string, cause: unknown) {
    super(`reading attachment ${attachmentId} failed (${(cause as { code?: string }).code ?? 'error'})`, { cause });
    this.name = 'AttachmentReadError';
  }
}

/**
 * Reads one attachment into memory, refusing more than `limit` bytes (checked against the declared size
 * first, then while reading, so a wrong declaration cannot exhaust memory).
 */
export async function readAttachmentBounded(attachment: DeliveryAttachment, limit: number): Promise<Buffer> {
  if (attachment.size > limit) throw new AttachmentTooLargeError(attachment.id, limit);
  const chunks: Buffer[] = [];
  let total = 0;
  let stream: Readable | undefined;
  try {
    stream = await attachment.open();
    for await (const chunk of stream) {
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
      total += bytes.length;
      if (total > limit) throw new AttachmentTooLargeError(attachment.id, limit);
      chunks.push(bytes);
    }
  } catch (error) {
    throw error instanceof AttachmentTooLargeError ? error : new AttachmentReadError(attachment.id, error);
  } finally {
    stream?.destroy();
  }
  return Buffer.concat(chunks, total);
}
