// The envelope of a submission: the strict gate and XÖV header at intake, configured XPath facts on the DOM.
import { createHash } from 'node:crypto';
import type { Document } from '@xmldom/xmldom';
import { decodeXml } from './decode';
import { inspectXml, type XmlLimits, type XmlOutline } from './xml-gate';
import type { SchemaValidator } from './schema-validation';
import { readXoevFacts, type HeaderOptions, type XoevFacts } from './xoev-header';
import { compileXPath, type Namespaces } from './xpath';

/** Flat routing facts: the XÖV facts plus configured ones. Keys and ids only, never personal content. */
export type Facts = Readonly<Record<string, string | boolean | undefined>>;

export interface CheckedMessage {
  text: string;
  facts: XoevFacts;
  elementCount: number;
}

/** Intake's check of one message: decode, strict gate, XÖV header. Throws InputError. */
export function checkMessage(body: Buffer, limits: XmlLimits, header: Omit<HeaderOptions, 'bodySha256'> = { requireXoevHeader: true }): CheckedMessage {
  const text = decodeXml(body);
  const outline = inspectXml(text, limits);
  return { text, facts: headerFacts(body, outline, header), elementCount: outline.elementCount };
}

const headerFacts = (body: Buffer, outline: XmlOutline, header: Omit<HeaderOptions, 'bodySha256'>) =>
  readXoevFacts(outline, { ...header, bodySha256: () => createHash('sha256').update(body).digest('hex') });

/**
 * `checkMessage` with schema validation: decode, strict gate, then the XSD of the root's standard and
 * version (before the header is read, so a schema-invalid header is refused as `schema-invalid` naming
 * the element), then the XÖV header. Every intake calls this one function. Throws InputError.
 */
export async function checkAndValidate(body: Buffer, limits: XmlLimits, header: Omit<HeaderOptions, 'bodySha256'>, validator?: SchemaValidator): Promise<CheckedMessage> {
  const text = decodeXml(body);
  const outline = inspectXml(text, limits);
  if (validator) {
    const { root } = outline;
    await validator.checkSchema(body, { standard: root.attributes.standard ?? '', version: root.attributes.version ?? '', rootNamespace: root.namespace });
  }
  return { text, facts: headerFacts(body, outline, header), elementCount: outline.elementCount };
}

/** Configured facts compiled once: name → XPath(s) evaluated as string; the first non-empty one wins. */
export type FactExtractor = (document: Document, known: Facts) => Record<string, string | undefined>;

export function compileFacts(definitions: Record<string, string[]>, namespaces: Namespaces): FactExtractor {
  const compiled = Object.entries(definitions).map(([name, expressions]) => [name, expressions.map((e) => compileXPath(e, namespaces))] as const);
  return (document, known) => {
    const facts: Record<string, string | undefined> = {};
    for (const [name, expressions] of compiled) {
      // Facts defined earlier are visible to later ones as $name, like the XÖV facts ($reader, $messageType, ...).
      const variables = { ...known, ...facts };
      facts[name] = expressions.map((expression) => expression.string(document, variables).trim()).find((value) => value !== '');
    }
    return facts;
  };
}
