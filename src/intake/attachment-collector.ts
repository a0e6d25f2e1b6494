// Collects one submission's attachments at intake: streams each into the payload store within the
// configured limits (count, per attachment, per submission), and deletes all of them again when the
// submission is refused, so that nothing stays half-stored.
import path from 'node:path';
import type { Readable } from 'node:stream';
import { InputError } from '../errors';
import { storeMetered, type PayloadStore, type StoredBlob } from '../store/payload-store';
import type { AttachmentRecord, AttachmentRole } from '../store/store';

export interface AttachmentLimits {
  maxSize: number;
  maxTotalSize: number;
  maxCount: number;
}

/** What the sender said about an attachment. */
export interface AttachmentMeta {
  id?: string;
  name?: string;
  mediaType?: string;
  role?: AttachmentRole;
}

// eslint-disable-next-line no-control-regex -- control characters are exactly what is removed
const CONTROL = /[\u0000-\u001f\u007f]/g;
const MEDIA_TYPE = /^[\w!#$&^.+-]+\/[\w!#$&^.+-]+$/;

/** A file name as sent, reduced to a safe base name: no directories, no control characters, at most 200 characters. */
export function safeFileName(name: string | undefined, fallback: string): string {
  const base = path.posix.basename((name ?? '').replace(/\\/g, '/')).replace(CONTROL, '').trim().slice(-200);
  return base === '' || base === '.' || base === '..' ? fallback : base;
}

export class AttachmentCollector {
  private readonly stored: string[] = [];
  private readonly ids = new Set<string>();
  private total = 0;
  private count = 0;

  constructor(private readonly payloads: PayloadStore, private readonly limits: AttachmentLimits) {}

  /**
   * Streams one attachment's bytes into the payload store; fails with `too-many-attachments`,
   * `attachment-limit-exceeded` or `submission-too-large` while the bytes arrive. `label` names it in errors.
   */
  async store(source: Readable, label: string): Promise<StoredBlob> {
    const { maxCount, maxSize, maxTotalSize } = this.limits;
    if (++this.count > maxCount) {
      source.destroy();
      throw new InputError('too-many-attachments', `more than ${maxCount} attachments`);
    }
    const remaining = maxTotalSize - this.total;
    const limit = remaining < maxSize
      ? { maxBytes: remaining, code: 'submission-too-large' as const, detail: `the attachments together exceed ${maxTotalSize} bytes (at ${label})` }
      : { maxBytes: maxSize, code: 'attachment-limit-exceeded' as const, detail: `${label} exceeds ${maxSize} bytes` };
    const blob = await storeMetered(this.payloads, source, limit);
    this.stored.push(blob.key);
    this.total += blob.size;
    return blob;
  }

  /** The reference the submission keeps: a unique id, a safe name, a plausible media type. */
  record(blob: StoredBlob, meta: AttachmentMeta): AttachmentRecord {
    const position = this.ids.size + 1;
    let id = meta.id?.trim() || `attachment-${position}`;
    for (let n = 2; this.ids.has(id); n += 1) id = `${meta.id?.trim() || 'attachment'}~${n}`;
    this.ids.add(id);
    const mediaType = meta.mediaType?.split(';')[0]?.trim().toLowerCase() ?? '';
    return {
      id,
      name: safeFileName(meta.name, `attachment-${position}`),
      mediaType: MEDIA_TYPE.test(mediaType) ? mediaType : 'application/octet-stream',
      size: blob.size,
      sha256: blob.sha256,
      key: blob.key,
      role: meta.role ?? 'attachment',
    };
  }

  /** Deletes stored blobs the submission will not reference (e.g. an MTOM part no attachment points to). */
  async release(keys: readonly string[]): Promise<void> {
    await this.payloads.delete(keys);
  }

  /** Deletes everything stored so far (the submission was refused). */
  async discard(): Promise<void> {
    await this.payloads.delete(this.stored);
  }
}
