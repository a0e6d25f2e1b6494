// XSD validation with the real XBau 2.6 / XBeteiligung 1.2 schemas shipped in schemas/: valid fixtures
// pass, the schema-invalid fixture is refused naming the element, echoed values never leave, nothing is
// fetched from the network, and a dead worker comes back.
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { InputError } from '../errors';
import { checkAndValidate } from './envelope';
import { cleanMessage, SchemaValidator, type SchemaSetConfig, type ValidationConfig } from './schema-validation';
import { DEFAULT_XML_LIMITS } from './xml-gate';

const REPO = path.resolve(__dirname, '../..');
const FIXTURES = path.join(REPO, 'test/fixtures');
const XBAU = path.join(REPO, 'schemas/xbau/2.6');
const log = pino({ level: 'silent' });

const valid = (name: string) => readFileSync(path.join(FIXTURES, 'valid', name));
const MUENCHEN = 'xbau-0200-antrag-muenchen.xml';
const xbauSet: SchemaSetConfig = { standard: 'XBau*', version: '2.6', namespace: 'http://www.xleitstelle.de/xbau/2/6', xsd: [path.join(XBAU, 'xbau-nachrichten-baugenehmigung.xsd')] };
const xbeteiligungSet: SchemaSetConfig = { standard: 'XBeteiligung', version: '1.2', xsd: [path.join(REPO, 'schemas/xbeteiligung/1.2/xbeteiligung.xsd')] };
const config = (overrides: Partial<ValidationConfig> = {}): ValidationConfig => ({ schemas: [xbauSet, xbeteiligungSet], onMissingSchema: 'accept', maxViolations: 20, ...overrides });
const XBAU_KEY = { standard: 'XBau-Hochbau', version: '2.6', rootNamespace: 'http://www.xleitstelle.de/xbau/2/6' };

async function refusal(promise: Promise<unknown>): Promise<InputError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof InputError) return error;
    throw error;
  }
  throw new Error('expected a refusal');
}

let validator: SchemaValidator;
beforeAll(async () => {
  validator = await SchemaValidator.start(config(), log);
});
afterAll(() => validator.close());

describe('valid messages', () => {
  it.each(['xbau-0200-antrag-muenchen.xml', 'xbau-0200-antrag-augsburg.xml', 'xbau-0202-antragGeaendert-augsburg.xml'])('%s is valid against XBau 2.6', async (file) => {
    expect(await validator.validateMessage(valid(file), XBAU_KEY)).toEqual([]);
  });

  it('an XBeteiligung 1.2 message is valid against its own set', async () => {
    const message = readFileSync(path.join(FIXTURES, 'xbeteiligung/xbeteiligung-test-kommunal.Initiieren.0401.xml'));
    expect(await validator.validateMessage(message, { standard: 'XBeteiligung', version: '1.2', rootNamespace: 'https://www.xleitstelle.de/xbeteiligung/12' })).toEqual([]);
  });

  it('text and bytes in another declared encoding validate alike', async () => {
    const text = valid(MUENCHEN).toString('utf8');
    expect(await validator.validateMessage(text, XBAU_KEY)).toEqual([]);
    const latin1 = Buffer.from(text.replace('encoding="UTF-8"', 'encoding="ISO-8859-1"'), 'latin1');
    expect(latin1.includes(Buffer.from('München'))).toBe(false);
    expect(await validator.validateMessage(latin1, XBAU_KEY)).toEqual([]);
  });
});

describe('invalid messages', () => {
  it('fixture d: leser without kennung is refused as schema-invalid naming line, path and the expected element', async () => {
    const body = readFileSync(path.join(FIXTURES, 'bad/d-schema-invalid-leser-without-kennung.xml'));
    const error = await refusal(checkAndValidate(body, DEFAULT_XML_LIMITS, { requireXoevHeader: true }, { validator }));
    expect(error.code).toBe('schema-invalid');
    expect(error.status).toBe(400);
    expect(error.extensions).toEqual({
      schema: 'XBau* 2.6',
      violationCount: 1,
      violations: [{ line: 16, path: '/xbau:baugenehmigung.antrag.0200/nachrichtenkopf.g2g/leser/name', message: "Element 'name': This element is not expected. Expected is ( kennung )." }],
    });
    expect(error.detail).toBe("1 violation of the XBau* 2.6 schema; first at line 16, /xbau:baugenehmigung.antrag.0200/nachrichtenkopf.g2g/leser/name: Element 'name': This element is not expected. Expected is ( kennung ).");
    expect(JSON.stringify(error)).not.toContain('Lokalbaukommission');
  });

  it('values the validator echoes (pattern, date, enumeration) are removed; names and the pattern stay', async () => {
    const text = valid(MUENCHEN).toString('utf8')
      .replace('<nachrichtenUUID>d3503a22-6b7d-4dc7-9319-b29f17c29b73</nachrichtenUUID>', '<nachrichtenUUID>Erika Mustermann</nachrichtenUUID>')
      .replace(/<erstellungszeitpunkt>[^<]*<\/erstellungszeitpunkt>/, '<erstellungszeitpunkt>Geheimweg 7</erstellungszeitpunkt>');
    expect(text).toContain('Erika Mustermann');
    const violations = await validator.validateMessage(text, XBAU_KEY);
    expect(violations.length).toBeGreaterThanOrEqual(2);
    const all = JSON.stringify(violations);
    expect(all).not.toContain('Erika');
    expect(all).not.toContain('Geheimweg');
    expect(violations.map((v) => v.path)).toEqual(expect.arrayContaining([
      '/xbau:baugenehmigung.antrag.0200/nachrichtenkopf.g2g/identifikation.nachricht/nachrichtenUUID',
      '/xbau:baugenehmigung.antrag.0200/nachrichtenkopf.g2g/identifikation.nachricht/erstellungszeitpunkt',
    ]));
    expect(all).toContain("Element 'nachrichtenUUID'");
    for (const violation of violations) expect(violation.line).toBeGreaterThan(0);
  });

  it('lists at most maxViolations, and counts all', async () => {
    const few = await SchemaValidator.start(config({ maxViolations: 2 }), log);
    try {
      // Every Anlage's filesize and hash broken: one violation each.
      const text = valid(MUENCHEN).toString('utf8').replace(/filesize="\d+"/g, 'filesize="viele"');
      const error = await refusal(few.checkSchema(text, XBAU_KEY));
      expect(error.extensions!.violationCount).toBe(4);
      expect(error.extensions!.violations).toHaveLength(2);
      expect(JSON.stringify(error)).not.toContain('viele');
    } finally {
      await few.close();
    }
  });

  it('a message of another standard against the wrong schema names the root', async () => {
    const mixed = await SchemaValidator.start(config({ schemas: [{ ...xbeteiligungSet, standard: '*', version: '*' }] }), log);
    try {
      const [violation] = await mixed.validateMessage(valid(MUENCHEN), XBAU_KEY);
      expect(violation!.message).toMatch(/No matching global declaration available for the validation root/);
    } finally {
      await mixed.close();
    }
  });
});

describe('messages without a configured schema', () => {
  const XDOMEA = { standard: 'xdomea', version: '3.0.0' };

  it('are accepted with onMissingSchema accept', async () => {
    expect(await validator.validateMessage('<a/>', XDOMEA)).toEqual([]);
  });

  it('are refused with schema-not-configured with onMissingSchema reject', async () => {
    const strict = await SchemaValidator.start(config({ onMissingSchema: 'reject' }), log);
    try {
      const error = await refusal(strict.validateMessage('<a/>', XDOMEA));
      expect(error.code).toBe('schema-not-configured');
      expect(error.detail).toBe('no schema is configured for standard "xdomea" version "3.0.0"');
      expect(await strict.validateMessage(valid(MUENCHEN), XBAU_KEY)).toEqual([]);
    } finally {
      await strict.close();
    }
  });
});

describe('compiling', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'schemas-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('several files of one namespace compile as one set covering all their message types', async () => {
    const files = ['xbau-nachrichten-baugenehmigung.xsd', 'xbau-nachrichten-vorbescheid.xsd', 'xbau-nachrichten-anzeige.xsd'].map((f) => path.join(XBAU, f));
    const all = await SchemaValidator.start(config({ schemas: [{ ...xbauSet, xsd: files }] }), log);
    try {
      expect(await all.validateMessage(valid(MUENCHEN), XBAU_KEY)).toEqual([]);
      const vorbescheid = '<xbau:vorbescheid.antrag.0210 xmlns:xbau="http://www.xleitstelle.de/xbau/2/6"/>';
      // Declared by the vorbescheid file: the (empty) message is checked against its content model.
      expect((await all.validateMessage(vorbescheid, XBAU_KEY))[0]!.message).toMatch(/^Element '\{http:\/\/www.xleitstelle.de\/xbau\/2\/6\}vorbescheid.antrag.0210': The attribute 'produkt' is required but missing/);
      // Declared by none of the three files.
      const statistik = '<xbau:statistik.meldung.1100 xmlns:xbau="http://www.xleitstelle.de/xbau/2/6"/>';
      expect((await all.validateMessage(statistik, XBAU_KEY))[0]!.message).toMatch(/No matching global declaration/);
    } finally {
      await all.close();
    }
  });

  it('a file that is no schema fails the start, naming the set and the file', async () => {
    const notASchema = path.join(FIXTURES, 'valid', MUENCHEN);
    await expect(SchemaValidator.start(config({ schemas: [xbeteiligungSet, { ...xbauSet, xsd: [notASchema] }] }), log))
      .rejects.toThrow(/^validation\.schemas\[1\] \(XBau\* 2\.6\): schema does not compile: .*/);
  });

  it('files of different namespaces in one set are refused', async () => {
    const files = [path.join(XBAU, 'xbau-nachrichten-baugenehmigung.xsd'), path.join(XBAU, 'xoev-code.xsd')];
    await expect(SchemaValidator.start(config({ schemas: [{ ...xbauSet, xsd: files }] }), log)).rejects.toThrow(/different target namespaces/);
  });

  it('never fetches from the network: an import from an HTTP server is not requested', async () => {
    let requests = 0;
    const server = http.createServer((_req, res) => {
      requests++;
      res.end('<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:other"><xs:element name="b"/></xs:schema>');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const xsd = path.join(dir, 'remote-import.xsd');
      writeFileSync(xsd, `<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:o="urn:other" targetNamespace="urn:t" elementFormDefault="qualified">
  <xs:import namespace="urn:other" schemaLocation="http://127.0.0.1:${port}/other.xsd"/>
  <xs:element name="a"><xs:complexType><xs:sequence><xs:element ref="o:b"/></xs:sequence></xs:complexType></xs:element>
</xs:schema>`);
      await expect(SchemaValidator.start(config({ schemas: [{ standard: 'T', version: '1', xsd: [xsd] }] }), log)).rejects.toThrow(/validation\.schemas\[0\] \(T 1\): schema does not compile/);
      expect(requests).toBe(0);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('a message cannot make the validator read local files (xsi:schemaLocation, XInclude are ignored)', async () => {
    const message = valid(MUENCHEN).toString('utf8').replace('standard="XBau-Hochbau"', `standard="XBau-Hochbau" xmlns:xi="http://www.w3.org/2001/XInclude" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="http://www.xleitstelle.de/xbau/2/6 file:///etc/passwd"`)
      .replace('</xbau:baugenehmigung.antrag.0200>', '<xi:include href="file:///etc/passwd" parse="text"/></xbau:baugenehmigung.antrag.0200>');
    const violations = await validator.validateMessage(message, XBAU_KEY);
    expect(violations).toHaveLength(1);
    expect(violations[0]!.path).toBe('/xbau:baugenehmigung.antrag.0200/xi:include');
    expect(JSON.stringify(violations)).not.toContain('root:');
  });
});

describe('worker', () => {
  it('after the worker died, the next message restarts it and validates', async () => {
    const own = await SchemaValidator.start(config(), log);
    try {
      await (own as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(await own.validateMessage(valid(MUENCHEN), XBAU_KEY)).toEqual([]);
    } finally {
      await own.close();
    }
  });

  it('validates the ~13 KB München message in a few milliseconds (compiled once)', async () => {
    const body = valid(MUENCHEN);
    for (let i = 0; i < 20; i++) await validator.validateMessage(body, XBAU_KEY);
    const runs = 200;
    const started = process.hrtime.bigint();
    for (let i = 0; i < runs; i++) await validator.validateMessage(body, XBAU_KEY);
    const perMessageMs = Number(process.hrtime.bigint() - started) / 1e6 / runs;
    console.log(`schema validation: ${perMessageMs.toFixed(2)} ms per message (${body.length} bytes, ${runs} runs, including the worker round trip)`);
    expect(perMessageMs).toBeLessThan(50);
  });
});

describe('cleanMessage', () => {
  it.each([
    ["Element 'code': [facet 'enumeration'] The value 'Müller' is not an element of the set {'a', 'b'}.\n", "Element 'code': [facet 'enumeration'] The value is not an element of the set {'a', 'b'}."],
    ["Element 'x': [facet 'pattern'] The value 'Erika M' is not accepted by the pattern '[0-9]+'.", "Element 'x': [facet 'pattern'] The value is not accepted by the pattern '[0-9]+'."],
    ["Element 'x': [facet 'maxLength'] The value 'ab cd' has a length of '5'; this exceeds the allowed maximum length of '2'.", "Element 'x': [facet 'maxLength'] The value has a length of '5'; this exceeds the allowed maximum length of '2'."],
    ["Element 'd': 'Geheimweg 7' is not a valid value of the atomic type 'xs:date'.", "Element 'd': the value is not a valid value of the atomic type 'xs:date'."],
    ["Element 'a', attribute 'filesize': 'it's 12' is not a valid value of the atomic type 'xs:integer'.", "Element 'a', attribute 'filesize': the value is not a valid value of the atomic type 'xs:integer'."],
    ["Element 'k': Duplicate key-sequence ['Müller', '1'] in unique identity-constraint 'u'.", "Element 'k': Duplicate key-sequence in unique identity-constraint 'u'."],
    ["Element 'name': This element is not expected. Expected is ( kennung ).", "Element 'name': This element is not expected. Expected is ( kennung )."],
  ])('%s', (raw, cleaned) => {
    expect(cleanMessage(raw)).toBe(cleaned);
  });
});
