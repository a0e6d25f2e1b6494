// Compiles XPath 1.0 expressions once, against an explicit namespace map (XPath 1.0 has no default namespace).
// Plain paths (`/*/xbau:a/b`, `a/b/@c`: child steps of names, at most a final attribute) — most of what
// mappings and facts ask — are answered by walking the DOM directly; everything else goes to the `xpath`
// library. Both give the same result (test: xpath.test.ts compares them on every fixture).
import xpath from 'xpath';
import { plainPath, type PlainPath } from './stream-path';

export type Namespaces = Record<string, string>;
export type XPathVariables = Readonly<Record<string, string | boolean | undefined>>;

/** A compiled expression bound to its namespace map. */
export interface CompiledXPath {
  readonly source: string;
  /** Answered by walking the DOM (a plain path), not by the xpath library. */
  readonly direct: boolean;
  /** `variables` are available as `$name` (e.g. the routing facts: `$reader`, `$messageType`). */
  string(node: unknown, variables?: XPathVariables): string;
  boolean(node: unknown, variables?: XPathVariables): boolean;
  nodes(node: unknown, variables?: XPathVariables): Node[];
}

/**
 * xpath 0.0.34 makes a throwaway XPathContext for every evaluation, path expression and predicate, and
 * with it a FunctionResolver that registers the 27 standard functions in a fresh object — to replace
 * those resolvers right after (goto100/xpath#146, open upstream). The table is the same every time:
 * all resolvers share one, copied on a resolver's first `addFunction`. Guarded: should a later xpath
 * lack these members, nothing is changed.
 */
function shareStandardFunctions(): void {
  const resolver = (xpath as unknown as { FunctionResolver?: { prototype: Record<string, unknown> } }).FunctionResolver;
  const proto = resolver?.prototype as { addStandardFunctions?: () => void; addFunction?: (...args: unknown[]) => void; shared?: boolean } | undefined;
  const { addStandardFunctions, addFunction } = proto ?? {};
  if (!proto || typeof addStandardFunctions !== 'function' || typeof addFunction !== 'function' || proto.shared) return;
  const template: { functions: Record<string, unknown> } = { functions: {} };
  addStandardFunctions.call(template);
  const standard = Object.freeze(template.functions);
  proto.addStandardFunctions = function (this: { functions: Record<string, unknown> }) {
    this.functions = standard;
  };
  proto.addFunction = function (this: { functions: Record<string, unknown> }, ...args: unknown[]) {
    if (this.functions === standard) this.functions = { ...standard };
    addFunction.apply(this, args);
  };
  proto.shared = true;
}
shareStandardFunctions();

interface ParsedExpression {
  evaluateString(options: object): string;
  evaluateBoolean(options: object): boolean;
  select(options: object): Node[];
}

// A QName step or name test `prefix:local` (not an axis `child::`); function names have no prefix in XPath 1.0.
const PREFIXED_NAME = /(?<![\w.:-])([A-Za-z_][\w.-]*):(?!:)(?=[A-Za-z_*])/g;
const STRING_LITERAL = /"[^"]*"|'[^']*'/g;

/**
 * Compiles `source`. Throws an Error naming the problem for a syntax error or for a prefix the namespace
 * map does not define, so that configuration and mapping files fail at start-up, not on the first message.
 * `fastPaths: false` sends plain paths to the library too (tests compare both).
 */
export function compileXPath(source: string, namespaces: Namespaces, { fastPaths = true }: { fastPaths?: boolean } = {}): CompiledXPath {
  let parsed: ParsedExpression;
  try {
    parsed = (xpath as unknown as { parse(expression: string): ParsedExpression }).parse(source);
  } catch (error) {
    throw new Error(`invalid XPath "${source}": ${(error as Error).message}`, { cause: error });
  }
  const withoutLiterals = source.replace(STRING_LITERAL, '""');
  for (const match of withoutLiterals.matchAll(PREFIXED_NAME)) {
    const prefix = match[1]!;
    if (!(prefix in namespaces)) throw new Error(`XPath "${source}" uses prefix "${prefix}" which the namespace map does not define`);
  }
  const plain = plainPath(source, namespaces);
  if (plain && fastPaths) return { source, direct: true, ...plainEvaluator(plain) };
  // An unset variable reads as the empty string rather than failing the evaluation.
  const options = (node: unknown, variables: XPathVariables = {}) => ({ node, namespaces, variables: (name: string) => variables[name] ?? '' });
  return {
    source,
    direct: false,
    string: (node, variables) => parsed.evaluateString(options(node, variables)),
    boolean: (node, variables) => parsed.evaluateBoolean(options(node, variables)),
    nodes: (node, variables) => parsed.select(options(node, variables)),
  };
}

// The DOM as the plain-path walker reads it (xmldom's nodes have these, as every W3C DOM does).
interface DomNode {
  nodeType: number;
  firstChild: DomNode | null;
  nextSibling: DomNode | null;
  parentNode: DomNode | null;
  ownerDocument?: DomNode | null;
  namespaceURI?: string | null;
  localName?: string | null;
  nodeValue?: string | null;
  /** xmldom's NamedNodeMap is array-like, as is the element tree's list. */
  attributes?: ArrayLike<DomNode> | null;
}

const ELEMENT = 1;
const ATTRIBUTE = 2;
const TEXT = 3;
const CDATA = 4;
const DOCUMENT = 9;

/** Evaluation of a plain path by walking children: document order, no intermediate node sets. */
function plainEvaluator(path: PlainPath): Pick<CompiledXPath, 'string' | 'boolean' | 'nodes'> {
  const { steps, attribute } = path;
  const start = (context: unknown): DomNode | null => {
    const node = context as DomNode | null;
    if (!node || !path.absolute) return node;
    if (node.nodeType === DOCUMENT) return node;
    // The root of the tree the context node is in (an attribute's tree is its element's).
    let root: DomNode = node.nodeType === ATTRIBUTE ? ((node as { ownerElement?: DomNode }).ownerElement ?? node) : node;
    while (root.parentNode) root = root.parentNode;
    return root;
  };
  const matches = (node: DomNode, step: { namespace: string | undefined; localName: string | undefined }) =>
    node.nodeType === ELEMENT && (step.localName === undefined || (node.localName === step.localName && (node.namespaceURI ?? '') === step.namespace));
  const attributeOf = (element: DomNode): DomNode | undefined => {
    const list = element.attributes;
    if (!attribute || !list) return undefined;
    for (let i = 0; i < list.length; i += 1) {
      const attr = list[i];
      if (attr && attr.localName === attribute.localName && (attr.namespaceURI ?? '') === attribute.namespace) return attr;
    }
    return undefined;
  };
  /** Calls `visit` for every selected node in document order; stops when it returns true. */
  const walk = (node: DomNode, depth: number, visit: (selected: DomNode) => boolean): boolean => {
    if (depth === steps.length) {
      if (!attribute) return visit(node);
      const attr = attributeOf(node);
      return attr ? visit(attr) : false;
    }
    const step = steps[depth]!;
    for (let child = node.firstChild; child; child = child.nextSibling) {
      if (!matches(child, step)) continue;
      if (walk(child, depth + 1, visit)) return true;
      if (step.first) break;
    }
    return false;
  };
  const first = (context: unknown): DomNode | undefined => {
    const from = start(context);
    let found: DomNode | undefined;
    if (from) walk(from, 0, (node) => ((found = node), true));
    return found;
  };
  const string = path.fn === 'local-name' ? (context: unknown) => first(context)?.localName ?? '' : (context: unknown) => stringValue(first(context));
  return {
    string,
    // A string is true when not empty; a node-set when not empty.
    boolean: (context) => (path.fn ? string(context) !== '' : first(context) !== undefined),
    nodes: (context) => {
      if (path.fn) throw new Error('Cannot convert string to nodeset');
      const from = start(context);
      const selected: DomNode[] = [];
      if (from) walk(from, 0, (node) => (selected.push(node), false));
      return selected as unknown as Node[];
    },
  };
}

/** XPath's string-value: an attribute's value, an element's text and CDATA descendants in document order. */
function stringValue(node: DomNode | undefined): string {
  if (!node) return '';
  if (node.nodeType !== ELEMENT) return node.nodeValue ?? '';
  let text = '';
  for (let child = node.firstChild; child; child = child.nextSibling) {
    if (child.nodeType === TEXT || child.nodeType === CDATA) text += child.nodeValue ?? '';
    else if (child.nodeType === ELEMENT) text += stringValue(child);
  }
  return text;
}
