// Reads a multipart body (multipart/form-data or multipart/related, e.g. MTOM/XOP) as it streams in: the
// root part into memory (bounded: it is the document to parse), every other part straight into the
// payload store. Parser: multipasta — streaming with backpressure, any multipart subtype; busboy parses
// only multipart/form-data and skips parts without `Content-Disposition: form-data`, which MTOM parts lack.
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { parse as parseContentType } from 'content-type';
import { make as makeMultipart, type FileStream, type MultipartError, type PartInfo } from 'multipasta/node';
import { InputError } from '../errors';
import { readBounded, type ByteLimit, type StoredBlob } from '../store/payload-store';
import type { AttachmentCollector } from './attachment-collector';

/** One non-root part, stored. */
export interface StoredPart {
  /** Content-Disposition `name` ('' without one). */
  name: string;
  filename?: string;
  /** Content-ID without its angle brackets. */
  contentId?: string;
  mediaType: string;
  blob: StoredBlob;
}

export interface MultipartBody {
  root: { info: PartInfo; body: Buffer };
  parts: StoredPart[];
}

export interface MultipartOptions {
  /** Whether this part (0-based `index`) is the root; the first part for which it holds is. */
  isRoot(info: PartInfo, index: number, contentId: string | undefined): boolean;
  /** What the root part may weigh. */
  rootLimit: ByteLimit;
  collector: AttachmentCollector;
}

/** The media type and parameters of a request's Content-Type, or undefined if it has none or it is malformed. */
export function mediaTypeOf(headers: IncomingHttpHeaders): { type: string; parameters: Record<string, string> } | undefined {
  try {
    const parsed = parseContentType(headers['content-type'] ?? '');
    return { type: parsed.type.toLowerCase(), parameters: parsed.parameters };
  } catch {
    return undefined;
  }
}

export const stripAngles = (value: string): string => value.trim().replace(/^<(.*)>$/, '$1');

const header = (info: PartInfo, name: string): string | undefined => {
  const value = info.headers[name];
  return Array.isArray(value) ? value[0] : value;
};

const describe = (error: MultipartError): string => {
  switch (error._tag) {
    case 'InvalidBoundary': return 'no boundary in the Content-Type';
    case 'BadHeaders': return 'malformed part headers';
    case 'InvalidDisposition': return 'a form-data part without a name';
    case 'ReachedLimit': return `limit reached (${error.limit})`;
    case 'EndNotReached': return 'the body ended before the closing boundary';
  }
};

/**
 * Parses `request` (its headers and body stream). Non-root parts are stored through the collector as they
 * arrive; on any failure the caller discards the collector. Throws InputError (`multipart-invalid` or a limit).
 */
export async function readMultipart(request: Readable & { headers: IncomingHttpHeaders }, options: MultipartOptions): Promise<MultipartBody> {
  const parser = makeMultipart({ headers: request.headers, isFile: () => true });
  let failure: InputError | undefined;
  parser.on('error', (error: MultipartError | Error) => {
    failure ??= error instanceof Error ? new InputError('multipart-invalid', 'the multipart body could not be read') : new InputError('multipart-invalid', describe(error));
  });
  const aborted = () => {
    failure ??= new InputError('empty-body', 'the request body was incomplete');
    parser.destroy();
  };
  request.on('error', aborted);
  request.on('close', () => {
    if ((request as { complete?: boolean }).complete === false) aborted();
  });
  request.pipe(parser);
  let root: MultipartBody['root'] | undefined;
  const parts: StoredPart[] = [];
  try {
    let index = 0;
    for await (const part of parser as AsyncIterable<FileStream>) {
      // The parser also emits its error on the part; the error reaches us through the parser.
      part.on('error', () => undefined);
      const contentIdHeader = header(part.info, 'content-id');
      const contentId = contentIdHeader === undefined ? undefined : stripAngles(contentIdHeader);
      if (!root && options.isRoot(part.info, index, contentId)) {
        root = { info: part.info, body: await readBounded(part, options.rootLimit) };
      } else {
        const blob = await options.collector.store(part, `part ${index + 1}`);
        parts.push({ name: part.info.name, filename: part.info.filename, contentId, mediaType: part.info.contentType, blob });
      }
      index += 1;
    }
  } catch (error) {
    request.unpipe(parser);
    parser.destroy();
    if (error instanceof InputError) throw error;
    throw failure ?? error;
  }
  if (failure) throw failure;
  if (!root) throw new InputError('multipart-invalid', 'the multipart body has no root part (the XML document)');
  return { root, parts };
}
