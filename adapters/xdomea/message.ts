// The xdomea 3.0.0 message `Geschaeftsgang.Geschaeftsgang.0201` for one submission: the application
// (the mapped payload) is the main document, its attachments are the document's Anlagen, and one
// external Geschäftsgang step hands it to the receiving office. Built as a DOM with @xmldom/xmldom, so
// every value is escaped by the serializer. Ids are name-based UUIDs of submission and target, and the
// times come from the message, so a repeated attempt produces the same bytes.
import { createHash } from 'node:crypto';
import { DOMImplementation, XMLSerializer, type Document, type Element } from '@xmldom/xmldom';

export const XDOMEA_NS = 'urn:xoev-de:xdomea:schema:3.0.0';
export const MESSAGE_TYPE = 'Geschaeftsgang.Geschaeftsgang.0201';

/** A party in the Kopf and in the Verfügung. Everything optional; xdomea's KontaktType allows an empty contact. */
export interface Contact {
  /** DVDV-style id `praefix:schluessel` (e.g. `bab:09162000`): Praefix and Behoerdenschluessel. */
  behoerdenkennung?: string;
  /** Institution/Name. */
  institution?: string;
  /** Organisationseinheit/Name. */
  organisationseinheit?: string;
}

/** One file of the package, as listed in the message. */
export interface PackagedDocument {
  id: string;
  /** Name inside the ZIP: `<id>_<name>` (xdomea's stringDateinameType). */
  fileName: string;
  /** Name as the sender gave it. */
  originalName: string;
  /** File extension, lower case, without dot. */
  extension: string;
  /** Betreff of the document. */
  subject: string;
}

export interface MessageInput {
  processId: string;
  /** xs:dateTime of the message (the XÖV message's creation time). */
  createdAt: string;
  sender: Contact;
  recipient: Contact;
  system: { instanceId: string; product: string };
  receiptToInitiator: boolean;
  /** The application. */
  main: PackagedDocument & { reference?: string; type?: string };
  attachments: readonly PackagedDocument[];
  processStepId: string;
  instruction: string;
}

/** RFC 4122 name-based UUID (version 5 layout, SHA-1) of the given parts: stable for the same input. */
export function nameUuid(...parts: string[]): string {
  const hash = createHash('sha1').update(parts.join('\u0000')).digest();
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/** xdomea Dateiformat code list 1.0 (urn:xoev-de:xdomea:codeliste:dateiformat): extension → code; others are 100 (Sonstiges). */
const FILE_FORMATS: Record<string, string> = {
  bmp: '001', csv: '002', eml: '006', htm: '007', html: '008', jpe: '009', jpeg: '010', jpg: '011', msg: '012',
  odp: '013', ods: '014', odt: '015', pdf: '018', png: '019', ppt: '020', ps: '021', rtf: '022', tif: '023',
  tiff: '024', xls: '028', xml: '030', xsd: '031', docx: '035', xlsx: '036', pptx: '037', txt: '045',
};

class Builder {
  readonly document: Document;

  constructor(root: string) {
    this.document = new DOMImplementation().createDocument(XDOMEA_NS, `xdomea:${root}`, null);
  }

  get root(): Element {
    return this.document.documentElement!;
  }

  /** Appends `<xdomea:name>` (the code types' `code` child is unqualified) with optional text and attributes. */
  add(parent: Element, name: string, text?: string, attributes: Record<string, string> = {}): Element {
    const element = name === 'code' ? this.document.createElementNS(null, 'code') : this.document.createElementNS(XDOMEA_NS, `xdomea:${name}`);
    for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
    if (text !== undefined) element.appendChild(this.document.createTextNode(text));
    parent.appendChild(element);
    return element;
  }

  code(parent: Element, name: string, code: string, attributes: Record<string, string> = {}): Element {
    const element = this.add(parent, name, undefined, attributes);
    this.add(element, 'code', code);
    return element;
  }

  contact(parent: Element, name: string, contact: Contact): void {
    const element = this.add(parent, name);
    if (contact.behoerdenkennung) {
      const kennung = this.add(element, 'Behoerdenkennung');
      const colon = contact.behoerdenkennung.indexOf(':');
      const [prefix, key] = colon > 0 ? [contact.behoerdenkennung.slice(0, colon), contact.behoerdenkennung.slice(colon + 1)] : [undefined, contact.behoerdenkennung];
      this.code(kennung, 'Behoerdenschluessel', key);
      if (prefix) this.code(kennung, 'Praefix', prefix);
    }
    if (contact.institution) this.add(this.add(element, 'Institution'), 'Name', contact.institution);
    if (contact.organisationseinheit) this.add(this.add(element, 'Organisationseinheit'), 'Name', contact.organisationseinheit);
  }

  /** Identifikation, AllgemeineMetadaten, Typ and one Version with one Format and its Primaerdokument. */
  documentBody(element: Element, document: PackagedDocument & { reference?: string; type?: string }, createdAt: string): void {
    this.add(this.add(element, 'Identifikation'), 'ID', document.id);
    const metadata = this.add(element, 'AllgemeineMetadaten');
    this.add(metadata, 'Betreff', document.subject);
    if (document.reference) this.add(metadata, 'Kennzeichen', document.reference);
    if (document.type) this.add(element, 'Typ', document.type);
    const version = this.add(element, 'Version');
    this.add(version, 'Nummer', '1');
    const format = this.add(version, 'Format');
    const code = FILE_FORMATS[document.extension] ?? '100';
    this.code(format, 'Name', code, { listURI: 'urn:xoev-de:xdomea:codeliste:dateiformat', listVersionID: '1.0' });
    if (code === '100') this.add(format, 'SonstigerName', document.extension || 'unbekannt');
    this.add(format, 'Version', document.extension === 'xml' ? '1.0' : 'unbekannt');
    const primary = this.add(format, 'Primaerdokument');
    this.add(primary, 'Dateiname', document.fileName);
    this.add(primary, 'DateinameOriginal', document.originalName);
    this.add(primary, 'DatumUhrzeit', createdAt);
  }
}

/** The message XML (UTF-8, with declaration). */
export function buildMessage(input: MessageInput): Buffer {
  const b = new Builder(MESSAGE_TYPE);
  const root = b.root;

  const head = b.add(root, 'Kopf');
  b.add(head, 'ProzessID', input.processId);
  b.code(head, 'Nachrichtentyp', '0201', { listURI: 'urn:xoev-de:xdomea:codeliste:nachrichtentyp', listVersionID: '2.0' });
  b.add(head, 'Erstellungszeitpunkt', input.createdAt);
  b.contact(head, 'Absender', input.sender);
  b.contact(head, 'Empfaenger', input.recipient);
  const system = b.add(head, 'SendendesSystem');
  b.add(system, 'InstanzID', input.system.instanceId);
  b.add(system, 'Produktname', input.system.product);
  b.add(head, 'EmpfangsbestaetigungAnInitiator', String(input.receiptToInitiator));
  b.add(head, 'EmpfangsbestaetigungAnVorgaenger', 'false');

  const main = b.add(b.add(root, 'Hauptobjekt'), 'Dokument');
  b.documentBody(main, input.main, input.createdAt);
  input.attachments.forEach((attachment, index) => {
    const element = b.add(main, 'Anlage');
    b.documentBody(element, attachment, input.createdAt);
    b.add(element, 'Nummer', String(index + 1));
  });

  const process = b.add(root, 'ExternerGeschaeftsgang');
  b.add(b.add(process, 'Identifikation'), 'ID', input.processStepId);
  const step = b.add(process, 'Beteiligungsschritt');
  b.add(step, 'Nummer', '1');
  b.code(step, 'Status', '002', { listURI: 'urn:xoev-de:xdomea:codeliste:beteiligungsstatus', listVersionID: '1.1' });
  const order = b.add(step, 'Verfuegung');
  b.contact(order, 'Ersteller', input.sender);
  b.contact(order, 'Adressat', input.recipient);
  b.add(order, 'Erstellungsdatum', input.createdAt.slice(0, 10));
  b.add(order, 'Verfuegung', input.instruction);

  return Buffer.from(`<?xml version="1.0" encoding="UTF-8"?>\n${new XMLSerializer().serializeToString(b.document)}\n`, 'utf8');
}
