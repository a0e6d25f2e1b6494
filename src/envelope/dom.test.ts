import { parseDom } from './dom';
import { InputError } from '../errors';

describe('parseDom', () => {
  test('with the memoised grammar, end tags are still checked: a mismatched or malformed end tag is refused', () => {
    expect(parseDom('<a xmlns:p="urn:p"><p:b>x</p:b><c/></a>').documentElement!.childNodes.length).toBe(2);
    for (const bad of ['<a><b></c></a>', '<a><b></b ></a x>', '<a></a\n<x>']) {
      expect(() => parseDom(bad)).toThrow(InputError);
    }
  });

  test('the grammar expressions are shared between documents (xmldom builds one per end tag otherwise)', () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const grammar = require('@xmldom/xmldom/lib/grammar') as { reg: (...parts: Array<RegExp | string>) => RegExp; memoised?: boolean; QName_group: RegExp; S_OPT: RegExp };
    expect(grammar.memoised).toBe(true);
    const first = grammar.reg('^', grammar.QName_group, grammar.S_OPT, '$');
    expect(grammar.reg('^', grammar.QName_group, grammar.S_OPT, '$')).toBe(first);
    expect(first.test('p:b')).toBe(true);
    expect(first.test('p:b x')).toBe(false);
  });
});
