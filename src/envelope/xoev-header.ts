// Reads the routing facts of an XÖV message from the outline of the strict pass, by local names only,
// so that the qualified (basisnachricht/g2g/1_1), the unqualified header and XBau's own header types
// (Nachrichtenkopf.privat2G, .G2G, .G2privat) all work whatever prefixes the sender chose.
import { InputError } from '../errors';
import type { XmlOutline } from './xml-gate';

/** The facts every XÖV message carries. None of them is personal content. */
export interface XoevFacts {
  /** Local name of the root element, e.g. `baugenehmigung.antrag.0200`. */
  rootElement: string;
  rootNamespace: string;
  standard: string;
  version: string;
  /** True when the root carries the XÖV `test` attribute. */
  test: boolean;
  /** Local name and namespace of the header element (`nachrichtenkopf.g2g`, `nachrichtenkopf.privat2G`, ...). */
  header: string;
  headerNamespace: string;
  messageUuid: string;
  /** Message type code, e.g. `0200`. */
  messageType: string;
  /** Message type name if the sender gave one, e.g. `baugenehmigung.antrag.0200`. */
  messageTypeName?: string;
  messageTypeListUri?: string;
  messageTypeListVersion?: string;
  /** `erstellungszeitpunkt` as sent (xs:dateTime). */
  createdAt: string;
  /** DVDV reader id (`leser/kennung`), e.g. `bab:09162000`. */
  reader?: string;
  /** Author id (`autor/kennung`). Absent for private authors (XBau privat2G), who have no DVDV id. */
  author?: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const XS_DATETIME = /^-?\d{4,}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?$/;
const ID = 'identifikation.nachricht';

/** Per header type, the parties that are authorities (and so must carry a DVDV kennung). */
const AUTHORITY_PARTIES: Record<string, readonly string[]> = {
  'nachrichtenkopf.g2g': ['leser', 'autor'],
  'nachrichtenkopf.privat2g': ['leser'],
  'nachrichtenkopf.g2privat': ['autor'],
};

export interface HeaderOptions {
  /** Accept documents without an XÖV header (e.g. FIM data); refused with `xoev-header-missing` otherwise. */
  requireXoevHeader: boolean;
  /** Idempotency key the sender gave (HTTP `Idempotency-Key`), for documents without a header. */
  idempotencyKey?: string;
  /** SHA-256 of the body, hex: the idempotency key of a headerless document when the sender gave none. */
  bodySha256: () => string;
}

/**
 * Extracts and checks the XÖV header facts; refuses a message whose header is missing or incomplete.
 * A document without header, where allowed, gets facts from its root: the root element as message type,
 * the receipt time as creation time, the sender's idempotency key or the body's hash as message id.
 */
export function readXoevFacts(outline: XmlOutline, options: HeaderOptions = { requireXoevHeader: true, bodySha256: () => '' }): XoevFacts {
  const { root, header } = outline;
  if (!header && !options.requireXoevHeader) {
    const key = options.idempotencyKey?.trim();
    if (key !== undefined && !/^[\x21-\x7e]{1,200}$/.test(key)) throw new InputError('xoev-header-invalid', 'the Idempotency-Key header must be 1 to 200 visible ASCII characters');
    return {
      rootElement: root.localName,
      rootNamespace: root.namespace,
      standard: root.attributes.standard ?? '',
      version: root.attributes.version ?? '',
      test: root.attributes.test !== undefined,
      header: '',
      headerNamespace: '',
      messageUuid: key ? `key:${key}` : `sha256:${options.bodySha256()}`,
      messageType: root.localName,
      createdAt: new Date().toISOString(),
    };
  }
  if (!header) {
    throw new InputError('xoev-header-missing', `root element <${root.localName}> has no nachrichtenkopf child`);
  }
  const field = (path: string) => header.fields.get(path) || undefined;
  const required = (path: string) => {
    const value = field(path);
    if (!value) throw new InputError('xoev-header-incomplete', `${header.localName}/${path} is missing or empty`);
    return value;
  };
  const messageUuid = required(`${ID}/nachrichtenUUID`);
  if (!UUID.test(messageUuid)) throw new InputError('xoev-header-invalid', `${header.localName}/${ID}/nachrichtenUUID is not a UUID`);
  const messageType = required(`${ID}/nachrichtentyp/code`);
  const createdAt = required(`${ID}/erstellungszeitpunkt`);
  if (!XS_DATETIME.test(createdAt)) throw new InputError('xoev-header-invalid', `${header.localName}/${ID}/erstellungszeitpunkt is not an xs:dateTime`);
  for (const party of ['leser', 'autor'] as const) {
    // An authority (basisnachricht BehoerdeType) must name its kennung: the reader and author of a g2g
    // header, the reader of privat2G, the author of G2privat, and any party given with a verzeichnisdienst.
    // Others have none: XBau's private parties (xbauk:Akteur), xdomea 4's institutions by name.
    const authority = AUTHORITY_PARTIES[header.localName.toLowerCase()]?.includes(party) || header.present.has(`${party}/verzeichnisdienst`);
    if (header.present.has(party) && authority && !field(`${party}/kennung`)) {
      throw new InputError('xoev-header-incomplete', `${header.localName}/${party} has no kennung`);
    }
  }
  for (const attribute of ['standard', 'version']) {
    if (!root.attributes[attribute]) throw new InputError('xoev-attribute-missing', `root element <${root.localName}> has no ${attribute} attribute`);
  }
  return {
    rootElement: root.localName,
    rootNamespace: root.namespace,
    standard: root.attributes.standard!,
    version: root.attributes.version!,
    test: root.attributes.test !== undefined,
    header: header.localName,
    headerNamespace: header.namespace,
    messageUuid: messageUuid.toLowerCase(),
    messageType,
    messageTypeName: field(`${ID}/nachrichtentyp/name`),
    messageTypeListUri: header.attributes.get(`${ID}/nachrichtentyp@listURI`),
    messageTypeListVersion: header.attributes.get(`${ID}/nachrichtentyp@listVersionID`),
    createdAt,
    reader: field('leser/kennung'),
    author: field('autor/kennung'),
  };
}
