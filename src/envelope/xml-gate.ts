// The hardened gate every XML document passes first: one strict streaming pass (sax) that refuses
// DOCTYPE/entity declarations, a second root, trailing content, excessive depth and size, and collects
// the XÖV header on the way. Why not xmldom alone: xmldom is lenient by design and accepts e.g. an
// unescaped '&' in text; a strict XML 1.0 tokenizer is the well-formedness check, xmldom builds the DOM
// for XPath only after this gate has passed.
import sax from 'sax';
import { InputError } from '../errors';
import { matchesPath, type ElementPath } from './stream-path';

export interface XmlLimits {
  /** Maximum element nesting depth. */
  maxDepth: number;
  /** Maximum number of elements in one document. */
  maxElements: number;
}

export const DEFAULT_XML_LIMITS: XmlLimits = { maxDepth: 64, maxElements: 250_000 };

/** What the gate saw of the document: root element, root attributes and header fields by path. */
export interface XmlOutline {
  root: {
    localName: string;
    namespace: string;
    attributes: Record<string, string>;
    /** Namespaced attributes of the root by `{namespace}local` (e.g. intelliForm's `t:*` transaction attributes). */
    qualifiedAttributes: Record<string, string>;
  };
  /** The root's first child whose local name starts with `nachrichtenkopf`, if any. */
  header?: {
    localName: string;
    namespace: string;
    /** Text of header descendants by local-name path below the header, e.g. `leser/kennung`. */
    fields: Map<string, string>;
    /** Attributes of header descendants by path and name, e.g. `identifikation.nachricht/nachrichtentyp@listURI`. */
    attributes: Map<string, string>;
    /** Local-name paths of all header descendants that occurred. */
    present: Set<string>;
  };
  elementCount: number;
  maxDepthSeen: number;
  /** Per path asked for: the string value of the first element it selects (undefined: none). */
  pathValues: Array<string | undefined>;
}

const HEADER = /^nachrichtenkopf(\.|$)/i;
const MAX_FIELD_CHARS = 1024;

/** Paths below the header whose text is collected; everything else in the header is skipped. */
const HEADER_TEXT_PATHS = new Set([
  'identifikation.nachricht/nachrichtenUUID',
  'identifikation.nachricht/nachrichtentyp/code',
  'identifikation.nachricht/nachrichtentyp/name',
  'identifikation.nachricht/erstellungszeitpunkt',
  'leser/kennung',
  'leser/verzeichnisdienst/code',
  'autor/kennung',
  'autor/verzeichnisdienst/code',
]);

/**
 * Runs the strict pass. Throws InputError with the position of the first problem. Answers `paths` (plain
 * element paths, see stream-path.ts) on the way, in `pathValues`.
 */
export function inspectXml(text: string, limits: XmlLimits = DEFAULT_XML_LIMITS, paths: readonly ElementPath[] = []): XmlOutline {
  // strictEntities: only XML's five predefined entities; without it sax accepts HTML ones such as &nbsp;
  // (the option is missing from @types/sax).
  const parser = sax.parser(true, { xmlns: true, position: true, trim: false, strictEntities: true } as sax.SAXOptions);
  let outline: XmlOutline | undefined;
  let failure: InputError | undefined;
  let depth = 0;
  let elementCount = 0;
  let maxDepthSeen = 0;
  let rootClosed = false;
  // Local-name path below the header while inside it; undefined outside.
  let headerPath: string[] | undefined;
  let headerDepth = -1;
  let collecting: { path: string; text: string } | undefined;
  // The open elements, only while paths are asked for; the values found and those being collected.
  const open: Array<{ namespace: string; localName: string }> = [];
  const pathValues: Array<string | undefined> = paths.map(() => undefined);
  const pathTexts: Array<{ index: number; depth: number; text: string }> = [];

  const where = () => `line ${parser.line + 1}, column ${parser.column + 1}`;
  const fail = (error: InputError): never => {
    failure ??= error;
    throw error;
  };

  parser.ondoctype = () => fail(new InputError('xml-doctype-forbidden', `DOCTYPE declaration at ${where()}; DTDs and entities are never processed`));
  parser.onopentag = (tag) => {
    const node = tag as sax.QualifiedTag;
    if (rootClosed) fail(new InputError('xml-multiple-roots', `second root element <${node.name}> at ${where()}`));
    depth += 1;
    elementCount += 1;
    if (depth > maxDepthSeen) maxDepthSeen = depth;
    if (depth > limits.maxDepth) fail(new InputError('xml-too-deep', `element nesting exceeds ${limits.maxDepth} levels at ${where()}`));
    if (elementCount > limits.maxElements) fail(new InputError('xml-too-many-elements', `more than ${limits.maxElements} elements`));
    if (paths.length) {
      open.push({ namespace: node.uri, localName: node.local });
      paths.forEach((path, index) => {
        if (pathValues[index] === undefined && path.length === depth && !pathTexts.some((t) => t.index === index) && matchesPath(path, open)) {
          pathTexts.push({ index, depth, text: '' });
        }
      });
    }
    if (depth === 1) {
      const attributes: Record<string, string> = {};
      const qualifiedAttributes: Record<string, string> = {};
      for (const attr of Object.values(node.attributes)) {
        if (!attr.prefix || attr.uri === '') attributes[attr.local] = attr.value;
        else if (attr.prefix !== 'xmlns') qualifiedAttributes[`{${attr.uri}}${attr.local}`] = attr.value.slice(0, MAX_FIELD_CHARS);
      }
      outline = { root: { localName: node.local, namespace: node.uri, attributes, qualifiedAttributes }, elementCount: 0, maxDepthSeen: 0, pathValues };
      return;
    }
    if (depth === 2 && outline && !outline.header && HEADER.test(node.local)) {
      outline.header = { localName: node.local, namespace: node.uri, fields: new Map(), attributes: new Map(), present: new Set() };
      headerPath = [];
      headerDepth = depth;
      return;
    }
    if (headerPath && outline?.header) {
      headerPath.push(node.local);
      const path = headerPath.join('/');
      outline.header.present.add(path);
      for (const attr of Object.values(node.attributes)) {
        if (!attr.prefix) outline.header.attributes.set(`${path}@${attr.local}`, attr.value.slice(0, MAX_FIELD_CHARS));
      }
      collecting = HEADER_TEXT_PATHS.has(path) && !outline.header.fields.has(path) ? { path, text: '' } : undefined;
    }
  };
  const onText = (text: string) => {
    if (collecting && collecting.text.length < MAX_FIELD_CHARS) collecting.text += text;
    for (const collected of pathTexts) collected.text += text;
  };
  parser.ontext = (text) => {
    if (depth === 0 && text.trim() !== '') {
      fail(rootClosed
        ? new InputError('xml-trailing-content', `text after the root element at ${where()}`)
        : new InputError('xml-not-well-formed', `text before the root element at ${where()}`));
    }
    onText(text);
  };
  parser.oncdata = onText;
  parser.onclosetag = () => {
    if (paths.length) {
      open.pop();
      for (let i = pathTexts.length - 1; i >= 0; i -= 1) {
        const collected = pathTexts[i]!;
        if (collected.depth !== depth) continue;
        // XML normalises line ends to LF before parsing (as the DOM has them); sax leaves CR LF as sent.
        pathValues[collected.index] = collected.text.replace(/\r\n?/g, '\n');
        pathTexts.splice(i, 1);
      }
    }
    if (headerPath && outline?.header) {
      if (depth === headerDepth) {
        headerPath = undefined;
      } else {
        if (collecting) outline.header.fields.set(collecting.path, collecting.text.trim().slice(0, MAX_FIELD_CHARS));
        collecting = undefined;
        headerPath.pop();
      }
    }
    depth -= 1;
    if (depth === 0) rootClosed = true;
  };
  parser.onerror = (error) => {
    const message = error.message.split('\n')[0];
    // sax reports text after the root as its own error before `ontext` ever sees it.
    if (rootClosed && depth === 0 && message?.startsWith('Text data outside of root node')) {
      fail(new InputError('xml-trailing-content', `text after the root element at ${where()}`));
    }
    fail(new InputError('xml-not-well-formed', `${message} at ${where()}`));
  };

  try {
    parser.write(text).close();
  } catch (error) {
    if (failure) throw failure;
    throw error;
  }
  if (!outline) throw new InputError('xml-not-well-formed', 'the document has no root element');
  checkEntityReferences(text);
  if (!rootClosed) throw new InputError('xml-not-well-formed', `root element <${outline.root.localName}> is not closed`);
  outline.elementCount = elementCount;
  outline.maxDepthSeen = maxDepthSeen;
  return outline;
}

// Anything but the five predefined entities and character references. sax resolves `&AMP;` or `&Lt;`
// case-insensitively even with strictEntities; XML names are case-sensitive, so those are undefined
// entities and the document is not well-formed.
const UNDEFINED_ENTITY = /&(?!(?:amp|lt|gt|quot|apos|#[0-9]+|#x[0-9A-Fa-f]+);)/;
const LITERAL_SECTIONS = /<!\[CDATA\[[\s\S]*?\]\]>|<!--[\s\S]*?-->|<\?[\s\S]*?\?>/g;

/** Refuses entity references XML does not define. Runs on a document that passed the strict pass otherwise. */
function checkEntityReferences(text: string): void {
  if (!UNDEFINED_ENTITY.test(text)) return;
  // '&' is literal inside CDATA sections, comments and processing instructions; blank them out, keeping offsets.
  const markup = text.replace(LITERAL_SECTIONS, (section) => section.replace(/[^\n]/g, ' '));
  const match = UNDEFINED_ENTITY.exec(markup);
  if (!match) return;
  const before = markup.slice(0, match.index);
  const line = before.split('\n').length;
  const column = match.index - before.lastIndexOf('\n');
  const name = /^&([^;\s<&]{0,32})/.exec(markup.slice(match.index))?.[1] ?? '';
  throw new InputError('xml-not-well-formed', `undefined entity reference "&${name};" at line ${line}, column ${column}`);
}
