import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { compileFacts } from './envelope';
import { parseDom } from './dom';
import { elementPath } from './stream-path';
import { inspectXml } from './xml-gate';

const XBAU = { xbau: 'http://www.xleitstelle.de/xbau/2/6', g: 'urn:example:g' };
const VALID = path.resolve(__dirname, '../../test/fixtures/valid');

describe('elementPath', () => {
  test.each([
    ['/*/xbau:bauvorhaben/code', [undefined, 'bauvorhaben', 'code']],
    ['string(/*/xbau:bauvorhaben/code)', [undefined, 'bauvorhaben', 'code']],
    [' string( /a/b ) ', ['a', 'b']],
    ['/*', [undefined]],
  ])('%s is a plain element path', (expression, names) => {
    expect(elementPath(expression, XBAU)?.map((s) => s.localName)).toEqual(names);
  });

  test('prefixed steps take the namespace of the map, unprefixed ones no namespace (XPath 1.0)', () => {
    expect(elementPath('/xbau:a/b', XBAU)).toEqual([{ namespace: XBAU.xbau, localName: 'a' }, { namespace: '', localName: 'b' }]);
  });

  test.each([
    '//code', '/a//b', 'a/b', '/a/b[1]', 'local-name(/a/b)', '/a/@b[1]', '/a/@b', '/a/text()', '/a/child::b', '/a/..', '/a/.', 'normalize-space(/a/b)',
    "substring-after($reader, 'bab:')", '/a/b | /c', '/x:a', 'concat(/a, /b)', '', '/',
  ])('%s is evaluated on the DOM', (expression) => {
    expect(elementPath(expression, XBAU)).toBeUndefined();
  });
});

describe('facts read on the strict pass', () => {
  const definitions = {
    ags: ['string(/*/xbau:bauvorhaben/xbau:verortung/xbau:baugrundstueck/xbau:grundstueck/xbau:anschrift/xbau:gemeindeschluessel/code)', "substring-after($reader, 'bab:')"],
    kennung: ['/*/*/leser/kennung', '/*/*/*/leser/kennung'],
    bezeichnung: ['string(/*/xbau:bauvorhaben/xbau:bezeichnung)'],
    wholeRoot: ['/*/*/*'],
    missing: ['/*/nothing/here'],
  };
  const extract = compileFacts(definitions, XBAU);

  test('only the plain paths are handed to the gate', () => {
    expect(extract.paths).toHaveLength(6);
  });

  test.each(readdirSync(VALID).filter((f) => f.endsWith('.xml')))('%s: the same facts as XPath on the DOM', (file) => {
    const text = readFileSync(path.join(VALID, file), 'utf8');
    const known = { reader: 'bab:09162000' };
    const outline = inspectXml(text, undefined, extract.paths);
    let parsed = 0;
    const streamed = extract(() => {
      parsed += 1;
      return parseDom(text);
    }, known, outline.pathValues);
    const dom = extract(() => parseDom(text), known);
    expect(streamed).toEqual(dom);
    expect(dom.ags).toMatch(/^\d{8,12}$/);
    // The DOM was needed only where a plain path found nothing and an XPath fallback followed.
    expect(parsed).toBe(outline.pathValues[0]?.trim() ? 0 : 1);
  });

  test('the string value is the text of all descendants (entities, CDATA) of the first element the path selects', () => {
    const xml = '<r xmlns:g="urn:example:g"><g:a>first <b>one &amp; <![CDATA[<two>]]></b><!-- no -->!</g:a><g:a>second</g:a><a>plain</a></r>';
    const paths = ['/r/g:a', '/*/a', '/r/g:a/b', '/r/x'].map((e) => elementPath(e, XBAU)!);
    expect(inspectXml(xml, undefined, paths).pathValues).toEqual(['first one & <two>!', 'plain', 'one & <two>', undefined]);
    const dom = parseDom(xml);
    const viaDom = compileFacts({ a: ['/r/g:a'], b: ['/*/a'], c: ['/r/g:a/b'] }, XBAU)(() => dom, {});
    expect(viaDom).toEqual({ a: 'first one & <two>!', b: 'plain', c: 'one & <two>' });
  });

  test('line ends inside a value are normalised to LF, as in the DOM', () => {
    const xml = '<r>\r\n<a>line one\r\nline two\rthree</a>\r\n</r>';
    const extract = compileFacts({ a: ['/r/a'] }, XBAU);
    const streamed = extract(() => parseDom(xml), {}, inspectXml(xml, undefined, extract.paths).pathValues);
    expect(streamed).toEqual(extract(() => parseDom(xml), {}));
    expect(streamed.a).toBe('line one\nline two\nthree');
  });
});
