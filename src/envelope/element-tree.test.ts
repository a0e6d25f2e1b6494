import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { InputError } from '../errors';
import { parseElementTree, type TreeNode } from './element-tree';
import { checkAndValidate } from './envelope';
import { DEFAULT_XML_LIMITS, inspectXml } from './xml-gate';

const children = (node: TreeNode) => {
  const list: TreeNode[] = [];
  for (let child = node.firstChild; child; child = child.nextSibling) list.push(child);
  return list;
};

describe('parseElementTree', () => {
  it('keeps elements with their namespace, attributes without namespace declarations, and text with CDATA', () => {
    const tree = parseElementTree('<?xml version="1.0"?>\n<r:a xmlns:r="urn:r" xmlns="urn:d" r:x="1" y="2"><!-- c -->one <![CDATA[& two]]><?pi x?><b/>three</r:a>\n');
    expect(tree.nodeType).toBe(9);
    const [root, ...rest] = children(tree);
    expect(rest).toEqual([]);
    expect(root).toMatchObject({ nodeType: 1, localName: 'a', namespaceURI: 'urn:r', parentNode: tree });
    expect(root!.attributes!.map((a) => [a.localName, a.namespaceURI, a.nodeValue, a.ownerElement === root])).toEqual([['x', 'urn:r', '1', true], ['y', null, '2', true]]);
    expect(children(root!).map((n) => [n.nodeType, n.localName ?? n.nodeValue])).toEqual([[3, 'one & two'], [1, 'b'], [3, 'three']]);
    expect(children(root!)[1]).toMatchObject({ namespaceURI: 'urn:d', parentNode: root });
  });

  it('refuses what is not well-formed, whole', () => {
    for (const text of ['<a><b></a>', '<a>&nbsp;</a>', '<a/><b/>', '<a x="1" x="2"/>']) {
      expect(() => parseElementTree(text)).toThrow(InputError);
    }
  });
});

/** A tree as nested plain data, every node's fields and links (parent, owner) checked on the way. */
function shape(node: TreeNode): unknown {
  const attributes = node.attributes?.map((a) => {
    expect(a.ownerElement).toBe(node);
    return [a.localName, a.namespaceURI, a.nodeValue];
  });
  return [node.nodeType, node.localName, node.namespaceURI, node.nodeValue, attributes, children(node).map((child) => {
    expect(child.parentNode).toBe(node);
    return shape(child);
  })];
}

describe('the tree built on the gate\'s strict pass', () => {
  const VALID = path.resolve(__dirname, '../../test/fixtures/valid');
  const fixtures = readdirSync(VALID).filter((f) => f.endsWith('.xml'));

  const check = (body: Buffer, tree: boolean) => checkAndValidate(body, DEFAULT_XML_LIMITS, { requireXoevHeader: false }, { tree });

  it.each(fixtures)('is the tree parseElementTree builds: %s', async (file) => {
    const body = readFileSync(path.join(VALID, file));
    expect((await check(body, false)).tree).toBeUndefined();
    const { tree } = await check(body, true);
    expect(shape(tree!)).toEqual(shape(parseElementTree(body.toString('utf8'))));
  });

  it('reads CR LF and CR as xmldom does, in text and attributes, like parseElementTree', async () => {
    const raw = '<a x="1\r\n2\r3"><b>one\r\ntwo\rthree</b></a>';
    const { tree } = await check(Buffer.from(raw), true);
    expect(shape(tree!)).toEqual(shape(parseElementTree(raw)));
    const [root] = children(tree!);
    expect(children(children(root!)[0]!)[0]!.nodeValue).toBe('one\ntwo\nthree');
  });

  it('is not built for a document with NEL, LS or PS (line ends to xmldom, ordinary characters to the XML 1.0 gate): parseElementTree reads it at delivery', async () => {
    for (const char of ['\u0085', '\u2028', '\u2029']) {
      const raw = `<a x="1${char}2"><b>one${char}two\r\u0085three</b></a>`;
      const checked = await check(Buffer.from(raw), true);
      expect(checked.tree).toBeUndefined();
      expect(checked.text).toBe(raw);
      const [root] = children(parseElementTree(raw));
      expect(children(children(root!)[0]!)[0]!.nodeValue).toBe('one\ntwo\nthree');
    }
  });

  it('leaves the gate as strict as XML 1.0: LS inside a tag is refused, also when a tree is asked for', async () => {
    for (const tree of [false, true]) {
      await expect(check(Buffer.from('<a\u2028b="1"/>'), tree)).rejects.toMatchObject({ code: 'xml-not-well-formed' });
      await expect(check(Buffer.from('\u2028<a/>'), tree)).rejects.toMatchObject({ code: 'xml-not-well-formed' });
    }
  });

  it('is not built unless asked for', () => {
    expect(inspectXml('<a/>').tree).toBeUndefined();
  });
});
