// Decodes base64 text piece by piece (strictly: only the base64 alphabet, whitespace, padding at the end),
// so that an inline attachment of a SOAP envelope is streamed into the payload store without a second
// whole copy of it in memory.
import { InputError } from '../errors';

const ALPHABET = /^[A-Za-z0-9+/]*={0,2}$/;
const WHITESPACE = /\s+/g;
/** Characters decoded per piece (a multiple of 4 after whitespace is removed is carried over). */
const PIECE = 256 * 1024;

/** Yields the decoded bytes of `text` in pieces; throws InputError(`attachment-invalid`) naming `label`. */
export function* base64Chunks(text: string, label: string): Generator<Buffer> {
  const invalid = () => new InputError('attachment-invalid', `${label}: content is not valid base64`);
  let carry = '';
  let ended = false;
  for (let at = 0; at < text.length; at += PIECE) {
    const clean = carry + text.slice(at, at + PIECE).replace(WHITESPACE, '');
    if (ended ? clean !== '' : !ALPHABET.test(clean)) throw invalid();
    if (clean.includes('=')) ended = true;
    const usable = ended ? clean.length : clean.length - (clean.length % 4);
    if (usable % 4 !== 0) throw invalid();
    carry = clean.slice(usable);
    if (usable > 0) yield Buffer.from(clean.slice(0, usable), 'base64');
  }
  if (carry !== '') throw invalid();
}

/** Decodes base64 text whole (for the routing document, which is parsed whole), refusing more than `maxBytes`. */
export function decodeBase64(text: string, label: string, maxBytes: number): Buffer {
  const pieces: Buffer[] = [];
  let size = 0;
  for (const piece of base64Chunks(text, label)) {
    size += piece.length;
    if (size > maxBytes) throw new InputError('payload-too-large', `${label} exceeds the document limit of ${maxBytes} bytes`);
    pieces.push(piece);
  }
  return Buffer.concat(pieces, size);
}
