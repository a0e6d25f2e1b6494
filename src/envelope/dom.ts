// Builds the DOM (@xmldom/xmldom) for XPath, only for documents that already passed the strict gate.
import { DOMParser, type Document } from '@xmldom/xmldom';
import { InputError } from '../errors';

/**
 * Parses text that passed `inspectXml`. Any warning or error from xmldom is still fatal: defence in depth,
 * so that a document the gate let through can never be half-parsed.
 */
export function parseDom(text: string): Document {
  const parser = new DOMParser({
    onError: (level, message) => {
      throw new InputError('xml-not-well-formed', `${level}: ${message.split('\n')[0]}`);
    },
  });
  try {
    return parser.parseFromString(text, 'application/xml');
  } catch (error) {
    // xmldom wraps what onError throws in a ParseError; surface our own error.
    const cause = (error as { cause?: unknown }).cause;
    if (cause instanceof InputError) throw cause;
    if (error instanceof InputError) throw error;
    throw new InputError('xml-not-well-formed', (error as Error).message.split('\n')[0] ?? 'unparseable');
  }
}
