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

/** Extracts and checks the XÖV header facts; refuses a message whose header is missing or incomplete. */
export function readXoevFacts(outline: XmlOutline): XoevFacts {
  const { root, header } = outline;
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
  for (const party of ['leser', 'autor']) {
    // A party given as authority (with verzeichnisdienst) must name its kennung; XBau's private authors have neither.
    if (header.present.has(party) && (header.present.has(`${party}/verzeichnisdienst`) || party === 'leser') && !field(`${party}/kennung`)) {
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
