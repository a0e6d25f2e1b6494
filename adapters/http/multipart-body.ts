// The http adapter's body when a submission has attachments: multipart/form-data with the mapped payload as
// part `payload` and each attachment as a part `attachment` (file name, media type, SHA-256 in
// `Content-Digest`), streamed from the payload store part by part, never held whole in memory.
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { DeliveryAttachment, Payload } from '../../src/deliver/adapter';

/** `filename="…"` with an ASCII fallback and RFC 6266 / 8187 `filename*` for the name as sent. */
const dispositionFilename = (name: string): string => {
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, '_');
  return `filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
};

export function multipartBody(payload: Payload, attachments: readonly DeliveryAttachment[]): { contentType: string; body: Readable } {
  const boundary = `antragsrouter-${randomBytes(12).toString('hex')}`;
  const head = (headers: string[]) => Buffer.from(`--${boundary}\r\n${headers.join('\r\n')}\r\n\r\n`);
  async function* parts(): AsyncGenerator<Buffer> {
    yield head([`Content-Disposition: form-data; name="payload"; filename="payload.${payload.extension}"`, `Content-Type: ${payload.contentType}`]);
    yield payload.body;
    for (const attachment of attachments) {
      yield Buffer.from('\r\n');
      yield head([
        `Content-Disposition: form-data; name="attachment"; ${dispositionFilename(attachment.name)}`,
        `Content-Type: ${attachment.mediaType}`,
        `Content-Digest: sha-256=:${Buffer.from(attachment.sha256, 'hex').toString('base64')}:`,
      ]);
      for await (const chunk of await attachment.open()) yield chunk as Buffer;
    }
    yield Buffer.from(`\r\n--${boundary}--\r\n`);
  }
  return { contentType: `multipart/form-data; boundary=${boundary}`, body: Readable.from(parts(), { objectMode: false }) };
}
