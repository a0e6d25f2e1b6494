import { InputError } from '../errors';
import { parseElementTree, type TreeNode } from './element-tree';

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
