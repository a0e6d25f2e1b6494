// compileRouter with route configurations produced by the zod schema (so defaults apply), on the facts
// of the real fixtures; keys.ts normalises tenants (AGS/ARS) and Leistungsschlüssel.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Document } from '@xmldom/xmldom';
import { routeSchema, type RouteConfig } from '../config/schema';
import { parseDom } from '../envelope/dom';
import { checkMessage, type Facts } from '../envelope/envelope';
import { DEFAULT_XML_LIMITS } from '../envelope/xml-gate';
import { toAgs, toLeistung } from './keys';
import { compileRouter, type RouteInput } from './router';

const VALID = path.resolve(__dirname, '../../test/fixtures/valid');
const NS = { xbau: 'http://www.xleitstelle.de/xbau/2/6' };

function load(file: string, extra: Record<string, string | boolean | undefined> = {}): RouteInput {
  const checked = checkMessage(readFileSync(path.join(VALID, file)), DEFAULT_XML_LIMITS);
  let document: Document | undefined;
  return { facts: { ...checked.facts, ...extra }, document: () => (document ??= parseDom(checked.text)) };
}

const muenchen = (extra: Record<string, string | boolean | undefined> = {}) => load('xbau-0200-antrag-muenchen.xml', { ags: '09162000', ...extra });
const augsburg = (extra: Record<string, string | boolean | undefined> = {}) => load('xbau-0200-antrag-augsburg.xml', { ags: '09761000', ...extra });
const augsburg0202 = (extra: Record<string, string | boolean | undefined> = {}) => load('xbau-0202-antragGeaendert-augsburg.xml', { ags: '09761000', ...extra });

/** Routes as the configuration loader produces them. */
const routes = (...raw: unknown[]): RouteConfig[] => raw.map((r) => routeSchema.parse(r));
const router = (...raw: unknown[]) => compileRouter(routes(...raw), NS);
/** Input with facts only; the document must not be needed. */
const factsOnly = (facts: Facts): RouteInput => ({
  facts,
  document: () => {
    throw new Error('document requested');
  },
});

describe('keys', () => {
  it('toAgs: an AGS stays, an ARS gives Land+RB+Kreis and Gemeinde, anything else is undefined', () => {
    expect(toAgs('09162000')).toBe('09162000');
    expect(toAgs('091620000000')).toBe('09162000');
    expect(toAgs('097610000000')).toBe('09761000');
    // Land 09, RB 7, Kreis 72, Verband 5114, Gemeinde 151: the Verband digits are not part of the AGS
    expect(toAgs('097725114151')).toBe('09772151');
    expect(toAgs('0916200')).toBeUndefined();
    expect(toAgs('09162000a')).toBeUndefined();
  });

  it('toLeistung strips the LeiKa URN and whitespace', () => {
    expect(toLeistung('urn:de:fim:leika:leistung:99010003001006')).toBe('99010003001006');
    expect(toLeistung(' 99010003001006 ')).toBe('99010003001006');
  });
});

describe('compileRouter', () => {
  it('the schema fills the defaults: empty match, continue false', () => {
    expect(routeSchema.parse({ name: 'all', deliver: ['t'] })).toEqual({ name: 'all', match: {}, deliver: ['t'], continue: false });
  });

  it('a route without criteria matches everything', () => {
    expect(router({ name: 'all', deliver: ['archive'] }).decide(muenchen())).toEqual({ routes: ['all'], targets: [{ target: 'archive', route: 'all' }] });
  });

  it('the first matching route wins', () => {
    const r = router(
      { name: 'augsburg', match: { reader: 'bab:09761000' }, deliver: ['augsburg-bo'] },
      { name: 'bavaria', match: { reader: 'bab:09*' }, deliver: ['bavaria-bo'] },
      { name: 'fallback', deliver: ['archive'] },
    );
    expect(r.decide(augsburg())).toEqual({ routes: ['augsburg'], targets: [{ target: 'augsburg-bo', route: 'augsburg' }] });
    expect(r.decide(muenchen())).toEqual({ routes: ['bavaria'], targets: [{ target: 'bavaria-bo', route: 'bavaria' }] });
    expect(r.decide(factsOnly({ reader: 'bab:01001000' }))).toEqual({ routes: ['fallback'], targets: [{ target: 'archive', route: 'fallback' }] });
  });

  it('continue: true fans out to the following routes', () => {
    const r = router(
      { name: 'copy', deliver: ['archive'], continue: true },
      { name: 'muenchen', match: { reader: 'bab:09162000' }, deliver: ['lbk'] },
      { name: 'never', deliver: ['other'] },
    );
    expect(r.decide(muenchen())).toEqual({
      routes: ['copy', 'muenchen'],
      targets: [{ target: 'archive', route: 'copy' }, { target: 'lbk', route: 'muenchen' }],
    });
    expect(r.decide(augsburg())).toEqual({
      routes: ['copy', 'never'],
      targets: [{ target: 'archive', route: 'copy' }, { target: 'other', route: 'never' }],
    });
  });

  it('a target named twice is delivered once, recorded for the first route that named it', () => {
    const r = router(
      { name: 'first', deliver: ['archive', 'lbk', 'archive'], continue: true },
      { name: 'second', deliver: ['lbk', 'audit'] },
    );
    expect(r.decide(muenchen())).toEqual({
      routes: ['first', 'second'],
      targets: [{ target: 'archive', route: 'first' }, { target: 'lbk', route: 'first' }, { target: 'audit', route: 'second' }],
    });
  });

  it('no match gives an empty decision', () => {
    const r = router({ name: 'nuernberg', match: { reader: 'bab:09564000' }, deliver: ['nbg'] });
    expect(r.decide(muenchen())).toEqual({ routes: [], targets: [] });
  });

  it('all criteria of a route must hold; a list means any of its values', () => {
    const r = router({ name: 'r', match: { reader: ['bab:09162000', 'bab:09761000'], messageType: '0202' }, deliver: ['t'] });
    expect(r.decide(augsburg0202()).routes).toEqual(['r']);
    expect(r.decide(augsburg()).routes).toEqual([]);
    expect(r.decide(muenchen()).routes).toEqual([]);
  });

  describe('tenant', () => {
    it('a tenant given as AGS matches the AGS fact and the ARS fact', () => {
      const r = router({ name: 'm', match: { tenant: '09162000' }, deliver: ['t'] });
      expect(r.decide(factsOnly({ ags: '09162000' })).routes).toEqual(['m']);
      expect(r.decide(factsOnly({ ars: '091620000000' })).routes).toEqual(['m']);
      expect(r.decide(factsOnly({ ags: '09761000' })).routes).toEqual([]);
    });

    it('a tenant given as ARS matches the AGS fact and the ARS fact', () => {
      const r = router({ name: 'a', match: { tenant: ['091620000000', '097610000000'] }, deliver: ['t'] });
      expect(r.decide(augsburg()).routes).toEqual(['a']);
      expect(r.decide(factsOnly({ ars: '097610000000' })).routes).toEqual(['a']);
      expect(r.decide(factsOnly({ ags: '09564000' })).routes).toEqual([]);
    });

    it('without an AGS/ARS fact, or with a malformed one, a tenant criterion does not match', () => {
      const r = router({ name: 'm', match: { tenant: '09162000' }, deliver: ['t'] });
      expect(r.decide(factsOnly({ reader: 'bab:09162000' })).routes).toEqual([]);
      expect(r.decide(factsOnly({ ags: '9162000' })).routes).toEqual([]);
    });

    it('a malformed AGS fact falls back to the ARS fact', () => {
      const r = router({ name: 'm', match: { tenant: '09162000' }, deliver: ['t'] });
      expect(r.decide(factsOnly({ ags: 'unbekannt', ars: '091620000000' })).routes).toEqual(['m']);
    });

    it('the schema refuses a tenant that is neither AGS nor ARS', () => {
      expect(() => routeSchema.parse({ name: 'x', match: { tenant: '0916200' }, deliver: ['t'] })).toThrow('an AGS has 8 digits, an ARS 12');
    });
  });

  describe('leistung', () => {
    const KEY = '99010003001006';

    it('a bare key in the route matches a URN fact and a bare fact', () => {
      const r = router({ name: 'l', match: { leistung: KEY }, deliver: ['t'] });
      expect(r.decide(factsOnly({ leistung: `urn:de:fim:leika:leistung:${KEY}` })).routes).toEqual(['l']);
      expect(r.decide(factsOnly({ leistung: KEY })).routes).toEqual(['l']);
    });

    it('a URN in the route matches a bare fact', () => {
      const r = router({ name: 'l', match: { leistung: `urn:de:fim:leika:leistung:${KEY}` }, deliver: ['t'] });
      expect(r.decide(factsOnly({ leistung: KEY })).routes).toEqual(['l']);
      expect(r.decide(factsOnly({ leistung: '99010003001007' })).routes).toEqual([]);
      expect(r.decide(factsOnly({})).routes).toEqual([]);
    });
  });

  describe('reader', () => {
    it('a glob bab:* matches every building authority and nothing else', () => {
      const r = router({ name: 'bab', match: { reader: 'bab:*' }, deliver: ['t'] });
      expect(r.decide(muenchen()).routes).toEqual(['bab']);
      expect(r.decide(augsburg()).routes).toEqual(['bab']);
      expect(r.decide(factsOnly({ reader: 'ptl:0916200001' })).routes).toEqual([]);
      expect(r.decide(factsOnly({ reader: 'xbab:09162000' })).routes).toEqual([]);
      expect(r.decide(factsOnly({})).routes).toEqual([]);
    });

    it('regex characters in a pattern are literal', () => {
      const r = router({ name: 'dot', match: { reader: 'bab.0916*' }, deliver: ['t'] });
      expect(r.decide(factsOnly({ reader: 'bab.09162000' })).routes).toEqual(['dot']);
      expect(r.decide(factsOnly({ reader: 'bab:09162000' })).routes).toEqual([]);
    });

    it('without a glob the value must be equal', () => {
      const r = router({ name: 'm', match: { reader: 'bab:0916200' }, deliver: ['t'] });
      expect(r.decide(muenchen()).routes).toEqual([]);
    });
  });

  describe('messageType', () => {
    it('matches the code', () => {
      const r = router({ name: 'c', match: { messageType: '0202' }, deliver: ['t'] });
      expect(r.decide(augsburg0202()).routes).toEqual(['c']);
      expect(r.decide(augsburg()).routes).toEqual([]);
    });

    it('matches the name given in the header', () => {
      const r = router({ name: 'n', match: { messageType: 'kommunal.Initiieren.0401' }, deliver: ['t'] });
      expect(r.decide(factsOnly({ messageType: '0401', messageTypeName: 'kommunal.Initiieren.0401' })).routes).toEqual(['n']);
    });

    it('matches the name as root element when the header gives no name (the fixtures)', () => {
      const r = router({ name: 'n', match: { messageType: 'baugenehmigung.antrag.*' }, deliver: ['t'] });
      expect(r.decide(muenchen()).routes).toEqual(['n']);
      expect(r.decide(augsburg0202()).routes).toEqual([]);
    });
  });

  it('rootElement, standard and version compare the facts', () => {
    const r = router({ name: 'x', match: { rootElement: 'baugenehmigung.antragGeaendert.0202', standard: 'XBau-*', version: '2.6' }, deliver: ['t'] });
    expect(r.decide(augsburg0202()).routes).toEqual(['x']);
    expect(r.decide(augsburg0202({ version: '2.5' })).routes).toEqual([]);
    expect(r.decide(augsburg()).routes).toEqual([]);
  });

  it('configured facts compare by name', () => {
    const r = router({ name: 'f', match: { facts: { verfahren: ['einfach', 'regulaer'] } }, deliver: ['t'] });
    expect(r.decide(factsOnly({ verfahren: 'regulaer' })).routes).toEqual(['f']);
    expect(r.decide(factsOnly({ verfahren: 'sonder' })).routes).toEqual([]);
    expect(r.decide(factsOnly({})).routes).toEqual([]);
  });

  describe('test flag', () => {
    const r = router(
      { name: 'tests', match: { test: true }, deliver: ['sandbox'] },
      { name: 'production', match: { test: false }, deliver: ['bo'] },
    );

    it('routes test messages to test routes only', () => {
      expect(r.decide(muenchen({ test: true })).routes).toEqual(['tests']);
    });

    it('routes other messages to production routes', () => {
      expect(r.decide(muenchen()).routes).toEqual(['production']);
    });
  });

  describe('xpath', () => {
    it('evaluates predicates with the namespace map', () => {
      const r = router(
        { name: 'gk4', match: { xpath: "/*/xbau:bauvorhaben/xbau:gegenstand/xbau:bauordnungsrechtlicheKlassifikation/xbau:gebaeudeklasse/code = '4'" }, deliver: ['sonderbau'] },
        { name: 'rest', deliver: ['regel'] },
      );
      expect(r.needsDocument).toBe(true);
      expect(r.decide(augsburg()).routes).toEqual(['gk4']);
      expect(r.decide(muenchen()).routes).toEqual(['rest']);
    });

    it('all expressions of a list must hold', () => {
      const r = router({ name: 'both', match: { xpath: ['count(/*/xbau:anlagen/anlage) > 3', "/*/xbau:antragsteller/organisation"] }, deliver: ['t'] });
      expect(r.decide(augsburg()).routes).toEqual(['both']);
      expect(r.decide(muenchen()).routes).toEqual([]);
    });

    it('sees the facts as variables, e.g. $reader', () => {
      const r = router({ name: 'self', match: { xpath: '/*/xbau:empfangendeStelle/kennung = $reader' }, deliver: ['t'] });
      expect(r.decide(muenchen()).routes).toEqual(['self']);
      expect(r.decide(augsburg()).routes).toEqual(['self']);
      // The same document addressed to someone else: the empfangende Stelle no longer is the reader.
      expect(r.decide(muenchen({ reader: 'bab:09761000' })).routes).toEqual([]);
    });

    it('an unset variable reads as the empty string', () => {
      const r = router({ name: 'v', match: { xpath: "$ars = ''" }, deliver: ['t'] });
      expect(r.decide(muenchen()).routes).toEqual(['v']);
      expect(r.decide(muenchen({ ars: '091620000000' })).routes).toEqual([]);
    });

    it('routing on facts alone never builds the document', () => {
      const r = router({ name: 'm', match: { reader: 'bab:*', messageType: '0200' }, deliver: ['t'] });
      expect(r.needsDocument).toBe(false);
      expect(r.decide(factsOnly({ reader: 'bab:09162000', messageType: '0200' })).routes).toEqual(['m']);
    });

    it('the document is built only when an XPath route is reached', () => {
      const r = router(
        { name: 'facts', match: { reader: 'bab:*' }, deliver: ['t'] },
        { name: 'xp', match: { xpath: '/*' }, deliver: ['u'] },
      );
      expect(r.decide(factsOnly({ reader: 'bab:09162000' })).routes).toEqual(['facts']);
      expect(() => r.decide(factsOnly({ reader: 'ptl:1' }))).toThrow('document requested');
    });

    it('an undefined prefix fails compilation naming the route', () => {
      expect(() => compileRouter(routes({ name: 'ok', deliver: ['t'] }, { name: 'bad', match: { xpath: ['/*', '/q:x'] }, deliver: ['t'] }), NS))
        .toThrow('routes[1].match: XPath "/q:x" uses prefix "q" which the namespace map does not define');
    });

    it('a syntax error fails compilation naming the route', () => {
      expect(() => compileRouter(routes({ name: 'bad', match: { xpath: '/*[' }, deliver: ['t'] }), NS)).toThrow(/^routes\[0\]\.match: invalid XPath "\/\*\["/);
    });
  });
});

describe('intelliForm criteria', () => {
  const deposit = (formId: string, target?: string) => factsOnly({ formId, ...(target === undefined ? {} : { 'parameter.for-routing-target': target }) });

  it('formId matches the deposit form id, with * globs', () => {
    const r = router({ name: 'lbk', match: { formId: 'test/LBK/*' }, deliver: ['lbk'] }, { name: 'rest', deliver: ['rest'] });
    expect(r.decide(deposit('test/LBK/Bauantrag-XBau')).routes).toEqual(['lbk']);
    expect(r.decide(deposit('test/RW/Supportformular')).routes).toEqual(['rest']);
    expect(r.decide(factsOnly({})).routes).toEqual(['rest']);
  });

  it('customParameters match the deposit custom parameters by key, any of the values', () => {
    const r = router(
      { name: 'lbk', match: { customParameters: { 'for-routing-target': ['XBau_Bauantrag_LBK', 'XBau_*_LBK'] } }, deliver: ['lbk'] },
      { name: 'rest', deliver: ['rest'] },
    );
    expect(r.decide(deposit('x', 'XBau_Bauantrag_LBK')).routes).toEqual(['lbk']);
    expect(r.decide(deposit('x', 'XBau_Abbruch_LBK')).routes).toEqual(['lbk']);
    expect(r.decide(deposit('x', 'WebserviceTest_Sync_Timeout')).routes).toEqual(['rest']);
    expect(r.decide(deposit('x')).routes).toEqual(['rest']);
  });

  it('both combine with the XÖV criteria', () => {
    const r = router({ name: 'lbk', match: { formId: 'test/LBK/*', messageType: '0200', tenant: '09162000' }, deliver: ['lbk'] }, { name: 'rest', deliver: ['rest'] });
    expect(r.decide(muenchen({ formId: 'test/LBK/Bauantrag-XBau' })).routes).toEqual(['lbk']);
    expect(r.decide(muenchen()).routes).toEqual(['rest']);
  });
});
