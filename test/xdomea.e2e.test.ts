// xdomea end to end, in both modes (embedded; PostgreSQL + RabbitMQ): a message posted to the HTTP intake is routed to an `xdomea` target
// whose package goes out through the `file` adapter, and through an adapter loaded from the adapters
// directory (the delegation is generic: any transport adapter by name). The package's message validates
// against the xdomea 3.0.0 XSD and carries the posted message byte for byte.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { SchemaValidator } from '../src/envelope/schema-validation';
import { startBackOffice, type BackOffice } from '../src/demo/back-office';
import type { RunningRouter } from '../src/main';
import { cityConfig, eventually, FIXTURES, getStatus, MODES, post, REPO, startTestRouter, tempDir, variant } from './support/harness';
import { stopServices } from './support/services';
import { unzip } from './support/zip';

const XSD = path.join(REPO, 'schemas/xdomea/3.0.0/xdomea-Nachrichten-GeschaeftsgangDurchfuehren.xsd');

/** A minimal transport adapter in its own adapters directory: writes the payload it gets under `<submissionId>.<ext>`. */
function writeDropAdapter(adaptersDir: string): void {
  mkdirSync(path.join(adaptersDir, 'drop'), { recursive: true });
  writeFileSync(path.join(adaptersDir, 'drop', 'index.js'), `
const { z } = require(${JSON.stringify(require.resolve('zod'))});
const fs = require('node:fs');
const path = require('node:path');
module.exports.default = {
  name: 'drop', summary: 'test transport', defaultConcurrency: 1,
  configSchema: z.strictObject({ into: z.string().min(1) }),
  create(config) {
    return {
      async connect() { fs.mkdirSync(config.into, { recursive: true }); },
      async deliver(request) {
        const name = request.submissionId + '.' + request.payload.extension;
        fs.writeFileSync(path.join(config.into, name), request.payload.body);
        return { status: 'delivered', reference: 'drop:' + name };
      },
      async check() { return { ok: true }; },
      async close() {},
    };
  },
};
`);
}

afterAll(() => stopServices());

describe.each(MODES)('xdomea target through the router, %s mode', (mode) => {
  let backOffice: BackOffice;
  let router: RunningRouter;
  let validator: SchemaValidator;
  let dir: string;

  beforeAll(async () => {
    backOffice = await startBackOffice();
    dir = tempDir();
    const adaptersDir = path.join(dir, 'adapters');
    writeDropAdapter(adaptersDir);
    const base = cityConfig(dir, backOffice.url);
    const config = {
      ...base,
      adaptersDir,
      targets: {
        ...(base.targets as object),
        'augsburg-dms': { adapter: 'xdomea', mapping: 'xml-passthrough', config: {
          transport: { adapter: 'file', config: { directory: path.join(dir, 'dms'), fileName: '{submissionId}_Geschaeftsgang.Geschaeftsgang.0201.{ext}' } },
          recipient: { institution: 'Stadt Augsburg', organisationseinheit: 'Bauordnungsamt' },
        } },
        'augsburg-archiv': { adapter: 'xdomea', mapping: 'xml-passthrough', config: { transport: { adapter: 'drop', config: { into: path.join(dir, 'drop') } } } },
      },
      routes: [{ name: 'augsburg', match: { tenant: '09761000' }, deliver: ['augsburg-dms', 'augsburg-archiv'] }],
    };
    router = await startTestRouter(config, undefined, mode);
    validator = await SchemaValidator.start({ schemas: [{ standard: 'xdomea', version: '3.0.0', xsd: [XSD] }], onMissingSchema: 'reject', maxViolations: 20 }, pino({ level: 'silent' }));
  });

  afterAll(async () => {
    await router?.close();
    await backOffice?.close();
    await validator?.close();
  });

  test('the Augsburg application arrives as a valid xdomea package at both transports', async () => {
    const message = variant(readFileSync(path.join(FIXTURES, 'valid/xbau-0200-antrag-augsburg.xml'), 'utf8'));
    const answer = await post(router.url, message);
    expect(answer.status).toBe(202);
    const id = answer.json.submissionId as string;
    const status = await eventually(async () => {
      const s = await getStatus(router.url, id);
      return ['delivered', 'failed'].includes(s.state) && s;
    }, 15_000, 'delivery');
    expect(status.state).toBe('delivered');
    const references = Object.fromEntries(status.deliveries.map((d) => [d.target, d.reference]));
    expect(references).toEqual({ 'augsburg-dms': `${id}_Geschaeftsgang.Geschaeftsgang.0201.zip`, 'augsburg-archiv': `drop:${id}.zip` });

    for (const zip of [path.join(dir, 'dms', `${id}_Geschaeftsgang.Geschaeftsgang.0201.zip`), path.join(dir, 'drop', `${id}.zip`)]) {
      const entries = await unzip(readFileSync(zip));
      const [messageName, documentName] = [...entries.keys()];
      expect(messageName).toBe(`${id}_Geschaeftsgang.Geschaeftsgang.0201.xml`);
      expect(documentName).toMatch(/^[0-9a-f-]{36}_baugenehmigung\.antrag\.0200\.xml$/);
      expect(entries.get(documentName!)!.equals(Buffer.from(message))).toBe(true);
      const xml = entries.get(messageName!)!;
      expect(await validator.validateMessage(xml, { standard: 'xdomea', version: '3.0.0' })).toEqual([]);
      expect(xml.toString()).toContain(`<xdomea:ProzessID>${id}</xdomea:ProzessID>`);
      expect(xml.toString()).toContain('<code>09761000</code>');
    }
    expect(readdirSync(path.join(dir, 'dms'))).toEqual([`${id}_Geschaeftsgang.Geschaeftsgang.0201.zip`]);
  });
});
