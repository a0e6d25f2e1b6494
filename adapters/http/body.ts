// Request bodies of the http adapter. `payload`: the mapped payload as it is (JSON or XML, as the mapping
// produced it). `multipart`: multipart/form-data with the payload as one part and every attachment as a
// part of its own, streamed from its store (form-data pipes the streams; nothing is buffered whole) with
// a known Content-Length and an RFC 9530 Content-Digest per attachment. `auto`: multipart only when the
// submission has attachments. form-data's FormData is a legacy stream (CombinedStream); it is piped into a
// PassThrough, a Readable that undici can send (with backpressure through to the attachment streams).
import { PassThrough, type Readable } from 'node:stream';
import FormData from 'form-data';
import { z } from 'zod';
import type { DeliveryRequest } from '../../src/deliver/adapter';

export const bodySchema = {
  body: z.enum(['auto', 'payload', 'multipart']).default('auto'),
  multipart: z.strictObject({
    /** Name of the part carrying the payload. */
    payloadField: z.string().min(1).default('payload'),
    /** File name of the payload part, without extension (the payload's extension is added). */
    payloadFileName: z.string().min(1).default('antrag'),
    /** Name of every attachment part. */
    attachmentField: z.string().min(1).default('attachments'),
  }).prefault({}),
};

/** The body settings alone (they are spread into the adapter's schema). */
export const bodyConfigSchema = z.strictObject(bodySchema);
export type BodyConfig = z.output<typeof bodyConfigSchema>;

export interface RequestBody {
  /** The payload bytes, or the multipart body as a stream. */
  data: Buffer | Readable;
  headers: Record<string, string>;
  /** Bytes to be sent. */
  length: number;
  /** Destroys attachment streams not (fully) sent, e.g. after a failed request. */
  release(): void;
}

/** Payload mode with attachments: the back office would silently lose them. */
export class AttachmentsNotSupported extends Error {}

/** An attachment's bytes could not be opened (store unreachable); a later attempt may succeed. */
export class AttachmentUnavailable extends Error {}

/** Builds a fresh body for one request (attachment streams are opened anew each time). */
export async function buildBody(request: DeliveryRequest, config: BodyConfig): Promise<RequestBody> {
  const multipart = config.body === 'multipart' || (config.body === 'auto' && request.attachments.length > 0);
  if (!multipart) {
    if (request.attachments.length) throw new AttachmentsNotSupported(`body "payload" cannot carry the submission's ${request.attachments.length} attachment(s); use "multipart" or "auto"`);
    const { body, contentType } = request.payload;
    return { data: body, headers: { 'Content-Type': contentType }, length: body.length, release: () => undefined };
  }
  const opened: Readable[] = [];
  const release = () => opened.forEach((stream) => stream.destroy());
  try {
    const form = new FormData();
    const { payload } = request;
    form.append(config.multipart.payloadField, payload.body, {
      filename: `${config.multipart.payloadFileName}.${payload.extension}`,
      contentType: payload.contentType,
      knownLength: payload.body.length,
    });
    for (const attachment of request.attachments) {
      const stream = await attachment.open().catch((error: unknown) => {
        throw new AttachmentUnavailable(`attachment ${attachment.id} cannot be opened (${(error as { code?: string }).code ?? (error as Error).name})`);
      });
      opened.push(stream);
      form.append(config.multipart.attachmentField, stream, {
        filename: attachment.name,
        contentType: attachment.mediaType,
        knownLength: attachment.size,
        header: { 'Content-Digest': `sha-256=:${Buffer.from(attachment.sha256, 'hex').toString('base64')}:` },
      });
    }
    const length = form.getLengthSync();
    const data = new PassThrough();
    opened.push(data);
    // An attachment stream failing mid-way fails the request rather than leaving it waiting for bytes.
    form.on('error', (error: Error) => data.destroy(error));
    form.pipe(data);
    return { data, headers: { ...form.getHeaders(), 'Content-Length': String(length) }, length, release };
  } catch (error) {
    release();
    throw error;
  }
}
