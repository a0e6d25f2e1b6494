// Turns the raw request bytes into text, honouring the XML declaration's encoding; invalid bytes are refused.
import { InputError } from '../errors';

const DECLARED_ENCODING = /^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']/;

/** Decodes an XML document. UTF-8 (with or without BOM) unless the declaration names another encoding. */
export function decodeXml(body: Buffer): string {
  if (body.length === 0) throw new InputError('empty-body', 'the request body is empty');
  const head = body.subarray(0, 200).toString('latin1');
  const declared = DECLARED_ENCODING.exec(head)?.[1]?.toLowerCase() ?? 'utf-8';
  let decoder: TextDecoder;
  try {
    decoder = new TextDecoder(declared, { fatal: true });
  } catch {
    throw new InputError('xml-not-well-formed', `unsupported encoding "${declared}" in the XML declaration`);
  }
  try {
    return decoder.decode(body);
  } catch {
    throw new InputError('xml-not-well-formed', `the body is not valid ${declared}`);
  }
}
