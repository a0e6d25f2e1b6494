import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import xpath from 'xpath';
import { parse as parseYaml } from 'yaml';
import { parseDom } from './dom';
import { parseElementTree, type TreeNode } from './element-tree';
import { compileXPath, type Namespaces } from './xpath';

const REPO = path.resolve(__dirname, '../..');
const VALID = path.join(REPO, 'test/fixtures/valid');
const fixtures = readdirSync(VALID).filter((name) => name.endsWith('.xml'));

/**
 * Evaluates `expression` by the walk on `walked` and by the library on `dom`: the same string and boolean,
 * the same error or the same number of nodes, which `sameNodes` compares further.
 */
function compareRoutes(expression: string, namespaces: Namespaces, walked: unknown, dom: unknown, where: string, sameNodes: (selected: Node[], expected: Node[]) => void): void {
  const fast = compileXPath(expression, namespaces);
  const library = compileXPath(expression, namespaces, { fastPaths: false });
  expect({ where, value: fast.string(walked) }).toEqual({ where, value: library.string(dom) });
  expect({ where, value: fast.boolean(walked) }).toEqual({ where, value: library.boolean(dom) });
  let expected: Node[];
  try {
    expected = library.nodes(dom);
  } catch (error) {
    expect(() => fast.nodes(walked)).toThrow((error as Error).message);
    return;
  }
  const selected = fast.nodes(walked);
  expect({ where, count: selected.length }).toEqual({ where, count: expected.length });
  sameNodes(selected, expected);
}

/** Evaluates `expression` both ways on `context` and expects the same string, boolean and node list. */
function expectSame(expression: string, namespaces: Namespaces, context: unknown): void {
  compareRoutes(expression, namespaces, context, context, `${expression} on ${(context as { nodeName?: string }).nodeName}`,
    (nodes, expected) => nodes.forEach((node, i) => expect(node === expected[i]).toBe(true)));
}

/** The walk on the element tree gives what the library gives on the DOM: strings, booleans, selected nodes' string values. */
function expectSameOnTree(expression: string, namespaces: Namespaces, tree: unknown, dom: unknown): void {
  expect(compileXPath(expression, namespaces).direct).toBe(true);
  const where = `${expression} (element tree)`;
  const strings = (nodes: unknown[]) => nodes.map((node) => compileXPath('string(.)', {}, { fastPaths: false }).string(node));
  // The tree's nodes are not DOM nodes: compare their string values.
  compareRoutes(expression, namespaces, tree, dom, where, (selected, expected) =>
    expect({ where, values: selected.map((node) => treeString(node as unknown as TreeNode)) }).toEqual({ where, values: strings(expected) }));
}

function treeString(node: TreeNode): string {
  if (node.nodeType !== 1) return node.nodeValue ?? '';
  let text = '';
  for (let child = node.firstChild; child; child = child.nextSibling) text += treeString(child);
  return text;
}

describe('plain paths walked directly give what the xpath library gives', () => {
  const SAMPLE = `<?xml version="1.0"?>
<r:root xmlns:r="urn:r" xmlns:o="urn:o" id="1" o:id="2">
  <a>first <!-- comment --><b>bold</b><![CDATA[ & raw ]]><?pi data?> tail</a>
  <a x="1"><b>second</b><b>third</b></a>
  <r:a><b>namespaced</b></r:a>
  <d xmlns="urn:default"><b>default namespace</b></d>
  <o:e o:att="o" att="plain"/>
  <a><c><b>deep</b></c></a>
</r:root>`;
  const NS = { r: 'urn:r', o: 'urn:o', d: 'urn:default' };
  const document = parseDom(SAMPLE);
  const root = document.documentElement!;
  const second = root.getElementsByTagName('a')[1]!;

  test.each([
    '/*', '/r:root', '/*/a', '/*/a/b', 'string(/*/a/b)', '/*/*/b', '/*/r:a/b', '/*/d/b', '/*/d:d/b', '/*/d:d/d:b',
    '/*/@id', '/*/@o:id', '/*/o:e/@att', '/*/o:e/@o:att', '/*/a/@x', '/*/missing', '/*/a/c/b', '/root', 'a/b', 'a',
    '*/b', 'b', '@x', 'c/b', '/*/a/*[1]', '/*/a[1]/b', '/*/a/b[1]', '/*/*[1]/b', '*[1]', 'b[1]',
    'local-name(/*/*[1])', 'local-name(/*/a/*)', 'local-name(/*/o:e/@o:att)', 'local-name(/*/missing)', 'local-name(*)', 'string(/*/a/b[1])',
  ])('%s', (expression) => {
    expect(compileXPath(expression, NS).direct).toBe(true);
    for (const context of [document, root, second, root.getAttributeNode('id')]) expectSame(expression, NS, context);
    const tree = parseElementTree(SAMPLE);
    const treeRoot = tree.firstChild!;
    const treeSecond = compileXPath('/*/a', NS).nodes(tree)[1];
    for (const [treeContext, domContext] of [[tree, document], [treeRoot, root], [treeSecond, second], [treeRoot.attributes![0], root.getAttributeNode('id')]] as const) {
      expectSameOnTree(expression, NS, treeContext, domContext);
    }
  });

  test('string-value of an element: text and CDATA of all descendants, no comments or PIs', () => {
    expect(compileXPath('/*/a', NS).string(document)).toBe('first bold & raw  tail');
  });

  test('line ends read the same on the tree as on the DOM (xmldom also normalises U+0085, U+2028, U+2029)', () => {
    const text = '<a x="1\u2028\r\n2"><b>x\u2028y\u0085z\r\nw\rv\u2029</b></a>';
    for (const expression of ['/a/b', '/a/@x']) expectSameOnTree(expression, {}, parseElementTree(text), parseDom(text));
    expect(compileXPath('/a/b', {}).string(parseElementTree(text))).toBe('x\ny\nz\nw\nv\n');
  });

  test('an absolute path from an element starts at its document', () => {
    expect(compileXPath('/*/a/b', NS).string(second)).toBe('bold');
    expect(compileXPath('b', NS).string(second)).toBe('second');
  });

  test('anything more than a plain path still goes to the library', () => {
    for (const expression of ['/*/a[2]/b', '//b', 'count(/*/a)', 'local-name(//b)', 'name(/*/a)', '/*/a/b | /*/r:a/b', "concat(/*/a/b, '-')", 'string(/*/empty)']) {
      expect(compileXPath(expression, NS).direct).toBe(expression === 'string(/*/empty)');
      expectSame(expression, NS, document);
    }
    expect(compileXPath('count(/*/a)', NS).string(document)).toBe('3');
    expect(compileXPath('local-name(/*/*[last()])', NS).string(document)).toBe('a');
  });
});

describe('every path of the shipped mappings, on every valid fixture', () => {
  /** The XPath expressions of a mapping: [expression, each it is relative to, if any]. */
  function expressions(fields: Record<string, unknown>, each?: string): Array<[string, string | undefined]> {
    const found: Array<[string, string | undefined]> = [];
    const visit = (field: unknown) => {
      if (typeof field === 'string') found.push([field, each]);
      else if (field && typeof field === 'object') {
        const spec = field as { xpath?: string; concat?: unknown[]; each?: string; fields?: Record<string, unknown> };
        if (spec.xpath) found.push([spec.xpath, each]);
        spec.concat?.forEach(visit);
        if (spec.each) found.push([spec.each, each]);
        if (spec.fields) found.push(...expressions(spec.fields, spec.each ?? each));
      }
    };
    Object.values(fields).forEach(visit);
    return found;
  }

  const mappings = readdirSync(path.join(REPO, 'mappings')).filter((name) => name.endsWith('.yaml') && !name.endsWith('.test.yaml'));
  test.each(mappings)('%s', (name) => {
    const mapping = parseYaml(readFileSync(path.join(REPO, 'mappings', name), 'utf8')) as { namespaces?: Namespaces; fields?: Record<string, unknown> };
    const namespaces = mapping.namespaces ?? {};
    const paths = expressions(mapping.fields ?? {});
    for (const fixture of fixtures) {
      const document = parseDom(readFileSync(path.join(VALID, fixture), 'utf8'));
      const tree = parseElementTree(readFileSync(path.join(VALID, fixture), 'utf8'));
      for (const [expression, each] of paths) {
        const contexts = each ? compileXPath(each, namespaces, { fastPaths: false }).nodes(document) : [document];
        for (const context of contexts) expectSame(expression, namespaces, context);
        const treeContexts = each ? compileXPath(each, namespaces).nodes(tree) : [tree];
        expect(treeContexts.length).toBe(contexts.length);
        treeContexts.forEach((context, i) => expectSameOnTree(expression, namespaces, context, contexts[i]));
      }
    }
    // The walk is what the mapping uses for most of its paths.
    if (paths.length) expect(paths.filter(([expression]) => compileXPath(expression, namespaces).direct).length).toBeGreaterThan(paths.length / 2);
  });
});

describe('the shared table of standard functions', () => {
  const Resolver = (xpath as unknown as { FunctionResolver: new () => { functions: Record<string, unknown>; addFunction(ns: string, local: string, f: unknown): void; getFunction(local: string, ns: string): unknown } }).FunctionResolver;

  test('every resolver has the standard functions; one that adds a function does not change the others', () => {
    const a = new Resolver();
    const b = new Resolver();
    expect(a.getFunction('count', '')).toBeInstanceOf(Function);
    expect(a.functions).toBe(b.functions);
    const custom = () => 'x';
    a.addFunction('urn:test', 'custom', custom);
    expect(a.getFunction('custom', 'urn:test')).toBe(custom);
    expect(b.getFunction('custom', 'urn:test')).toBeUndefined();
    expect(new Resolver().getFunction('custom', 'urn:test')).toBeUndefined();
    expect(a.getFunction('count', '')).toBe(b.getFunction('count', ''));
  });
});
