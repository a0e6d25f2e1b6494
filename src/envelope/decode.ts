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
  let text: string;
  try {
    text = decoder.decode(body);
  } catch {
    throw new InputError('xml-not-well-formed', `the body is not valid ${declared}`);
  }
  const forbidden = FORBIDDEN_CHARACTER.exec(text);
  if (forbidden) {
    const before = text.slice(0, forbidden.index);
    const line = before.split('\n').length;
    const column = forbidden.index - before.lastIndexOf('\n');
    const code = forbidden[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0');
    throw new InputError('xml-not-well-formed', `character U+${code} is not allowed in XML (line ${line}, column ${column})`);
  }
  return text;
}

/** Characters XML 1.0 does not allow anywhere (§2.2 Char): C0 controls but tab, LF, CR; U+FFFE, U+FFFF; lone surrogates. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const FORBIDDEN_CHARACTER = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
