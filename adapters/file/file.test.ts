// The file adapter in real temporary directories: exact bytes under the templated name, atomic (no temp
// files left), idempotent (a repeat overwrites), safe names, and retryable failures.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import type { Adapter, DeliveryRequest } from '../../src/deliver/adapter';
import fileAdapter, { attachmentFileNames, fileNameFor } from './index';

const log = pino({ level: 'silent' });
const SUBMISSION = '0193a7c2-8e1f-7d3a-b5c4-2f6e8a9d0b1c';
const BODY = Buffer.concat([Buffer.from('<?xml version="1.0" encoding="ISO-8859-1"?>\r\n<a>M'), Buffer.from([0xfc, 0x00]), Buffer.from('ller</a>')]);

const request = (overrides: Partial<DeliveryRequest> = {}): DeliveryRequest => ({
  submissionId: SUBMISSION,
  target: 'augsburg-boa',
  idempotencyKey: `${SUBMISSION}:augsburg-boa`,
  attempt: 1,
  payload: { body: BODY, contentType: 'application/xml; charset=utf-8', extension: 'xml' },
  attachments: [],
  facts: { messageType: '0200', messageUuid: 'bd3e54e9-3338-413b-8b42-4ff955db9a0f' },
  log,
  ...overrides,
});

async function adapterFor(config: Record<string, unknown>): Promise<Adapter> {
  const adapter = fileAdapter.create(fileAdapter.configSchema.parse(config), { target: 'augsburg-boa', log });
  await adapter.connect();
  return adapter;
}

let root: string;
beforeEach(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'file-adapter-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe('deliver', () => {
  it('writes the exact bytes under the default name {submissionId}.{ext}', async () => {
    const adapter = await adapterFor({ directory: root });
    expect(await adapter.deliver(request())).toEqual({ status: 'delivered', reference: `${SUBMISSION}.xml`, detail: `${BODY.length} bytes` });
    expect(readdirSync(root)).toEqual([`${SUBMISSION}.xml`]);
    expect(readFileSync(path.join(root, `${SUBMISSION}.xml`)).equals(BODY)).toBe(true);
  });

  it('fills every placeholder of the template', async () => {
    const adapter = await adapterFor({ directory: root, fileName: '{target}_{messageType}_{messageUuid}_{submissionId}.{ext}' });
    const outcome = await adapter.deliver(request({ payload: { body: Buffer.from('{}'), contentType: 'application/json', extension: 'json' } }));
    const name = `augsburg-boa_0200_bd3e54e9-3338-413b-8b42-4ff955db9a0f_${SUBMISSION}.json`;
    expect(outcome).toEqual({ status: 'delivered', reference: name, detail: '2 bytes' });
    expect(readdirSync(root)).toEqual([name]);
    expect(readFileSync(path.join(root, name), 'utf8')).toBe('{}');
  });

  it('leaves no temporary files behind', async () => {
    const adapter = await adapterFor({ directory: root });
    for (let i = 0; i < 5; i++) await adapter.deliver(request({ submissionId: `s-${i}` }));
    expect(readdirSync(root).sort()).toEqual(['s-0.xml', 's-1.xml', 's-2.xml', 's-3.xml', 's-4.xml']);
  });

  it('a second delivery of the same submission overwrites: one file, the latest bytes', async () => {
    const adapter = await adapterFor({ directory: root });
    await adapter.deliver(request());
    const second = Buffer.from('<a>zweiter Versuch</a>');
    expect(await adapter.deliver(request({ attempt: 2, payload: { body: second, contentType: 'application/xml', extension: 'xml' } })))
      .toEqual({ status: 'delivered', reference: `${SUBMISSION}.xml`, detail: `${second.length} bytes` });
    expect(readdirSync(root)).toEqual([`${SUBMISSION}.xml`]);
    expect(readFileSync(path.join(root, `${SUBMISSION}.xml`)).equals(second)).toBe(true);
  });

  it('concurrent deliveries of the same submission end in one complete file', async () => {
    const adapter = await adapterFor({ directory: root });
    const bodies = [Buffer.alloc(64 * 1024, 'a'), Buffer.alloc(64 * 1024, 'b'), Buffer.alloc(64 * 1024, 'c')];
    const outcomes = await Promise.all(bodies.map((body) => adapter.deliver(request({ payload: { body, contentType: 'text/plain', extension: 'txt' } }))));
    expect(outcomes.map((o) => o.status)).toEqual(['delivered', 'delivered', 'delivered']);
    expect(readdirSync(root)).toEqual([`${SUBMISSION}.txt`]);
    const written = readFileSync(path.join(root, `${SUBMISSION}.txt`));
    expect(bodies.some((body) => body.equals(written))).toBe(true);
  });

  it('a value that would make a hidden or escaping name is rejected, nothing is written', async () => {
    const adapter = await adapterFor({ directory: path.join(root, 'out') });
    expect(await adapter.deliver(request({ submissionId: '../evil' }))).toEqual({ status: 'rejected', reason: 'file-write-failed', detail: 'file name template gives an unsafe name' });
    expect(readdirSync(root)).toEqual(['out']);
    expect(readdirSync(path.join(root, 'out'))).toEqual([]);
  });

  it('a value with ../ inside a name stays inside the directory', async () => {
    const adapter = await adapterFor({ directory: path.join(root, 'out'), fileName: 'antrag-{messageType}.{ext}' });
    const outcome = await adapter.deliver(request({ facts: { messageType: '../../evil' } }));
    expect(outcome).toEqual({ status: 'delivered', reference: 'antrag-.._.._evil.xml', detail: `${BODY.length} bytes` });
    expect(readdirSync(path.join(root, 'out'))).toEqual(['antrag-.._.._evil.xml']);
    expect(readdirSync(root)).toEqual(['out']);
  });
});

describe('attachmentFileNames', () => {
  it('keeps safe names, replaces unsafe characters and hidden prefixes, numbers repeats', () => {
    expect(attachmentFileNames([{ name: 'plan.pdf' }, { name: 'plan.pdf' }, { name: 'Grundriß EG.pdf' }, { name: '.htaccess' }, { name: 'plan.pdf' }, { name: '' }]))
      .toEqual(['plan.pdf', 'plan-2.pdf', 'Grundri__EG.pdf', '_htaccess', 'plan-3.pdf', 'attachment']);
  });
});

describe('fileNameFor', () => {
  it('fills placeholders; a missing value is empty', () => {
    expect(fileNameFor('{a}-{b}.{ext}', { a: 'x', ext: 'json' })).toBe('x-.json');
  });

  it('neutralises ../ and slashes in values', () => {
    expect(fileNameFor('out-{id}.xml', { id: '../../etc/passwd' })).toBe('out-.._.._etc_passwd.xml');
    expect(fileNameFor('out-{id}.xml', { id: '..\\..\\windows\\system32' })).toBe('out-.._.._windows_system32.xml');
    expect(fileNameFor('out-{id}.xml', { id: '/abs/path' })).toBe('out-_abs_path.xml');
  });

  it('replaces every other unsafe character', () => {
    expect(fileNameFor('{id}', { id: 'Müller & Söhne: 1/2\0' })).toBe('M_ller___S_hne__1_2_');
    expect(fileNameFor('{id}', { id: 'A-z_0.9' })).toBe('A-z_0.9');
  });

  it('refuses names that are hidden, empty or contain a separator', () => {
    expect(() => fileNameFor('{id}.xml', { id: '../x' })).toThrow('file name template gives an unsafe name');
    expect(() => fileNameFor('{id}', { id: '' })).toThrow('file name template gives an unsafe name');
    expect(() => fileNameFor('sub/{id}.xml', { id: 'x' })).toThrow('file name template gives an unsafe name');
    expect(() => fileNameFor('sub\\{id}.xml', { id: 'x' })).toThrow('file name template gives an unsafe name');
  });
});

describe('failures', () => {
  it('a missing directory with createDirectory false is a retryable file-write-failed', async () => {
    const directory = path.join(root, 'fehlt');
    const adapter = await adapterFor({ directory, createDirectory: false });
    expect(await adapter.deliver(request())).toEqual({ status: 'retryable', reason: 'file-write-failed', detail: 'ENOENT writing into the target directory' });
    expect(readdirSync(root)).toEqual([]);
  });

  it('a "directory" that is a file is a retryable file-write-failed', async () => {
    const directory = path.join(root, 'datei');
    writeFileSync(directory, 'x');
    const adapter = await adapterFor({ directory, createDirectory: false });
    expect(await adapter.deliver(request())).toEqual({ status: 'retryable', reason: 'file-write-failed', detail: 'ENOTDIR writing into the target directory' });
  });

  it('a directory that appears later works without reconnecting', async () => {
    const directory = path.join(root, 'spaeter');
    const adapter = await adapterFor({ directory, createDirectory: false });
    expect((await adapter.deliver(request())).status).toBe('retryable');
    mkdirSync(directory);
    expect((await adapter.deliver(request())).status).toBe('delivered');
    expect(readdirSync(directory)).toEqual([`${SUBMISSION}.xml`]);
  });
});

describe('connect', () => {
  it('creates a missing directory, nested', async () => {
    const directory = path.join(root, 'a', 'b', 'c');
    await adapterFor({ directory });
    expect(readdirSync(path.join(root, 'a', 'b'))).toEqual(['c']);
  });

  it('removes orphaned temp files of its own pattern, nothing else', async () => {
    writeFileSync(path.join(root, `.${SUBMISSION}.xml.0123456789ab.tmp`), 'half');
    writeFileSync(path.join(root, '.keep'), '');
    writeFileSync(path.join(root, 'fremd.tmp'), '');
    writeFileSync(path.join(root, `${SUBMISSION}.xml`), 'complete');
    await adapterFor({ directory: root });
    expect(readdirSync(root).sort()).toEqual(['.keep', `${SUBMISSION}.xml`, 'fremd.tmp']);
  });
});

describe('check', () => {
  it('ok for a writable directory', async () => {
    const adapter = await adapterFor({ directory: root });
    expect(await adapter.check()).toEqual({ ok: true });
  });

  it('not ok for a missing directory', async () => {
    const adapter = await adapterFor({ directory: path.join(root, 'fehlt'), createDirectory: false });
    expect(await adapter.check()).toEqual({ ok: false, detail: 'directory not writable (ENOENT)' });
  });
});

describe('configSchema', () => {
  it('fills defaults and refuses unknown keys', () => {
    expect(fileAdapter.configSchema.parse({ directory: '/x' })).toEqual({ directory: '/x', fileName: '{submissionId}.{ext}', createDirectory: true });
    expect(fileAdapter.configSchema.safeParse({ directory: '/x', mode: '0644' }).success).toBe(false);
    expect(fileAdapter.configSchema.safeParse({ directory: '' }).success).toBe(false);
  });
});
