// readXoevFacts through checkMessage: the facts of the valid fixtures, every header variant (unqualified,
// qualified with arbitrary prefixes, default namespaces, XBau's privat2G) and each refusal of a bad header.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { InputError } from '../errors';
import { checkMessage } from './envelope';
import { DEFAULT_XML_LIMITS } from './xml-gate';
import type { XoevFacts } from './xoev-header';

const VALID = path.resolve(__dirname, '../../test/fixtures/valid');
const XBAU = 'http://www.xleitstelle.de/xbau/2/6';
const G2G = 'http://xoev.de/schemata/basisnachricht/g2g/1_1';
const BEHOERDE = 'http://xoev.de/schemata/basisnachricht/behoerde/1_1';

const facts = (body: Buffer | string): XoevFacts => checkMessage(Buffer.isBuffer(body) ? body : Buffer.from(body), DEFAULT_XML_LIMITS).facts;

function refusal(body: string): InputError {
  try {
    facts(body);
  } catch (error) {
    expect(error).toBeInstanceOf(InputError);
    return error as InputError;
  }
  throw new Error('the message was accepted');
}

describe('the valid fixtures', () => {
  const common = {
    rootNamespace: XBAU,
    standard: 'XBau-Hochbau',
    version: '2.6',
    test: false,
    header: 'nachrichtenkopf.g2g',
    headerNamespace: '',
    messageTypeName: undefined,
    messageTypeListUri: 'urn:xoev-de:xbau:codeliste:xbau-nachrichten',
    messageTypeListVersion: '4.0',
  };

  it('München 0200', () => {
    expect(facts(readFileSync(path.join(VALID, 'xbau-0200-antrag-muenchen.xml')))).toEqual({
      ...common,
      rootElement: 'baugenehmigung.antrag.0200',
      messageUuid: 'd3503a22-6b7d-4dc7-9319-b29f17c29b73',
      messageType: '0200',
      createdAt: '2026-11-20T09:14:03.512+01:00',
      reader: 'bab:09162000',
      author: 'ptl:0916200001',
    });
  });

  it('Augsburg 0200', () => {
    expect(facts(readFileSync(path.join(VALID, 'xbau-0200-antrag-augsburg.xml')))).toEqual({
      ...common,
      rootElement: 'baugenehmigung.antrag.0200',
      messageUuid: 'bd3e54e9-3338-413b-8b42-4ff955db9a0f',
      messageType: '0200',
      createdAt: '2026-11-19T15:42:17.004+01:00',
      reader: 'bab:09761000',
      author: 'ptl:0900000001',
    });
  });

  it('Augsburg 0202', () => {
    expect(facts(readFileSync(path.join(VALID, 'xbau-0202-antragGeaendert-augsburg.xml')))).toEqual({
      ...common,
      rootElement: 'baugenehmigung.antragGeaendert.0202',
      messageUuid: 'bde7fb14-e2f6-4049-a637-9752506c7845',
      messageType: '0202',
      createdAt: '2026-11-22T07:31:09.245+01:00',
      reader: 'bab:09761000',
      author: 'ptl:0900000001',
    });
  });
});

// The same message in several header variants. `p` is a function from local name to qualified name.
interface Variant {
  rootOpen: string;
  rootClose: string;
  header: string;
  identification: (name: string) => string;
  party: (name: string) => string;
  behoerde: (name: string) => string;
}

const UUID = '8F2C1A7E-5B3D-4C6A-9E0F-1A2B3C4D5E6F';

function build(v: Variant, options: { rootAttributes?: string; uuid?: string; typeCode?: string | null; typeName?: string; createdAt?: string; leser?: string | null; autor?: string | null } = {}) {
  const i = v.identification;
  const b = v.behoerde;
  const typeCode = options.typeCode === null ? '' : `<code>${options.typeCode ?? '0200'}</code>`;
  const typeName = options.typeName === undefined ? '' : `<name>${options.typeName}</name>`;
  const leser = options.leser === null ? '' : options.leser ?? `
      <${v.party('leser')}>
        <${b('verzeichnisdienst')} listURI="urn:xoev-de:kosit:codeliste:verzeichnisdienst" listVersionID="3"><code>DVDV</code></${b('verzeichnisdienst')}>
        <${b('kennung')}>bab:09162000</${b('kennung')}>
        <${b('name')}>Lokalbaukommission</${b('name')}>
      </${v.party('leser')}>`;
  const autor = options.autor === null ? '' : options.autor ?? `
      <${v.party('autor')}>
        <${b('verzeichnisdienst')}><code>DVDV</code></${b('verzeichnisdienst')}>
        <${b('kennung')}>ptl:0916200001</${b('kennung')}>
      </${v.party('autor')}>`;
  return `<?xml version="1.0" encoding="UTF-8"?>
${v.rootOpen.replace('>', ` ${options.rootAttributes ?? 'standard="XBau-Hochbau" version="2.6"'}>`)}
  <${v.header}>
    <${i('identifikation.nachricht')}>
      <${i('nachrichtenUUID')}>${options.uuid ?? UUID}</${i('nachrichtenUUID')}>
      <${i('nachrichtentyp')} listURI="urn:xoev-de:xbau:codeliste:xbau-nachrichten" listVersionID="4.0">${typeCode}${typeName}</${i('nachrichtentyp')}>
      <${i('erstellungszeitpunkt')}>${options.createdAt ?? '2026-11-20T09:14:03Z'}</${i('erstellungszeitpunkt')}>
    </${i('identifikation.nachricht')}>${leser}${autor}
  </${v.header.split(' ')[0]}>
  <xbau:antragsteller xmlns:xbau="${XBAU}"><natuerlichePerson><name>x</name></natuerlichePerson></xbau:antragsteller>
${v.rootClose}`;
}

const plain = (name: string) => name;
const UNQUALIFIED: Variant = {
  rootOpen: `<xbau:baugenehmigung.antrag.0200 xmlns:xbau="${XBAU}">`,
  rootClose: '</xbau:baugenehmigung.antrag.0200>',
  header: 'nachrichtenkopf.g2g',
  identification: plain,
  party: plain,
  behoerde: plain,
};
const QUALIFIED: Variant = {
  rootOpen: `<ns5:baugenehmigung.antrag.0200 xmlns:ns5="${XBAU}" xmlns:ns2="${G2G}" xmlns:ns3="${BEHOERDE}">`,
  rootClose: '</ns5:baugenehmigung.antrag.0200>',
  header: 'ns2:nachrichtenkopf.g2g',
  identification: (name) => `ns2:${name}`,
  party: (name) => `ns2:${name}`,
  behoerde: (name) => `ns3:${name}`,
};
/** The root in a default namespace, the header declaring the g2g namespace as its own default. */
const DEFAULT_NAMESPACES: Variant = {
  rootOpen: `<baugenehmigung.antrag.0200 xmlns="${XBAU}">`,
  rootClose: '</baugenehmigung.antrag.0200>',
  header: `nachrichtenkopf.g2g xmlns="${G2G}" xmlns:b="${BEHOERDE}"`,
  identification: plain,
  party: plain,
  behoerde: (name) => `b:${name}`,
};

const EXPECTED: XoevFacts = {
  rootElement: 'baugenehmigung.antrag.0200',
  rootNamespace: XBAU,
  standard: 'XBau-Hochbau',
  version: '2.6',
  test: false,
  header: 'nachrichtenkopf.g2g',
  headerNamespace: '',
  messageUuid: UUID.toLowerCase(),
  messageType: '0200',
  messageTypeName: undefined,
  messageTypeListUri: 'urn:xoev-de:xbau:codeliste:xbau-nachrichten',
  messageTypeListVersion: '4.0',
  createdAt: '2026-11-20T09:14:03Z',
  reader: 'bab:09162000',
  author: 'ptl:0916200001',
};

describe('header variants give the same facts', () => {
  it('unqualified header (the fixtures\' variant); the UUID is normalised to lower case', () => {
    expect(facts(build(UNQUALIFIED))).toEqual(EXPECTED);
  });

  it('qualified header with arbitrary prefixes (ns2 = g2g, ns3 = behoerde)', () => {
    expect(facts(build(QUALIFIED))).toEqual({ ...EXPECTED, headerNamespace: G2G });
  });

  it('qualified header with other prefixes gives identical facts', () => {
    const other: Variant = { ...QUALIFIED,
      rootOpen: QUALIFIED.rootOpen.replace(/ns2/g, 'kopf').replace(/ns3/g, 'beh'),
      header: 'kopf:nachrichtenkopf.g2g',
      identification: (name) => `kopf:${name}`,
      party: (name) => `kopf:${name}`,
      behoerde: (name) => `beh:${name}` };
    expect(facts(build(other))).toEqual(facts(build(QUALIFIED)));
  });

  it('default namespaces on root and header', () => {
    expect(facts(build(DEFAULT_NAMESPACES))).toEqual({ ...EXPECTED, headerNamespace: G2G });
  });

  it('the message type name when the sender gives one', () => {
    expect(facts(build(QUALIFIED, { typeName: 'baugenehmigung.antrag.0200' })).messageTypeName).toBe('baugenehmigung.antrag.0200');
  });

  it('XBau privat2G: leser from the g2g namespace, a private autor without verzeichnisdienst and kennung', () => {
    const privat: Variant = { ...UNQUALIFIED,
      rootOpen: `<xbau:baugenehmigung.antrag.0200 xmlns:xbau="${XBAU}" xmlns:g2g="${G2G}" xmlns:beh="${BEHOERDE}">`,
      header: 'nachrichtenkopf.privat2G',
      party: (name) => (name === 'leser' ? `g2g:${name}` : name),
      behoerde: (name) => `beh:${name}` };
    const autor = `
      <autor>
        <natuerlichePerson><name><familienname><name>Beispielhuber</name></familienname></name></natuerlichePerson>
      </autor>`;
    expect(facts(build(privat, { autor }))).toEqual({ ...EXPECTED, header: 'nachrichtenkopf.privat2G', author: undefined });
  });

  it('a header without leser and autor gives no reader and no author', () => {
    const result = facts(build(UNQUALIFIED, { leser: null, autor: null }));
    expect(result.reader).toBeUndefined();
    expect(result.author).toBeUndefined();
    expect(result.messageUuid).toBe(UUID.toLowerCase());
  });
});

describe('refusals', () => {
  it('no nachrichtenkopf → xoev-header-missing', () => {
    const error = refusal(`<xbau:baugenehmigung.antrag.0200 xmlns:xbau="${XBAU}" standard="XBau-Hochbau" version="2.6"><xbau:antragsteller/></xbau:baugenehmigung.antrag.0200>`);
    expect(error.code).toBe('xoev-header-missing');
    expect(error.detail).toBe('root element <baugenehmigung.antrag.0200> has no nachrichtenkopf child');
  });

  it('a nachrichtenkopf deeper than a child of the root does not count', () => {
    const nested = '<a><nachrichtenkopf.g2g><identifikation.nachricht><nachrichtenUUID>8f2c1a7e-5b3d-4c6a-9e0f-1a2b3c4d5e6f</nachrichtenUUID></identifikation.nachricht></nachrichtenkopf.g2g></a>';
    const error = refusal(`<r standard="s" version="1">${nested}</r>`);
    expect(error.code).toBe('xoev-header-missing');
    expect(error.detail).toBe('root element <r> has no nachrichtenkopf child');
  });

  it('a UUID that is not one → xoev-header-invalid', () => {
    const error = refusal(build(QUALIFIED, { uuid: 'not-a-uuid-0000' }));
    expect(error.code).toBe('xoev-header-invalid');
    expect(error.detail).toBe('nachrichtenkopf.g2g/identifikation.nachricht/nachrichtenUUID is not a UUID');
  });

  it('an empty UUID → xoev-header-incomplete naming the path', () => {
    const error = refusal(build(UNQUALIFIED, { uuid: '  ' }));
    expect(error.code).toBe('xoev-header-incomplete');
    expect(error.detail).toBe('nachrichtenkopf.g2g/identifikation.nachricht/nachrichtenUUID is missing or empty');
  });

  it('a nachrichtentyp without code → xoev-header-incomplete naming the path', () => {
    const error = refusal(build(QUALIFIED, { typeCode: null, typeName: 'baugenehmigung.antrag.0200' }));
    expect(error.code).toBe('xoev-header-incomplete');
    expect(error.detail).toBe('nachrichtenkopf.g2g/identifikation.nachricht/nachrichtentyp/code is missing or empty');
  });

  it('an erstellungszeitpunkt that is no xs:dateTime → xoev-header-invalid', () => {
    const error = refusal(build(UNQUALIFIED, { createdAt: '20.11.2026 09:14' }));
    expect(error.code).toBe('xoev-header-invalid');
    expect(error.detail).toBe('nachrichtenkopf.g2g/identifikation.nachricht/erstellungszeitpunkt is not an xs:dateTime');
  });

  it('an autor with verzeichnisdienst but no kennung → xoev-header-incomplete', () => {
    const autor = '<autor><verzeichnisdienst><code>DVDV</code></verzeichnisdienst><name>Portal</name></autor>';
    const error = refusal(build(UNQUALIFIED, { autor }));
    expect(error.code).toBe('xoev-header-incomplete');
    expect(error.detail).toBe('nachrichtenkopf.g2g/autor has no kennung');
  });

  it('a qualified leser without kennung → xoev-header-incomplete', () => {
    const leser = `<ns2:leser><ns3:name>Bauamt</ns3:name></ns2:leser>`;
    const error = refusal(build(QUALIFIED, { leser }));
    expect(error.code).toBe('xoev-header-incomplete');
    expect(error.detail).toBe('nachrichtenkopf.g2g/leser has no kennung');
  });

  it('no standard attribute on the root → xoev-attribute-missing', () => {
    const error = refusal(build(UNQUALIFIED, { rootAttributes: 'version="2.6"' }));
    expect(error.code).toBe('xoev-attribute-missing');
    expect(error.detail).toBe('root element <baugenehmigung.antrag.0200> has no standard attribute');
  });

  it('no version attribute on the root → xoev-attribute-missing', () => {
    const error = refusal(build(QUALIFIED, { rootAttributes: 'standard="XBau-Hochbau"' }));
    expect(error.code).toBe('xoev-attribute-missing');
    expect(error.detail).toBe('root element <baugenehmigung.antrag.0200> has no version attribute');
  });

  it('a namespaced attribute named standard does not count as the XÖV attribute', () => {
    const error = refusal(build(QUALIFIED, { rootAttributes: 'ns2:standard="XBau-Hochbau" version="2.6"' }));
    expect(error.code).toBe('xoev-attribute-missing');
    expect(error.detail).toBe('root element <baugenehmigung.antrag.0200> has no standard attribute');
  });
});

describe('the test attribute', () => {
  it('is false without the attribute', () => {
    expect(facts(build(UNQUALIFIED)).test).toBe(false);
  });

  it('sets test: true', () => {
    expect(facts(build(UNQUALIFIED, { rootAttributes: 'standard="XBau-Hochbau" version="2.6" test="true"' })).test).toBe(true);
  });

  it('sets test: true whatever its value: XÖV defines the attribute by its presence', () => {
    expect(facts(build(QUALIFIED, { rootAttributes: 'standard="XBau-Hochbau" version="2.6" test="Abnahme"' })).test).toBe(true);
  });
});

describe('xdomea 4 header: parties named without directory entry', () => {
  const XDOMEA = `<?xml version="1.0" encoding="UTF-8"?>
<xdomea:Aussonderung.Aussonderung.0503 xmlns:xdomea="urn:xoev-de:xdomea:schema:4.0.0" produkt="p" produkthersteller="h" standard="xdomea" version="4.0.0">
  <xdomea:nachrichtenkopf>
    <xdomea:identifikation.nachricht>
      <nachrichtenUUID>95b80307-d19c-11ef-a43a-005056871b7c</nachrichtenUUID>
      <nachrichtentyp listURI="urn:xoev-de:xdomea:codeliste:nachrichtentyp" listVersionID="3.0"><code>0503</code><name>Aussonderung.Aussonderung</name></nachrichtentyp>
      <erstellungszeitpunkt>2025-01-15T12:00:00.000Z</erstellungszeitpunkt>
    </xdomea:identifikation.nachricht>
    <xdomea:leser><xdomea:NameInstitution><xdomea:Name>Landesarchiv</xdomea:Name></xdomea:NameInstitution></xdomea:leser>
    <xdomea:autor><xdomea:NameInstitution><xdomea:Name>Stelle</xdomea:Name></xdomea:NameInstitution></xdomea:autor>
  </xdomea:nachrichtenkopf>
</xdomea:Aussonderung.Aussonderung.0503>`;

  it('is accepted without reader or author id', () => {
    expect(facts(XDOMEA)).toMatchObject({
      rootElement: 'Aussonderung.Aussonderung.0503', standard: 'xdomea', version: '4.0.0', header: 'nachrichtenkopf',
      messageUuid: '95b80307-d19c-11ef-a43a-005056871b7c', messageType: '0503', messageTypeName: 'Aussonderung.Aussonderung', reader: undefined, author: undefined,
    });
  });

  it('a party given with a verzeichnisdienst but without kennung is still refused', () => {
    const broken = XDOMEA.replace('<xdomea:leser>', '<xdomea:leser><verzeichnisdienst><code>DVDV</code></verzeichnisdienst>');
    expect(refusal(broken)).toMatchObject({ code: 'xoev-header-incomplete', detail: 'nachrichtenkopf/leser has no kennung' });
  });
});

describe('documents without XÖV header', () => {
  const FIM = '<?xml version="1.0"?><fim:S00000092 xmlns:fim="urn:example:fim" version="1.1"><fim:feld>x</fim:feld></fim:S00000092>';
  const headerless = (body: string, idempotencyKey?: string) => checkMessage(Buffer.from(body), DEFAULT_XML_LIMITS, { requireXoevHeader: false, idempotencyKey }).facts;

  it('are refused by default', () => {
    expect(refusal(FIM)).toMatchObject({ code: 'xoev-header-missing', detail: 'root element <S00000092> has no nachrichtenkopf child' });
  });

  it('where allowed, are identified by the body hash and typed by their root element', () => {
    const first = headerless(FIM);
    expect(first).toMatchObject({ rootElement: 'S00000092', rootNamespace: 'urn:example:fim', messageType: 'S00000092', version: '1.1', header: '' });
    expect(first.messageUuid).toBe(`sha256:${createHash('sha256').update(FIM).digest('hex')}`);
    expect(headerless(FIM.replace('>x<', '>y<')).messageUuid).not.toBe(first.messageUuid);
  });

  it('where allowed, take the sender’s Idempotency-Key, and refuse a malformed one', () => {
    expect(headerless(FIM, 'form-4711').messageUuid).toBe('key:form-4711');
    expect(() => headerless(FIM, 'with space')).toThrow('Idempotency-Key');
  });
});
