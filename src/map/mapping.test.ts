// compileMapping: sources (xpath, fact, value, concat, fields, each), required and empty values, the XML
// pass-through, and the compile-time errors that name the failing field path.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseDom } from '../envelope/dom';
import { parseElementTree } from '../envelope/element-tree';
import { compileMapping, loadMapping, MappingError, type MappingInput } from './mapping';

const XML = `<?xml version="1.0" encoding="UTF-8"?>
<x:antrag xmlns:x="urn:example:antrag" xmlns:k="urn:example:kern">
  <x:antragsteller>
    <k:vorname> Johanna </k:vorname>
    <k:familienname>Beispielhuber</k:familienname>
    <k:titel></k:titel>
  </x:antragsteller>
  <x:vorhaben art="11">
    <x:bezeichnung>
      Neubau   eines
      Einfamilienhauses
    </x:bezeichnung>
    <x:kosten>508000</x:kosten>
  </x:vorhaben>
  <x:anlagen>
    <anlage nr="1"><bezeichnung>Lageplan</bezeichnung><seiten>2</seiten></anlage>
    <anlage nr="2"><bezeichnung>Grundrisse</bezeichnung></anlage>
    <anlage nr="3"><bezeichnung>Baubeschreibung</bezeichnung><seiten>5</seiten></anlage>
  </x:anlagen>
</x:antrag>
`;
const NAMESPACES = { x: 'urn:example:antrag', k: 'urn:example:kern' };
const RAW = Buffer.from(XML);
const FACTS = { messageUuid: 'd3503a22-6b7d-4dc7-9319-b29f17c29b73', messageType: '0200', ags: '09162000', test: false, reader: 'bab:09162000' };

const input = (facts: MappingInput['facts'] = FACTS, raw = RAW): MappingInput => ({ document: parseDom(raw.toString('utf8')), raw, facts });

/** Compiles a JSON mapping with `fields` and runs it on the example message. */
function run(fields: Record<string, unknown>, facts: MappingInput['facts'] = FACTS, extra: Record<string, unknown> = {}): unknown {
  const mapping = compileMapping({ name: 'example', output: 'json', namespaces: NAMESPACES, ...extra, fields }, 'example.yaml');
  const payload = mapping.run(input(facts));
  expect(payload.contentType).toBe('application/json; charset=utf-8');
  expect(payload.extension).toBe('json');
  return JSON.parse(payload.body.toString('utf8')) as unknown;
}

function failure(action: () => unknown): MappingError {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(MappingError);
    return error as MappingError;
  }
  throw new Error('the mapping succeeded');
}

function compileError(fields: Record<string, unknown>, extra: Record<string, unknown> = {}): string {
  try {
    compileMapping({ name: 'example', output: 'json', namespaces: NAMESPACES, ...extra, fields }, 'example.yaml');
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('the mapping compiled');
}

describe('sources', () => {
  it('an xpath as a plain string or as { xpath }', () => {
    expect(run({ nachname: '/x:antrag/x:antragsteller/k:familienname', art: { xpath: '/x:antrag/x:vorhaben/@art' } }))
      .toEqual({ nachname: 'Beispielhuber', art: '11' });
  });

  it('an xpath gives the string value, also of functions', () => {
    expect(run({ anzahl: 'count(/x:antrag/x:anlagen/anlage)', wurzel: 'local-name(/*)' })).toEqual({ anzahl: '3', wurzel: 'antrag' });
  });

  it('a fact, including a boolean false (which is not empty)', () => {
    expect(run({ uuid: { fact: 'messageUuid' }, test: { fact: 'test' }, fehlt: { fact: 'author' } }))
      .toEqual({ uuid: 'd3503a22-6b7d-4dc7-9319-b29f17c29b73', test: false });
  });

  it('a constant value of each type', () => {
    expect(run({ s: { value: 'XBau' }, n: { value: 3 }, b: { value: true } })).toEqual({ s: 'XBau', n: 3, b: true });
  });

  it('concat joins the non-empty parts with the separator', () => {
    expect(run({
      name: {
        concat: ['/x:antrag/x:antragsteller/k:titel', '/x:antrag/x:antragsteller/k:vorname', { fact: 'nope' }, '/x:antrag/x:antragsteller/k:familienname'],
        separator: ' ',
        transforms: ['trim'],
      },
      key: { concat: [{ fact: 'ags' }, { value: 'x' }, { fact: 'messageType' }], separator: '/' },
      ohneTrenner: { concat: [{ value: 'a' }, { value: 1 }, { value: false }] },
    })).toEqual({ name: 'Johanna Beispielhuber', key: '09162000/x/0200', ohneTrenner: 'a1false' });
  });

  it('concat of nothing but empty parts is empty and omitted', () => {
    expect(run({ leer: { concat: ['/x:antrag/x:antragsteller/k:titel', { fact: 'nope' }], separator: ' ' }, da: { value: 'x' } })).toEqual({ da: 'x' });
  });

  it('nested fields build nested objects', () => {
    expect(run({
      antragsteller: { fields: { name: { fields: { vorname: { xpath: '/x:antrag/x:antragsteller/k:vorname', transforms: ['trim'] }, familienname: '/x:antrag/x:antragsteller/k:familienname' } } } },
      nachricht: { fields: { typ: { fact: 'messageType' } } },
    })).toEqual({ antragsteller: { name: { vorname: 'Johanna', familienname: 'Beispielhuber' } }, nachricht: { typ: '0200' } });
  });

  it('each builds a list, with XPaths relative to each node', () => {
    expect(run({
      anlagen: {
        each: '/x:antrag/x:anlagen/anlage',
        fields: { nr: { xpath: '@nr', transforms: ['number'] }, bezeichnung: 'bezeichnung', seiten: { xpath: 'seiten', transforms: ['number'] }, ags: { fact: 'ags' } },
      },
    })).toEqual({
      anlagen: [
        { nr: 1, bezeichnung: 'Lageplan', seiten: 2, ags: '09162000' },
        { nr: 2, bezeichnung: 'Grundrisse', ags: '09162000' },
        { nr: 3, bezeichnung: 'Baubeschreibung', seiten: 5, ags: '09162000' },
      ],
    });
  });

  it('each leaves out items whose fields are all empty', () => {
    expect(run({ seiten: { each: '/x:antrag/x:anlagen/anlage', fields: { n: { xpath: 'seiten', transforms: ['number'] } } } })).toEqual({ seiten: [{ n: 2 }, { n: 5 }] });
  });
});

describe('empty values', () => {
  it('empty strings, missing nodes, empty objects and empty lists are omitted', () => {
    expect(run({
      titel: '/x:antrag/x:antragsteller/k:titel',
      fehlt: '/x:antrag/x:gibtEsNicht',
      objekt: { fields: { a: '/x:antrag/x:gibtEsNicht', b: { fact: 'nope' } } },
      liste: { each: '/x:antrag/x:gibtEsNicht', fields: { a: 'a' } },
      bleibt: { value: 0 },
    })).toEqual({ bleibt: 0 });
  });

  it('a mapping whose every field is empty gives an empty object', () => {
    expect(run({ a: '/x:antrag/x:gibtEsNicht' })).toEqual({});
  });
});

describe('required', () => {
  it('an empty required field fails with mapping-required-field naming the field path', () => {
    const error = failure(() => run({ gemeinde: { fields: { name: { value: 'x' }, ags: { fact: 'ags', required: true } } } }, { ...FACTS, ags: undefined }));
    expect(error.code).toBe('mapping-required-field');
    expect(error.detail).toBe('gemeinde.ags is required but empty');
    expect(error.message).toBe('mapping-required-field: gemeinde.ags is required but empty');
  });

  it('a required field inside each names the list and the field', () => {
    const error = failure(() => run({ anlagen: { each: '/x:antrag/x:anlagen/anlage', fields: { seiten: { xpath: 'seiten', required: true } } } }));
    expect(error.code).toBe('mapping-required-field');
    expect(error.detail).toBe('anlagen.seiten is required but empty');
  });

  it('a required list without items fails', () => {
    const error = failure(() => run({ unterlagen: { each: '/x:antrag/x:unterlagen/u', fields: { a: 'a' }, required: true } }));
    expect(error.detail).toBe('unterlagen is required but empty');
  });

  it('a required field that holds a value passes, also when the value comes from default', () => {
    expect(run({ a: { fact: 'ags', required: true }, b: { xpath: '/x:antrag/x:gibtEsNicht', default: 'unbekannt', required: true } }))
      .toEqual({ a: '09162000', b: 'unbekannt' });
  });

  it('a field that trims to empty counts as empty', () => {
    const error = failure(() => run({ titel: { concat: [{ value: '   ' }], transforms: ['trim'], required: true } }));
    expect(error.detail).toBe('titel is required but empty');
  });
});

describe('xml pass-through', () => {
  it('gives the received bytes unchanged and needs no document', () => {
    const mapping = compileMapping({ name: 'passthrough', output: 'xml' }, 'passthrough.yaml');
    expect(mapping.needsDocument).toBe(false);
    expect(mapping.output).toBe('xml');
    // ISO-8859-1 bytes with a comment and odd whitespace: nothing may be re-encoded or re-serialised.
    const raw = Buffer.concat([Buffer.from("<?xml version='1.0' encoding='ISO-8859-1'?>\r\n<a  b='1' >M"), Buffer.from([0xfc]), Buffer.from('ller<!-- c --></a>\n')]);
    const payload = mapping.run({ raw, document: parseDom('<a/>'), facts: {} });
    expect(payload.body.equals(raw)).toBe(true);
    expect(payload.contentType).toBe('application/xml; charset=utf-8');
    expect(payload.extension).toBe('xml');
  });

  it('a JSON mapping needs the DOM only for paths the xpath library answers', () => {
    const json = (fields: Record<string, unknown>) => compileMapping({ name: 'j', output: 'json', namespaces: { x: 'urn:x' }, fields }, 'j.yaml');
    expect(json({ a: { value: 1 } }).needsDocument).toBe(false);
    expect(json({ a: '/*/x:b/c', d: { each: '/*/e', fields: { f: '@g' } } }).needsDocument).toBe(false);
    expect(json({ a: '/*/x:b/c', h: 'count(/*/e)' }).needsDocument).toBe(true);
  });

  it('a message the element tree refuses but the DOM takes (stored before the gate became stricter) maps from the DOM', () => {
    const plain = compileMapping({ name: 'j', output: 'json', fields: { c: '/r/c' } }, 'j.yaml');
    const raw = Buffer.from('<r><c>a&#1;b</c></r>');
    expect(JSON.parse(plain.run({ raw, document: parseDom(raw.toString()), facts: {} }).body.toString())).toEqual({ c: 'a\u0001b' });
  });

  it('a mapping of plain paths reads the raw message, not the DOM it is given; with one library path the DOM', () => {
    const raw = Buffer.from('<r xmlns:x="urn:x"><x:b><c>from raw</c></x:b><e g="1"/><e g="2"/></r>');
    const elsewhere = parseDom('<r xmlns:x="urn:x"><x:b><c>from the DOM</c></x:b></r>');
    const plain = compileMapping({ name: 'j', output: 'json', namespaces: { x: 'urn:x' }, fields: { a: '/*/x:b/c', d: { each: '/*/e', fields: { f: '@g' } } } }, 'j.yaml');
    expect(JSON.parse(plain.run({ raw, document: elsewhere, facts: {} }).body.toString())).toEqual({ a: 'from raw', d: [{ f: '1' }, { f: '2' }] });
    const library = compileMapping({ name: 'j', output: 'json', namespaces: { x: 'urn:x' }, fields: { a: '/*/x:b/c', n: 'count(/*/e)' } }, 'j.yaml');
    expect(JSON.parse(library.run({ raw, document: elsewhere, facts: {} }).body.toString())).toEqual({ a: 'from the DOM', n: '0' });
  });

  it('a mapping of plain paths reads the tree it is given (the intake\'s) instead of parsing the raw message; only such a mapping reads a tree', () => {
    const plain = compileMapping({ name: 'j', output: 'json', fields: { c: '/r/c' } }, 'j.yaml');
    expect(plain.readsTree).toBe(true);
    const raw = Buffer.from('<r><c>from raw</c></r>');
    const tree = parseElementTree('<r><c>from the tree</c></r>');
    expect(JSON.parse(plain.run({ raw, tree, document: parseDom(raw.toString()), facts: {} }).body.toString())).toEqual({ c: 'from the tree' });
    expect(compileMapping({ name: 'j', output: 'json', fields: { n: 'count(/r/c)' } }, 'j.yaml').readsTree).toBe(false);
    expect(compileMapping({ name: 'j', output: 'json', fields: { a: { value: 1 } } }, 'j.yaml').readsTree).toBe(false);
    expect(compileMapping({ name: 'p', output: 'xml' }, 'p.yaml').readsTree).toBe(false);
  });

  it('the shipped xml-passthrough mapping passes a fixture through byte for byte', () => {
    const file = path.resolve(__dirname, '../../test/fixtures/valid/xbau-0200-antrag-muenchen.xml');
    const raw = readFileSync(file);
    const mapping = loadMapping(path.resolve(__dirname, '../../mappings/xml-passthrough.yaml'));
    expect(mapping.run({ raw, document: parseDom(raw.toString('utf8')), facts: {} }).body.equals(raw)).toBe(true);
  });
});

describe('compile-time errors', () => {
  it('an unknown code list names the field and transform', () => {
    expect(compileError({ a: { fields: { b: { xpath: '/x:antrag', transforms: ['trim', { lookup: 'gemeinden' }] } } } }))
      .toBe('example.yaml: fields.a.b.transforms[1]: unknown code list "gemeinden"');
  });

  it('an unknown namespace prefix names the field path', () => {
    expect(compileError({ antragsteller: { fields: { name: { xpath: '/x:antrag/p:name' } } } }))
      .toBe('example.yaml: fields.antragsteller.name.xpath: XPath "/x:antrag/p:name" uses prefix "p" which the namespace map does not define');
  });

  it('an unknown prefix inside concat, each and each fields', () => {
    expect(compileError({ n: { concat: ['/x:antrag', '/q:a'] } })).toBe('example.yaml: fields.n.concat[1].xpath: XPath "/q:a" uses prefix "q" which the namespace map does not define');
    expect(compileError({ l: { each: '/q:a', fields: { a: 'a' } } })).toBe('example.yaml: fields.l.each: XPath "/q:a" uses prefix "q" which the namespace map does not define');
    expect(compileError({ l: { each: '/x:a', fields: { a: 'q:a' } } })).toBe('example.yaml: fields.l.a.xpath: XPath "q:a" uses prefix "q" which the namespace map does not define');
  });

  it('a prefix-like text inside a string literal is not a prefix', () => {
    expect(run({ a: { xpath: "concat('urn:de:fim:', 'x')" } })).toEqual({ a: 'urn:de:fim:x' });
  });

  it('an XPath syntax error names the field', () => {
    expect(compileError({ a: '/x:antrag[' })).toMatch(/^example\.yaml: fields\.a\.xpath: invalid XPath "\/x:antrag\["/);
  });

  it('two sources in one field', () => {
    expect(compileError({ a: { fields: { b: { xpath: '/x:antrag', fact: 'ags' } } } }))
      .toBe('example.yaml: fields.a.b: give exactly one of xpath, fact, value, concat, fields (or each together with fields)');
  });

  it('no source, or each without fields', () => {
    expect(compileError({ a: { required: true } })).toBe('example.yaml: fields.a: give exactly one of xpath, fact, value, concat, fields (or each together with fields)');
    expect(compileError({ a: { each: '/x:antrag' } })).toBe('example.yaml: fields.a: give exactly one of xpath, fact, value, concat, fields (or each together with fields)');
  });

  it('an unknown key in a field', () => {
    expect(compileError({ a: { xpath: '/x:antrag', requierd: true } })).toBe('example.yaml:\n  fields.a: unknown key(s) "requierd"');
  });

  it('an unknown key at the top of the mapping', () => {
    expect(compileError({ a: '/x:antrag' }, { codelists: {} })).toBe('example.yaml:\n  (top level): unknown key(s) "codelists"');
  });

  it('output json without fields, output xml with fields', () => {
    expect(() => compileMapping({ name: 'j', output: 'json' }, 'j.yaml')).toThrow('j.yaml: output json needs fields');
    expect(() => compileMapping({ name: 'x', output: 'xml', fields: { a: '/a' } }, 'x.yaml')).toThrow('x.yaml: output xml passes the message through and takes no fields');
  });
});

describe('loadMapping', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'mapping-test-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('loads a YAML file whose name equals its file name', () => {
    writeFileSync(path.join(dir, 'kurz.yaml'), 'name: kurz\noutput: json\nfields:\n  typ: { fact: messageType }\n');
    const mapping = loadMapping(path.join(dir, 'kurz.yaml'));
    expect(mapping.name).toBe('kurz');
    expect(JSON.parse(mapping.run(input()).body.toString('utf8'))).toEqual({ typ: '0200' });
  });

  it('refuses a file whose name differs', () => {
    writeFileSync(path.join(dir, 'kurz.yaml'), 'name: lang\noutput: xml\n');
    expect(() => loadMapping(path.join(dir, 'kurz.yaml'))).toThrow(`${path.join(dir, 'kurz.yaml')}: name "lang" must equal the file name "kurz"`);
  });
});
