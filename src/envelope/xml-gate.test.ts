// The strict XML gate (inspectXml) and intake's check (checkMessage = decode + gate + XÖV header):
// every bad fixture is refused with its reason code, limits and structural refusals name their position.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { InputError } from '../errors';
import { decodeXml } from './decode';
import { checkMessage } from './envelope';
import { DEFAULT_XML_LIMITS, inspectXml } from './xml-gate';

const FIXTURES = path.resolve(__dirname, '../../test/fixtures');
const bad = (name: string) => readFileSync(path.join(FIXTURES, 'bad', name));
const valid = (name: string) => readFileSync(path.join(FIXTURES, 'valid', name));

/** Runs `action`, expects an InputError and returns it (fails the test if nothing or something else is thrown). */
function refusal(action: () => unknown): InputError {
  let caught: unknown;
  try {
    action();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(InputError);
  return caught as InputError;
}

const HEADER = `
  <nachrichtenkopf.g2g>
    <identifikation.nachricht>
      <nachrichtenUUID>5a0e6a9e-3c4b-4f7e-9a51-0d3c8e7b1f20</nachrichtenUUID>
      <nachrichtentyp listURI="urn:xoev-de:xbau:codeliste:xbau-nachrichten" listVersionID="4.0"><code>0200</code></nachrichtentyp>
      <erstellungszeitpunkt>2026-11-21T10:00:00+01:00</erstellungszeitpunkt>
    </identifikation.nachricht>
    <leser><verzeichnisdienst><code>DVDV</code></verzeichnisdienst><kennung>bab:09162000</kennung></leser>
    <autor><verzeichnisdienst><code>DVDV</code></verzeichnisdienst><kennung>ptl:0916200001</kennung></autor>
  </nachrichtenkopf.g2g>`;

/** A minimal valid XBau message with `body` after the header. */
const message = (body = '', declaration = '<?xml version="1.0" encoding="UTF-8"?>\n') =>
  `${declaration}<xbau:baugenehmigung.antrag.0200 xmlns:xbau="http://www.xleitstelle.de/xbau/2/6" standard="XBau-Hochbau" version="2.6">${HEADER}${body}
</xbau:baugenehmigung.antrag.0200>`;

describe('bad fixtures are refused by checkMessage', () => {
  it('a: an unescaped "&" is not well-formed, reported at line 37', () => {
    const error = refusal(() => checkMessage(bad('a-not-well-formed-unescaped-ampersand.xml'), DEFAULT_XML_LIMITS));
    expect(error.code).toBe('xml-not-well-formed');
    expect(error.detail).toMatch(/ at line 37, column \d+$/);
    expect(error.status).toBe(400);
  });

  it('b: billion laughs is refused for its DOCTYPE, before any entity is read', () => {
    const error = refusal(() => checkMessage(bad('b-billion-laughs-entity-expansion.xml'), DEFAULT_XML_LIMITS));
    expect(error.code).toBe('xml-doctype-forbidden');
    expect(error.detail).toMatch(/^DOCTYPE declaration at line \d+, column \d+; DTDs and entities are never processed$/);
  });

  it('c: XXE is refused for its DOCTYPE, the entity is never resolved', () => {
    const error = refusal(() => checkMessage(bad('c-xxe-external-entity-etc-passwd.xml'), DEFAULT_XML_LIMITS));
    expect(error.code).toBe('xml-doctype-forbidden');
    expect(error.detail).toBe('DOCTYPE declaration at line 4, column 3; DTDs and entities are never processed');
    expect(error.message).not.toContain('root:');
  });

  it('d: a leser without kennung makes the header incomplete', () => {
    const error = refusal(() => checkMessage(bad('d-schema-invalid-leser-without-kennung.xml'), DEFAULT_XML_LIMITS));
    expect(error.code).toBe('xoev-header-incomplete');
    expect(error.detail).toBe('nachrichtenkopf.g2g/leser has no kennung');
  });

  it('e: a second root element is refused at line 31, the first message is not accepted alone', () => {
    const error = refusal(() => checkMessage(bad('e-two-root-elements-trailing-garbage.xml'), DEFAULT_XML_LIMITS));
    expect(error.code).toBe('xml-multiple-roots');
    expect(error.detail).toMatch(/^second root element <xbau:baugenehmigung\.antrag\.0200> at line 31, column \d+$/);
  });
});

describe('inspectXml', () => {
  it('refuses entity references XML does not define, also case variants of the predefined ones', () => {
    for (const [xml, name, where] of [['<a>&AMP;</a>', 'AMP', 'line 1, column 4'], ['<a>\n <b t="&Lt;"/></a>', 'Lt', 'line 2, column 8'], ['<a>&nbsp;</a>', 'nbsp', '']] as const) {
      let error: unknown;
      try {
        inspectXml(xml);
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(InputError);
      expect((error as InputError).code).toBe('xml-not-well-formed');
      if (where) expect((error as InputError).detail).toBe(`undefined entity reference "&${name};" at ${where}`);
    }
  });

  it('accepts the predefined entities, character references and literal & in CDATA and comments', () => {
    expect(inspectXml('<a t="&quot;&apos;">&amp;&lt;&gt;&#38;&#x26;<![CDATA[&AMP; &nbsp;]]><!-- &Lt; --></a>').elementCount).toBe(1);
  });

  it('outlines a valid fixture: root, header fields, attributes, counts', () => {
    const outline = inspectXml(valid('xbau-0200-antrag-muenchen.xml').toString('utf8'));
    expect(outline.root).toEqual({
      localName: 'baugenehmigung.antrag.0200',
      namespace: 'http://www.xleitstelle.de/xbau/2/6',
      attributes: {
        produkt: 'XBau-Export Formularserver (Testfixture)',
        produkthersteller: 'Beispiel-Softwarehaus GmbH (fiktiv)',
        produktversion: '2.6.0-fixture',
        standard: 'XBau-Hochbau',
        version: '2.6',
      },
      qualifiedAttributes: {},
    });
    expect(outline.header?.localName).toBe('nachrichtenkopf.g2g');
    expect(outline.header?.fields.get('leser/kennung')).toBe('bab:09162000');
    expect(outline.header?.fields.get('identifikation.nachricht/nachrichtentyp/code')).toBe('0200');
    // Only the listed paths are collected: the leser's erreichbarkeit/kennung (an e-mail address) is not.
    expect(outline.header?.fields.has('leser/erreichbarkeit/kennung')).toBe(false);
    expect(outline.header?.present.has('leser/erreichbarkeit/kennung')).toBe(true);
    expect(outline.header?.attributes.get('identifikation.nachricht/nachrichtentyp@listVersionID')).toBe('4.0');
    expect(outline.elementCount).toBe(215);
    expect(outline.maxDepthSeen).toBeGreaterThan(3);
  });

  it('accepts comments and processing instructions after the root', () => {
    const outline = inspectXml('<a><b/></a>\n<!-- done -->\n<?pi x?>\n');
    expect(outline.root.localName).toBe('a');
    expect(outline.elementCount).toBe(2);
  });

  describe('depth limit', () => {
    const nested = (levels: number) => `${'<e>'.repeat(levels)}${'</e>'.repeat(levels)}`;

    it('accepts exactly maxDepth levels', () => {
      const outline = inspectXml(nested(6), { maxDepth: 6, maxElements: 100 });
      expect(outline.maxDepthSeen).toBe(6);
      expect(outline.elementCount).toBe(6);
    });

    it('refuses one level more with xml-too-deep naming the limit and position', () => {
      const error = refusal(() => inspectXml(nested(7), { maxDepth: 6, maxElements: 100 }));
      expect(error.code).toBe('xml-too-deep');
      expect(error.detail).toBe('element nesting exceeds 6 levels at line 1, column 22');
    });

    it('applies through checkMessage with the limits it is given', () => {
      const error = refusal(() => checkMessage(Buffer.from(message('<x><y><z/></y></x>')), { maxDepth: 4, maxElements: 1000 }));
      expect(error.code).toBe('xml-too-deep');
      expect(error.detail).toMatch(/^element nesting exceeds 4 levels at line \d+, column \d+$/);
    });

    it('the default limit refuses a deeply nested document', () => {
      const error = refusal(() => inspectXml(nested(DEFAULT_XML_LIMITS.maxDepth + 1)));
      expect(error.code).toBe('xml-too-deep');
      expect(error.detail).toContain(`exceeds ${DEFAULT_XML_LIMITS.maxDepth} levels`);
    });
  });

  describe('element limit', () => {
    const flat = (children: number) => `<r>${'<c/>'.repeat(children)}</r>`;

    it('accepts exactly maxElements elements (the root counts)', () => {
      expect(inspectXml(flat(9), { maxDepth: 10, maxElements: 10 }).elementCount).toBe(10);
    });

    it('refuses one element more with xml-too-many-elements', () => {
      const error = refusal(() => inspectXml(flat(10), { maxDepth: 10, maxElements: 10 }));
      expect(error.code).toBe('xml-too-many-elements');
      expect(error.detail).toBe('more than 10 elements');
    });
  });

  it('refuses text after the root element with xml-trailing-content', () => {
    const error = refusal(() => inspectXml('<a><b/></a>\n  trailing'));
    expect(error.code).toBe('xml-trailing-content');
    expect(error.detail).toBe('text after the root element at line 2, column 3');
  });

  it('refuses trailing text after a full message through checkMessage', () => {
    const error = refusal(() => checkMessage(Buffer.from(`${message()}\n--boundary--\n`), DEFAULT_XML_LIMITS));
    expect(error.code).toBe('xml-trailing-content');
    expect(error.detail).toMatch(/^text after the root element at line 13, column \d+$/);
  });

  it('refuses text before the root element as not well-formed', () => {
    const error = refusal(() => inspectXml('garbage<a/>'));
    expect(error.code).toBe('xml-not-well-formed');
    expect(error.detail).toBe('text before the root element at line 1, column 1');
  });

  it('refuses a document without a root element', () => {
    for (const text of ['   \n', '<?xml version="1.0"?>\n', '<!-- nothing but a comment -->']) {
      const error = refusal(() => inspectXml(text));
      expect(error.code).toBe('xml-not-well-formed');
      expect(error.detail).toBe('the document has no root element');
    }
  });

  it('refuses an unclosed root', () => {
    const error = refusal(() => inspectXml('<a><b/>'));
    expect(error.code).toBe('xml-not-well-formed');
    expect(error.detail).toMatch(/^unclosed tag: a at line 1, column \d+$/);
  });

  it('refuses mismatched tags with their position', () => {
    const error = refusal(() => inspectXml('<a>\n<b></c>\n</a>'));
    expect(error.code).toBe('xml-not-well-formed');
    expect(error.detail).toMatch(/^unexpected close tag at line 2, column \d+$/);
  });

  it('finds a stray reference before where the tokenizer stopped, skipping comments and CDATA; unterminated sections after it do not matter', () => {
    for (const opener of ['<?', '<!--']) {
      const error = refusal(() => inspectXml(`<a>&x;${opener.repeat(200_000)}</a>`));
      expect(error.code).toBe('xml-not-well-formed');
      expect(error.detail).toBe('undefined entity reference "&x;" at line 1, column 4');
    }
    // '&' inside a comment or CDATA section before the error is literal.
    expect(refusal(() => inspectXml('<a><!-- & --><![CDATA[&]]>&y;<b></a>')).detail).toBe('undefined entity reference "&y;" at line 1, column 27');
  });

  it('refuses an undeclared entity reference, also an HTML one, in text and in attributes', () => {
    for (const [text, name, column] of [['<a>&nbsp;</a>', 'nbsp', 4], ['<a>x &foo; y</a>', 'foo', 6], ['<a b="&uuml;"/>', 'uuml', 7]] as const) {
      const error = refusal(() => inspectXml(text));
      expect(error.code).toBe('xml-not-well-formed');
      expect(error.detail).toBe(`undefined entity reference "&${name};" at line 1, column ${column}`);
    }
  });

  it('applies XML 1.0 rules also to a document declaring version 1.1', () => {
    expect(refusal(() => inspectXml('<?xml version="1.1"?><a>&#1;</a>')).code).toBe('xml-not-well-formed');
    expect(inspectXml('<?xml version="1.1"?><a>x</a>').root.localName).toBe('a');
  });

  it('accepts the five predefined entities and character references', () => {
    expect(inspectXml('<a b="&quot;&apos;">&amp;&lt;&gt;&#228;&#x20AC;</a>').root.attributes).toEqual({ b: `"'` });
  });

  it('refuses a DOCTYPE even without entity declarations', () => {
    const error = refusal(() => inspectXml('<?xml version="1.0"?>\n<!DOCTYPE a>\n<a/>'));
    expect(error.code).toBe('xml-doctype-forbidden');
    expect(error.detail).toMatch(/^DOCTYPE declaration at line 2, column \d+;/);
  });
});

describe('decoding (decodeXml via checkMessage)', () => {
  it('refuses an empty body', () => {
    const error = refusal(() => checkMessage(Buffer.alloc(0), DEFAULT_XML_LIMITS));
    expect(error.code).toBe('empty-body');
    expect(error.detail).toBe('the request body is empty');
  });

  it('refuses bytes that are not UTF-8 when no encoding is declared', () => {
    // "Müller" in ISO-8859-1: 0xFC is not valid UTF-8.
    const body = Buffer.concat([Buffer.from('<a>M'), Buffer.from([0xfc]), Buffer.from('ller</a>')]);
    const error = refusal(() => checkMessage(body, DEFAULT_XML_LIMITS));
    expect(error.code).toBe('xml-not-well-formed');
    expect(error.detail).toBe('the body is not valid utf-8');
  });

  it('refuses bytes that are not UTF-8 when UTF-8 is declared', () => {
    const body = Buffer.concat([Buffer.from('<?xml version="1.0" encoding="UTF-8"?><a>'), Buffer.from([0xc3, 0x28]), Buffer.from('</a>')]);
    const error = refusal(() => decodeXml(body));
    expect(error.code).toBe('xml-not-well-formed');
    expect(error.detail).toBe('the body is not valid utf-8');
  });

  it('refuses an encoding the platform does not know', () => {
    const error = refusal(() => decodeXml(Buffer.from('<?xml version="1.0" encoding="X-UNKNOWN-7"?><a/>')));
    expect(error.code).toBe('xml-not-well-formed');
    expect(error.detail).toBe('unsupported encoding "x-unknown-7" in the XML declaration');
  });

  it('strips a UTF-8 byte order mark', () => {
    const text = decodeXml(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('<a>ä</a>')]));
    expect(text).toBe('<a>ä</a>');
  });

  it('decodes an ISO-8859-1 declared document and reads its header', () => {
    const body = Buffer.from(message('\n  <xbau:bauvorhaben><xbau:bezeichnungDesBauvorhabens>Gartenhaus Möller, Straße</xbau:bezeichnungDesBauvorhabens></xbau:bauvorhaben>',
      "<?xml version='1.0' encoding='ISO-8859-1'?>\n"), 'latin1');
    expect(body.includes(Buffer.from([0xf6]))).toBe(true); // ö as one byte
    const checked = checkMessage(body, DEFAULT_XML_LIMITS);
    expect(checked.text).toContain('Gartenhaus Möller, Straße');
    expect(checked.facts.messageUuid).toBe('5a0e6a9e-3c4b-4f7e-9a51-0d3c8e7b1f20');
    expect(checked.facts.reader).toBe('bab:09162000');
    expect(checked.elementCount).toBe(17);
  });
});

describe('characters XML does not allow', () => {
  test.each([['NUL', '\u0000', '0000'], ['vertical tab', '\u000B', '000B'], ['U+FFFF', '\uFFFF', 'FFFF'], ['escape', '\u001B', '001B']])('%s is refused with its position', (_name, char, code) => {
    expect(() => decodeXml(Buffer.from(`<?xml version="1.0"?>\n<a>x${char}</a>`))).toThrow(`character U+${code} is not allowed in XML (line 2, column 5)`);
  });
  test('tab, line feed, carriage return and characters beyond the BMP are fine', () => {
    expect(decodeXml(Buffer.from('<a>\t\r\n😀 ä</a>'))).toBe('<a>\t\r\n😀 ä</a>');
  });
});
