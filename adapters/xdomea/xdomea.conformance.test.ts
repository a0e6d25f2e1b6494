// The xdomea adapter against the conformance suite, with three transports: http (a real HTTP server on
// loopback, src/testkit/http-back-office.ts), file (a real directory) and sftp (a real OpenSSH server,
// adapters/sftp/test-counterpart.ts). The transport's counterpart takes
// the ZIP; what "arrived" is what an e-file/DMS import reads from it (test-counterpart.ts): a package whose
// message is valid against the xdomea 3.0.0 XSD and lists every file, the application as the Hauptobjekt's
// document and each attachment under its original name. Outcomes are the transport's (the xdomea adapter
// hands them on), so 'reject' runs where the transport can refuse (HTTP 422), not with a directory.
//
// No holdAfter: the adapter contract hands a transport its payload as one buffer, so the package is built
// in memory (bounded by maxPackageSize, see the adapter's README) before the transport sends a byte.
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describeAdapterConformance, type ConformanceCounterpart } from '../../src/testkit/conformance';
import { HttpBackOffice } from '../../src/testkit/http-back-office';
import { dropFolderCounterpart, OpenSshServer } from '../sftp/test-counterpart';
import xdomeaAdapter from './index';
import { buildMessage, MESSAGE_TYPE, nameUuid } from './message';
import { buildPackage } from './package';
import { XdomeaImport } from './test-counterpart';

const dms = new XdomeaImport();

/**
 * The transport's counterpart with the DMS import behind it: what arrived is what the import reads from
 * the packages the transport received (each keeps the transport's key). Outcomes and 'reject' are the
 * transport's. No holdAfter (see above).
 */
function behindDms(transport: ConformanceCounterpart): ConformanceCounterpart {
  return {
    async start() {
      await dms.start();
      await transport.start();
    },
    async stop() {
      await transport.stop();
      await dms.stop();
    },
    behave: (mode) => transport.behave(mode),
    async received() {
      return Promise.all((await transport.received()).map(async ({ key, payload }) => {
        const read = await dms.read(payload);
        return { key, payload: read.payload, attachments: read.attachments };
      }));
    },
    reset: () => transport.reset(),
    canReject: transport.canReject,
    // Passed on when asked: a counterpart may know its secrets only once started.
    get secrets() {
      return transport.secrets;
    },
  };
}

const xdomeaConfig = (transport: { adapter: string; config: Record<string, unknown> }) => ({
  transport,
  sender: { behoerdenkennung: 'ptl:0900000001', institution: 'antragsrouter' },
  recipient: { behoerdenkennung: 'bab:09162000', institution: 'Lokalbaukommission' },
});

const web = new HttpBackOffice();
describeAdapterConformance({
  label: 'over http',
  definition: xdomeaAdapter,
  config: () => xdomeaConfig({ adapter: 'http', config: { url: `${web.url}/dms/import` } }),
  counterpart: behindDms(web),
});

let root: string;
const inbox = () => path.join(root, 'dms-eingang');
describeAdapterConformance({
  label: 'over file',
  definition: xdomeaAdapter,
  config: () => xdomeaConfig({ adapter: 'file', config: { directory: inbox(), createDirectory: false } }),
  counterpart: behindDms({
    async start() {
      root = mkdtempSync(path.join(os.tmpdir(), 'xdomea-conformance-'));
    },
    async stop() {
      rmSync(root, { recursive: true, force: true });
    },
    behave(mode) {
      if (mode === 'accept') mkdirSync(inbox(), { recursive: true });
      else rmSync(inbox(), { recursive: true, force: true });
    },
    async received() {
      return readdirSync(inbox()).filter((name) => !name.startsWith('.')).map((name) => ({ key: name, payload: readFileSync(path.join(inbox(), name)), attachments: [] }));
    },
    reset() {
      rmSync(inbox(), { recursive: true, force: true });
      mkdirSync(inbox(), { recursive: true });
    },
    // A directory cannot refuse a file for good (as in the file adapter's own conformance test).
    canReject: false,
  }),
});

const sshd = new OpenSshServer();
describeAdapterConformance({
  label: 'over sftp',
  definition: xdomeaAdapter,
  config: () => xdomeaConfig({ adapter: 'sftp', config: sshd.adapterConfig() }),
  // Without the drop folder's holdAfter: the package is built before the upload starts.
  counterpart: behindDms(dropFolderCounterpart(sshd)),
});

describe('the DMS import used as counterpart refuses what an importer would', () => {
  const importer = new XdomeaImport();
  beforeAll(() => importer.start());
  afterAll(() => importer.stop());

  const PROCESS = '0193a7c2-8e1f-7d3a-b5c4-2f6e8a9d0b1c';
  const document = (name: string, extension: string) => {
    const id = nameUuid('p', name);
    return { id, fileName: `${id}_${name}`, originalName: name, extension, subject: name };
  };
  const main = document('antrag.xml', 'xml');
  const plan = document('lageplan.pdf', 'pdf');
  const message = buildMessage({
    processId: PROCESS, createdAt: '2026-11-20T14:32:07Z', sender: {}, recipient: {}, system: { instanceId: 't', product: 'antragsrouter' },
    receiptToInitiator: false, main, attachments: [plan], processStepId: nameUuid('p', 'schritt'), instruction: 'Zur Bearbeitung',
  });
  const zip = (entries: Array<[string, Buffer]>) => buildPackage(entries.map(([name, body]) => ({ name, body })), new Date('2026-11-20T14:32:07Z'), 1_000_000);
  const messageName = `${PROCESS}_${MESSAGE_TYPE}.xml`;
  const files: Array<[string, Buffer]> = [[main.fileName, Buffer.from('<antrag/>')], [plan.fileName, Buffer.from('%PDF-1.7')]];

  it('reads a complete, valid package', async () => {
    const read = await importer.read(await zip([[messageName, message], ...files]));
    expect(read.payload.toString()).toBe('<antrag/>');
    expect(read.attachments).toEqual([{ name: 'lageplan.pdf', size: 8, sha256: createHash('sha256').update('%PDF-1.7').digest('hex') }]);
  });

  it('refuses a message invalid against the XSD, a file not listed, a listed file missing', async () => {
    const invalid = Buffer.from(message.toString('utf8').replace(/<xdomea:Kopf>[\s\S]*<\/xdomea:Kopf>/, ''));
    await expect(importer.read(await zip([[messageName, invalid], ...files]))).rejects.toThrow('not valid xdomea 3.0.0');
    await expect(importer.read(await zip([[messageName, message], ...files, ['extra.txt', Buffer.from('x')]]))).rejects.toThrow('1 file(s) in the package not listed');
    await expect(importer.read(await zip([[messageName, message], files[0]!]))).rejects.toThrow(`${plan.fileName} is listed in the message but not in the package`);
  });
});
