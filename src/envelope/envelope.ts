// The envelope of a submission: the strict gate and XÖV header at intake, configured XPath facts on the DOM.
import { createHash } from 'node:crypto';
import type { Document } from '@xmldom/xmldom';
import { decodeXml } from './decode';
import { isMyForm, readMyFormFacts, transactionFacts } from './intelliform-form';
import { inspectXml, type XmlLimits } from './xml-gate';
import { readXoevFacts, type HeaderOptions, type XoevFacts } from './xoev-header';
import { compileXPath, type Namespaces } from './xpath';

/** Flat routing facts: the XÖV facts plus configured ones. Keys and ids only, never personal content. */
export type Facts = Readonly<Record<string, string | boolean | undefined>>;

export interface CheckedMessage {
  text: string;
  facts: XoevFacts;
  /** Facts beyond the XÖV ones, e.g. the `transaction.*` attributes of an intelliForm `myForm` document. */
  extraFacts: Record<string, string>;
  elementCount: number;
}

/**
 * Intake's check of one message: decode, strict gate, then the XÖV header — or, for intelliForm's own
 * `myForm` form data, its transaction attributes. Throws InputError.
 */
export function checkMessage(body: Buffer, limits: XmlLimits, header: Omit<HeaderOptions, 'bodySha256'> = { requireXoevHeader: true }): CheckedMessage {
  const text = decodeXml(body);
  const outline = inspectXml(text, limits);
  const options = { ...header, bodySha256: () => createHash('sha256').update(body).digest('hex') };
  if (isMyForm(outline)) return { text, facts: readMyFormFacts(outline, options), extraFacts: transactionFacts(outline), elementCount: outline.elementCount };
  return { text, facts: readXoevFacts(outline, options), extraFacts: {}, elementCount: outline.elementCount };
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
