// The xdomea adapter's counterpart for tests: an e-file / DMS import that reads a package as an importer
// would. The message must be valid against the xdomea 3.0.0 XSD (libxml2-wasm), every ZIP entry must be
// listed in it and every listed file present; then the Hauptobjekt's Primaerdokument is the application
// and each Anlage an attachment under its DateinameOriginal. The transport in front (HTTP server, directory)
// is the transport adapter's own counterpart.
import path from 'node:path';
import { createHash } from 'node:crypto';
import { DOMParser, type Element } from '@xmldom/xmldom';
import pino from 'pino';
import { SchemaValidator } from '../../src/envelope/schema-validation';
import type { ReceivedAttachment } from '../../src/testkit/conformance';
import { unzip } from '../../test/support/zip';
import { MESSAGE_TYPE, XDOMEA_NS } from './message';

const XSD = path.resolve(__dirname, '../../schemas/xdomea/3.0.0/xdomea-Nachrichten-GeschaeftsgangDurchfuehren.xsd');

export interface ImportedPackage {
  processId: string;
  /** The application (Hauptobjekt/Dokument's primary file). */
  payload: Buffer;
  attachments: ReceivedAttachment[];
}

const children = (parent: Element, name: string): Element[] =>
  Array.from(parent.childNodes).filter((node): node is Element => node.nodeType === 1 && (node as Element).localName === name && (node as Element).namespaceURI === XDOMEA_NS);

function child(parent: Element, ...names: string[]): Element {
  return names.reduce((at, name) => {
    const [found] = children(at, name);
    if (!found) throw new Error(`xdomea message: <${name}> missing under <${at.localName}>`);
    return found;
  }, parent);
}

const primary = (document: Element) => {
  const element = child(document, 'Version', 'Format', 'Primaerdokument');
  return { file: child(element, 'Dateiname').textContent ?? '', original: child(element, 'DateinameOriginal').textContent ?? '' };
};

export class XdomeaImport {
  private validator?: SchemaValidator;

  async start(): Promise<void> {
    this.validator = await SchemaValidator.start({ schemas: [{ standard: 'xdomea', version: '3.0.0', xsd: [XSD] }], onMissingSchema: 'reject', maxViolations: 20 }, pino({ level: 'silent' }));
  }

  async stop(): Promise<void> {
    await this.validator?.close();
    this.validator = undefined;
  }

  /** Reads one package; throws (naming the problem) where an importer would refuse it. */
  async read(zip: Buffer): Promise<ImportedPackage> {
    const entries = await unzip(zip);
    const messageName = [...entries.keys()].find((name) => name.endsWith(`_${MESSAGE_TYPE}.xml`));
    if (!messageName) throw new Error(`no ${MESSAGE_TYPE} message in the package`);
    const message = entries.get(messageName)!;
    const violations = await this.validator!.validateMessage(message, { standard: 'xdomea', version: '3.0.0' });
    if (violations.length) throw new Error(`the message is not valid xdomea 3.0.0: ${JSON.stringify(violations)}`);
    const root = new DOMParser().parseFromString(message.toString('utf8'), 'text/xml').documentElement as unknown as Element;
    const main = child(root, 'Hauptobjekt', 'Dokument');
    const file = (name: string) => {
      const bytes = entries.get(name);
      if (!bytes) throw new Error(`${name} is listed in the message but not in the package`);
      return bytes;
    };
    const mainFile = primary(main).file;
    const attachments = children(main, 'Anlage').map((anlage) => {
      const { file: name, original } = primary(anlage);
      const bytes = file(name);
      return { name: original, size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex'), file: name };
    });
    const listed = new Set([messageName, mainFile, ...attachments.map((a) => a.file)]);
    const unlisted = [...entries.keys()].filter((name) => !listed.has(name));
    if (unlisted.length) throw new Error(`${unlisted.length} file(s) in the package not listed in the message`);
    return {
      processId: child(root, 'Kopf', 'ProzessID').textContent ?? '',
      payload: file(mainFile),
      attachments: attachments.map(({ name, size, sha256 }) => ({ name, size, sha256 })),
    };
  }
}
