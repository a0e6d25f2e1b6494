// The envelope of a submission: the strict gate and XÖV header at intake, configured XPath facts on the DOM.
import { createHash } from 'node:crypto';
import type { Document } from '@xmldom/xmldom';
import { decodeXml } from './decode';
import { isMyForm, readMyFormFacts, transactionFacts } from './intelliform-form';
import { inspectXml, type XmlLimits, type XmlOutline } from './xml-gate';
import type { SchemaValidator } from './schema-validation';
import { readXoevFacts, type HeaderOptions, type XoevFacts } from './xoev-header';
import { compileXPath, type Namespaces } from './xpath';
import { elementPath, type ElementPath } from './stream-path';
import type { TreeNode } from './element-tree';

/** Flat routing facts: the XÖV facts plus configured ones. Keys and ids only, never personal content. */
export type Facts = Readonly<Record<string, string | boolean | undefined>>;

export interface CheckedMessage {
  text: string;
  facts: XoevFacts;
  /** Facts beyond the XÖV ones, e.g. the `transaction.*` attributes of an intelliForm `myForm` document. */
  extraFacts: Record<string, string>;
  elementCount: number;
  /** The values of the `paths` asked for, read on the strict pass (see `FactExtractor.paths`). */
  pathValues: Array<string | undefined>;
  /** The element tree, built on the strict pass when asked for (see `CheckOptions.tree`). */
  tree?: TreeNode;
}

export interface CheckOptions {
  validator?: SchemaValidator;
  /** Plain element paths whose values the strict pass reads (see `FactExtractor.paths`). */
  paths?: readonly ElementPath[];
  /**
   * Build the element tree for mappings on the strict pass too (one tokenizer pass for both) — unless the
   * text holds NEL, LS or PS (see `gate`).
   */
  tree?: boolean;
}

/**
 * Intake's check of one message: decode, strict gate, then the XÖV header — or, for intelliForm's own
 * `myForm` form data, its transaction attributes. Throws InputError.
 */
export function checkMessage(body: Buffer, limits: XmlLimits, header: Omit<HeaderOptions, 'bodySha256'> = { requireXoevHeader: true }): CheckedMessage {
  const { text, outline } = gate(body, limits, {});
  return checked(body, text, outline, header);
}

/** Line ends xmldom (and so the element tree, which reads as the DOM does) honours beyond CR and LF. */
const MORE_LINE_ENDS = /[\u0085\u2028\u2029]/;

/**
 * Decode and strict gate. The gate reads XML 1.0, where NEL, LS and PS are ordinary characters (allowed in
 * text, refused inside tags); xmldom reads them as line ends. A document holding any of them gets no tree
 * on this pass: its mapping parses one at delivery (`parseElementTree`), with xmldom's line ends.
 */
function gate(body: Buffer, limits: XmlLimits, { paths = [], tree = false }: CheckOptions): { text: string; outline: XmlOutline } {
  const text = decodeXml(body);
  return { text, outline: inspectXml(text, limits, paths, tree && !MORE_LINE_ENDS.test(text)) };
}

function checked(body: Buffer, text: string, outline: XmlOutline, header: Omit<HeaderOptions, 'bodySha256'>): CheckedMessage {
  return { text, ...headerFacts(body, outline, header), elementCount: outline.elementCount, pathValues: outline.pathValues, tree: outline.tree };
}

/** The XÖV header's facts — or, for intelliForm's own `myForm` form data, those of its transaction attributes. */
function headerFacts(body: Buffer, outline: XmlOutline, header: Omit<HeaderOptions, 'bodySha256'>): Pick<CheckedMessage, 'facts' | 'extraFacts'> {
  const options = { ...header, bodySha256: () => createHash('sha256').update(body).digest('hex') };
  if (isMyForm(outline)) return { facts: readMyFormFacts(outline, options), extraFacts: transactionFacts(outline) };
  return { facts: readXoevFacts(outline, options), extraFacts: {} };
}

/**
 * `checkMessage` with schema validation: decode, strict gate, then the XSD of the root's standard and
 * version (before the header is read, so a schema-invalid header is refused as `schema-invalid` naming
 * the element), then the XÖV header. Every intake calls this one function. Throws InputError.
 */
export async function checkAndValidate(body: Buffer, limits: XmlLimits, header: Omit<HeaderOptions, 'bodySha256'>, options: CheckOptions = {}): Promise<CheckedMessage> {
  const { text, outline } = gate(body, limits, options);
  const { validator } = options;
  // intelliForm's `myForm` has no XSD: it is form data, not an XÖV message.
  if (validator && !isMyForm(outline)) {
    const { root } = outline;
    await validator.checkSchema(body, { standard: root.attributes.standard ?? '', version: root.attributes.version ?? '', rootNamespace: root.namespace });
  }
  return checked(body, text, outline, header);
}

/**
 * Configured facts compiled once: name → XPath(s) evaluated as string; the first non-empty one wins.
 * Expressions that are a plain element path are listed in `paths`: given their values from the intake's
 * streaming pass (`streamed`, in that order), the extractor needs no DOM for them, and parses the document
 * (`document()`) only for an expression it must evaluate.
 */
export interface FactExtractor {
  (document: () => Document, known: Facts, streamed?: ReadonlyArray<string | undefined>): Record<string, string | undefined>;
  readonly paths: readonly ElementPath[];
}

export function compileFacts(definitions: Record<string, string[]>, namespaces: Namespaces): FactExtractor {
  const paths: ElementPath[] = [];
  const compiled = Object.entries(definitions).map(([name, expressions]) => [name, expressions.map((e) => {
    const path = elementPath(e, namespaces);
    return { xpath: compileXPath(e, namespaces), path: path ? paths.push(path) - 1 : undefined };
  })] as const);
  const extract = (document: () => Document, known: Facts, streamed?: ReadonlyArray<string | undefined>) => {
    const facts: Record<string, string | undefined> = {};
    for (const [name, expressions] of compiled) {
      // Facts defined earlier are visible to later ones as $name, like the XÖV facts ($reader, $messageType, ...).
      const variables = { ...known, ...facts };
      facts[name] = undefined;
      for (const { xpath, path } of expressions) {
        const value = (streamed && path !== undefined ? streamed[path] ?? '' : xpath.string(document(), variables)).trim();
        if (value !== '') {
          facts[name] = value;
          break;
        }
      }
    }
    return facts;
  };
  return Object.assign(extract, { paths });
}
