// A minimal tree of a document's elements, attributes and text for mappings whose every path is plain
// (see xpath.ts): what the path walk reads of a DOM and nothing more, built with the gate's strict
// tokenizer (saxes) — by the gate's own pass at intake (`inspectXml` with `tree`), or by a pass of its
// own for a document read back from the store. About a fifth of xmldom's parse time and a fraction of its
// heap for an XBau application. Comments and processing instructions are left out: a plain path selects
// neither, and an element's string-value does not include them.
import { normalizeLineEndings } from '@xmldom/xmldom';
import { SaxesParser, type SaxesAttributeNS, type SaxesTagNS } from 'saxes';
import { InputError } from '../errors';

const XMLNS = 'http://www.w3.org/2000/xmlns/';

/** The attributes of an element without its namespace declarations (a plain loop: this runs for every element). */
export function attributesOf(node: SaxesTagNS): SaxesAttributeNS[] {
  const attributes: SaxesAttributeNS[] = [];
  for (const name in node.attributes) {
    const attr = node.attributes[name]!;
    if (attr.uri !== XMLNS) attributes.push(attr);
  }
  return attributes;
}

/** A node as the plain-path walk reads it; the names are the W3C DOM's. */
export class TreeNode {
  parentNode: TreeNode | null = null;
  firstChild: TreeNode | null = null;
  lastChild: TreeNode | null = null;
  nextSibling: TreeNode | null = null;
  /** An attribute's element. */
  ownerElement: TreeNode | null = null;

  constructor(
    readonly nodeType: 1 | 2 | 3 | 9,
    readonly localName: string | null,
    readonly namespaceURI: string | null,
    public nodeValue: string | null,
    readonly attributes: TreeNode[] | null,
  ) {}

  append(child: TreeNode): void {
    child.parentNode = this;
    if (this.lastChild) this.lastChild.nextSibling = child;
    else this.firstChild = child;
    this.lastChild = child;
  }
}

function element(tag: SaxesTagNS): TreeNode {
  const attributes: TreeNode[] = [];
  for (const attr of attributesOf(tag)) attributes.push(new TreeNode(2, attr.local, attr.uri || null, attr.value, null));
  const node = new TreeNode(1, tag.local, tag.uri || null, null, attributes);
  for (const attr of attributes) attr.ownerElement = node;
  return node;
}

/** Builds a tree from a tokenizer's events. */
export class TreeBuilder {
  readonly document = new TreeNode(9, null, null, null, null);
  private current = this.document;

  open(tag: SaxesTagNS): void {
    const node = element(tag);
    this.current.append(node);
    this.current = node;
  }

  close(): void {
    this.current = this.current.parentNode!;
  }

  text(text: string): void {
    const { current } = this;
    if (current === this.document) return; // white space around the root
    const last = current.lastChild;
    if (last?.nodeType === 3) last.nodeValue += text;
    else current.append(new TreeNode(3, null, null, text, null));
  }
}

/**
 * The tree of a document that passed the gate (`inspectXml`). Parsing is strict all the same: an error
 * is an InputError, never a partial tree.
 */
export function parseElementTree(text: string): TreeNode {
  const builder = new TreeBuilder();
  const parser = new SaxesParser({ xmlns: true, position: false, defaultXMLVersion: '1.0', forceXMLVersion: true });
  parser.on('opentag', (tag) => builder.open(tag));
  parser.on('closetag', () => builder.close());
  const onText = (text: string) => builder.text(text);
  parser.on('text', onText);
  parser.on('cdata', onText);
  parser.on('error', (error) => {
    throw new InputError('xml-not-well-formed', error.message.split('\n')[0] ?? 'not well-formed');
  });
  // Line ends as xmldom normalises them (also U+0085, U+2028, U+2029), so that tree and DOM read the same.
  parser.write(normalizeLineEndings(text)).close();
  return builder.document;
}
