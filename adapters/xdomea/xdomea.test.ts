// The xdomea adapter with the real `file` adapter as its transport, in temporary directories: the package
// holds the message and every document byte for byte, the message is valid against the xdomea 3.0.0 XSD
// (libxml2-wasm, and xmllint where installed), the facts land where the README says, repeats give the
// same package, and broken attachments, oversized packages and bad configurations fail as they should.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { DOMParser, type Element } from '@xmldom/xmldom';
import pino from 'pino';
import type { Adapter, DeliveryAttachment, DeliveryRequest } from '../../src/deliver/adapter';
import { SchemaValidator } from '../../src/envelope/schema-validation';
import { unzip } from '../../test/support/zip';
import xdomeaAdapter from './index';

const log = pino({ level: 'silent' });
const REPO = path.resolve(__dirname, '../..');
const XSD = path.join(REPO, 'schemas/xdomea/3.0.0/xdomea-Nachrichten-GeschaeftsgangDurchfuehren.xsd');
const MUENCHEN = readFileSync(path.join(REPO, 'test/fixtures/valid/xbau-0200-antrag-muenchen.xml'));
const ANLAGEN = path.join(REPO, 'test/fixtures/valid/anlagen/muenchen-0200');
const SUBMISSION = '0193a7c2-8e1f-4d3a-b5c4-2f6e8a9d0b1c';
const XDOMEA = 'urn:xoev-de:xdomea:schema:3.0.0';

const FACTS = {
  messageUuid: 'd3503a22-6b7d-4dc7-9319-b29f17c29b73', messageType: '0200', messageTypeName: 'baugenehmigung.antrag.0200',
  rootElement: 'baugenehmigung.antrag.0200', standard: 'XBau-Hochbau', version: '2.6', createdAt: '2026-11-20T14:32:07.000+01:00',
  reader: 'bab:09162000', author: 'ptl:0900000001', ags: '09162000',
};

function fileAttachment(file: string, id: string, override: Partial<DeliveryAttachment> = {}): DeliveryAttachment {
  const bytes = readFileSync(file);
  return {
    id, name: path.basename(file), mediaType: 'application/pdf', size: bytes.length,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    open: async () => createReadStream(file),
    ...override,
  };
}

const ATTACHMENTS = readdirSync(ANLAGEN).sort().map((name, i) => fileAttachment(path.join(ANLAGEN, name), `a${i + 1}`));

const request = (overrides: Partial<DeliveryRequest> = {}): DeliveryRequest => ({
  submissionId: SUBMISSION, target: 'muenchen-dms', idempotencyKey: `${SUBMISSION}/muenchen-dms`, attempt: 1,
  payload: { body: MUENCHEN, contentType: 'application/xml; charset=utf-8', extension: 'xml' },
  attachments: ATTACHMENTS, facts: FACTS, log, ...overrides,
});

let dir: string;
let validator: SchemaValidator;

const configFor = (extra: Record<string, unknown> = {}) => ({
  transport: { adapter: 'file', config: { directory: dir, fileName: '{submissionId}_Geschaeftsgang.Geschaeftsgang.0201.{ext}' } },
  sender: { institution: 'Bauantragsportal Bayern' },
  recipient: { institution: 'Landeshauptstadt München', organisationseinheit: 'Lokalbaukommission' },
  ...extra,
});

async function adapterFor(config: Record<string, unknown> = configFor()): Promise<Adapter> {
  const adapter = xdomeaAdapter.create(xdomeaAdapter.configSchema.parse(config), { target: 'muenchen-dms', log });
  await adapter.connect();
  return adapter;
}

const PACKAGE = `${SUBMISSION}_Geschaeftsgang.Geschaeftsgang.0201.zip`;
const MESSAGE = `${SUBMISSION}_Geschaeftsgang.Geschaeftsgang.0201.xml`;

beforeAll(async () => {
  validator = await SchemaValidator.start({ schemas: [{ standard: 'xdomea', version: '3.0.0', xsd: [XSD] }], onMissingSchema: 'reject', maxViolations: 20 }, log);
});
afterAll(() => validator.close());
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'xdomea-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('the package delivered through the file adapter', () => {
  let entries: Map<string, Buffer>;
  let message: Buffer;

  beforeEach(async () => {
    const adapter = await adapterFor();
    expect(await adapter.deliver(request())).toEqual({ status: 'delivered', reference: PACKAGE, detail: expect.stringMatching(/^\d+ bytes$/) });
    expect(readdirSync(dir)).toEqual([PACKAGE]);
    entries = await unzip(readFileSync(path.join(dir, PACKAGE)));
    message = entries.get(MESSAGE)!;
  });

  it('holds the message first, then the application and its attachments, byte-identical', () => {
    const names = [...entries.keys()];
    expect(names[0]).toBe(MESSAGE);
    expect(names).toHaveLength(2 + ATTACHMENTS.length);
    expect(names[1]).toMatch(/^[0-9a-f-]{36}_baugenehmigung\.antrag\.0200\.xml$/);
    expect(entries.get(names[1]!)!.equals(MUENCHEN)).toBe(true);
    ATTACHMENTS.forEach((attachment, i) => {
      const name = names[2 + i]!;
      expect(name.endsWith(`_${attachment.name}`)).toBe(true);
      const bytes = entries.get(name)!;
      expect(bytes.equals(readFileSync(path.join(ANLAGEN, attachment.name)))).toBe(true);
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(attachment.sha256);
    });
  });

  it('the message is valid against the xdomea 3.0.0 XSD (libxml2-wasm)', async () => {
    expect(await validator.validateMessage(message, { standard: 'xdomea', version: '3.0.0' })).toEqual([]);
  });

  const xmllint = (() => {
    try {
      execFileSync('xmllint', ['--version'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();
  (xmllint ? it : it.skip)('the message is valid against the xdomea 3.0.0 XSD (xmllint --schema, Debian libxml2-utils)', () => {
    const file = path.join(dir, 'message.xml');
    writeFileSync(file, message);
    expect(execFileSync('xmllint', ['--noout', '--nonet', '--schema', XSD, file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })).toBe('');
  });

  it('maps the submission facts into Kopf, Hauptobjekt and Geschäftsgang', () => {
    const document = new DOMParser().parseFromString(message.toString('utf8'), 'text/xml');
    const one = (parent: Element | typeof document, name: string) => parent.getElementsByTagNameNS(XDOMEA, name)[0] as Element;
    const text = (parent: Element | typeof document, ...names: string[]) => names.reduce<Element>((at, name) => one(at, name), parent as Element).textContent;
    const head = one(document, 'Kopf');
    expect(document.documentElement!.localName).toBe('Geschaeftsgang.Geschaeftsgang.0201');
    expect(text(head, 'ProzessID')).toBe(SUBMISSION);
    expect(one(head, 'Nachrichtentyp').getElementsByTagName('code')[0]!.textContent).toBe('0201');
    expect(text(head, 'Erstellungszeitpunkt')).toBe(FACTS.createdAt);
    const sender = one(head, 'Absender');
    expect(one(sender, 'Praefix').getElementsByTagName('code')[0]!.textContent).toBe('ptl');
    expect(one(sender, 'Behoerdenschluessel').getElementsByTagName('code')[0]!.textContent).toBe('0900000001');
    expect(text(sender, 'Institution', 'Name')).toBe('Bauantragsportal Bayern');
    const recipient = one(head, 'Empfaenger');
    expect(one(recipient, 'Praefix').getElementsByTagName('code')[0]!.textContent).toBe('bab');
    expect(one(recipient, 'Behoerdenschluessel').getElementsByTagName('code')[0]!.textContent).toBe('09162000');
    expect(text(recipient, 'Organisationseinheit', 'Name')).toBe('Lokalbaukommission');
    expect(text(head, 'SendendesSystem', 'InstanzID')).toBe('muenchen-dms');

    const main = one(one(document, 'Hauptobjekt'), 'Dokument');
    expect(text(main, 'AllgemeineMetadaten', 'Betreff')).toBe('baugenehmigung.antrag.0200');
    expect(text(main, 'AllgemeineMetadaten', 'Kennzeichen')).toBe(FACTS.messageUuid);
    expect(text(main, 'Typ')).toBe('XBau-Hochbau 2.6');
    // Every Primaerdokument names a file of the package; the application first, then the Anlagen in order.
    const files = [...(document.getElementsByTagNameNS(XDOMEA, 'Dateiname') as unknown as Element[])].map((e) => e.textContent);
    expect(files).toEqual([...entries.keys()].slice(1));
    const originals = [...(document.getElementsByTagNameNS(XDOMEA, 'DateinameOriginal') as unknown as Element[])].map((e) => e.textContent);
    expect(originals).toEqual(['baugenehmigung.antrag.0200.xml', ...ATTACHMENTS.map((a) => a.name)]);
    expect(main.getElementsByTagNameNS(XDOMEA, 'Anlage')).toHaveLength(ATTACHMENTS.length);

    const step = one(one(document, 'ExternerGeschaeftsgang'), 'Beteiligungsschritt');
    expect(text(step, 'Verfuegung', 'Erstellungsdatum')).toBe('2026-11-20');
    expect(text(step, 'Verfuegung', 'Verfuegung')).toBe('Zur Bearbeitung');
    expect(text(step, 'Verfuegung', 'Adressat', 'Institution', 'Name')).toBe('Landeshauptstadt München');
  });
});

describe('repeats and failures', () => {
  it('a repeated delivery writes the same package again: one file, the same bytes', async () => {
    const adapter = await adapterFor();
    await adapter.deliver(request());
    const first = readFileSync(path.join(dir, PACKAGE));
    expect((await adapter.deliver(request({ attempt: 2 }))).status).toBe('delivered');
    expect(readdirSync(dir)).toEqual([PACKAGE]);
    expect(readFileSync(path.join(dir, PACKAGE)).equals(first)).toBe(true);
  });

  it('without attachments the package holds the message and the application, still valid', async () => {
    const adapter = await adapterFor();
    await adapter.deliver(request({ attachments: [] }));
    const entries = await unzip(readFileSync(path.join(dir, PACKAGE)));
    expect(entries.size).toBe(2);
    expect(await validator.validateMessage(entries.get(MESSAGE)!, { standard: 'xdomea', version: '3.0.0' })).toEqual([]);
  });

  it('an attachment whose bytes do not match its hash fails retryably, naming its id only; nothing is written', async () => {
    const adapter = await adapterFor();
    const tampered = { ...ATTACHMENTS[1]!, open: async () => Readable.from([Buffer.alloc(ATTACHMENTS[1]!.size, 0x41)]) };
    const outcome = await adapter.deliver(request({ attachments: [ATTACHMENTS[0]!, tampered] }));
    expect(outcome).toMatchObject({ status: 'retryable', reason: 'xdomea-package-failed' });
    expect((outcome as { detail: string }).detail).toMatch(/^attachment a2: \d+ bytes with SHA-256/);
    expect((outcome as { detail: string }).detail).not.toContain(ATTACHMENTS[1]!.name);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('an attachment that cannot be opened fails retryably', async () => {
    const adapter = await adapterFor();
    const missing = { ...ATTACHMENTS[0]!, open: async () => createReadStream(path.join(dir, 'weg.pdf')) };
    expect(await adapter.deliver(request({ attachments: [missing] }))).toMatchObject({ status: 'retryable', reason: 'xdomea-package-failed' });
    expect(readdirSync(dir)).toEqual([]);
  });

  it('a package over maxPackageSize is rejected', async () => {
    const adapter = await adapterFor(configFor({ maxPackageSize: 4096 }));
    expect(await adapter.deliver(request())).toEqual({ status: 'rejected', reason: 'xdomea-package-too-large', detail: 'the package exceeds the limit of 4096 bytes' });
    expect(readdirSync(dir)).toEqual([]);
  });

  it('the transport outcome is passed on: a missing directory is file-write-failed, retryable', async () => {
    const adapter = await adapterFor(configFor({ transport: { adapter: 'file', config: { directory: path.join(dir, 'fehlt'), createDirectory: false } } }));
    expect(await adapter.check()).toEqual({ ok: false, detail: 'directory not writable (ENOENT)' });
    expect(await adapter.deliver(request())).toMatchObject({ status: 'retryable', reason: 'file-write-failed' });
  });
});

describe('configSchema', () => {
  it('validates the inner transport with its own schema, naming the path', () => {
    const result = xdomeaAdapter.configSchema.safeParse({ transport: { adapter: 'file', config: { directory: '' } } });
    expect(result.success).toBe(false);
    expect(result.error!.issues.map((i) => [i.path.join('.'), i.message])).toEqual([['transport.config.directory', expect.stringMatching(/>=1 characters|too small|at least/i)]]);
  });

  it('refuses an unknown transport and xdomea inside xdomea', () => {
    const unknown = xdomeaAdapter.configSchema.safeParse({ transport: { adapter: 'brieftaube' } });
    expect(unknown.error!.issues.map((i) => [i.path.join('.'), i.message])).toEqual([['transport.adapter', 'unknown adapter "brieftaube"']]);
    const nested = xdomeaAdapter.configSchema.safeParse({ transport: { adapter: 'xdomea' } });
    expect(nested.error!.issues.map((i) => i.path.join('.'))).toEqual(['transport.adapter']);
  });

  it('the http adapter works as transport as well', () => {
    const parsed = xdomeaAdapter.configSchema.parse({ transport: { adapter: 'http', config: { url: 'http://127.0.0.1:9/dms' } } });
    expect(parsed.transport.definition.name).toBe('http');
  });
});
