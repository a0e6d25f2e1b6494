// Loading adapters: built-ins, `adapters/<name>/`, and npm packages named by `targets.<t>.package`,
// resolved from the configuration file's directory (a package placed under its node_modules, as
// `npm install @city/...` beside the configuration leaves it).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { loadConfig } from '../config/load';
import { loadAdapters } from './registry';

const REPO = path.resolve(__dirname, '../..');
let deployment: string;

/** A CommonJS adapter package, as an integrator would publish it (zod is its own dependency; here it resolves from the repository). */
function writePackage(name: string, adapterName: string, exportStyle: 'default' | 'adapter' | 'module' = 'default') {
  const dir = path.join(deployment, 'node_modules', ...name.split('/'));
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, version: '1.0.0', main: 'lib/index.js' }));
  mkdirSync(path.join(dir, 'lib'));
  const definition = `{
  name: '${adapterName}',
  summary: 'Echo for tests',
  configSchema: z.strictObject({ prefix: z.string() }),
  defaultConcurrency: 2,
  create(config) {
    return {
      async connect() {},
      async deliver(request) { return { status: 'delivered', reference: config.prefix + request.submissionId }; },
      async check() { return { ok: true }; },
      async close() {},
    };
  },
}`;
  const exported = exportStyle === 'default' ? `exports.default = ${definition};` : exportStyle === 'adapter' ? `exports.adapter = ${definition};` : `module.exports = ${definition};`;
  writeFileSync(path.join(dir, 'lib', 'index.js'), `'use strict';\nconst { z } = require('zod');\n${exported}\n`);
}

beforeEach(() => {
  mkdirSync(path.join(REPO, 'var'), { recursive: true });
  deployment = mkdtempSync(path.join(REPO, 'var', 'registry-test-'));
});
afterEach(() => rmSync(deployment, { recursive: true, force: true }));

it('a target names an npm package: the configuration loads it and the adapter delivers', async () => {
  writePackage('@city/antragsrouter-adapter-echo', 'echo');
  const file = path.join(deployment, 'antragsrouter.yaml');
  writeFileSync(file, `mappingsDir: ${path.join(REPO, 'mappings')}
targets:
  dms:
    adapter: echo
    package: "@city/antragsrouter-adapter-echo"
    mapping: xml-passthrough
    config: { prefix: "DMS-" }
routes:
  - name: all
    deliver: [dms]
`);
  const config = loadConfig(file);
  const plan = config.targets.get('dms')!;
  expect(plan.adapter.name).toBe('echo');
  expect(plan.concurrency).toBe(2);
  const log = pino({ level: 'silent' });
  const adapter = plan.adapter.create(plan.adapterConfig, { target: 'dms', log });
  await adapter.connect();
  const outcome = await adapter.deliver({ submissionId: 's-1', target: 'dms', idempotencyKey: 's-1/dms', attempt: 1, payload: { body: Buffer.from('<a/>'), contentType: 'application/xml', extension: 'xml' }, attachments: [], facts: {}, log });
  expect(outcome).toEqual({ status: 'delivered', reference: 'DMS-s-1' });
});

it('the package config is validated by the package\'s schema', () => {
  writePackage('antragsrouter-adapter-echo', 'echo', 'module');
  const file = path.join(deployment, 'antragsrouter.yaml');
  writeFileSync(file, `mappingsDir: ${path.join(REPO, 'mappings')}
targets:
  dms: { adapter: echo, package: antragsrouter-adapter-echo, mapping: xml-passthrough, config: { prefix: 1 } }
routes:
  - { name: all, deliver: [dms] }
`);
  expect(() => loadConfig(file)).toThrow(/targets\.dms\.config\.prefix/);
});

it('exports as default, as `adapter` or as the module itself', () => {
  writePackage('pkg-default', 'a1', 'default');
  writePackage('pkg-named', 'a2', 'adapter');
  writePackage('pkg-module', 'a3', 'module');
  const registry = loadAdapters([{ name: 'a1', package: 'pkg-default' }, { name: 'a2', package: 'pkg-named' }, { name: 'a3', package: 'pkg-module' }], path.join(deployment, 'adapters'), deployment);
  expect([...registry.keys()]).toEqual(['a1', 'a2', 'a3']);
});

it('refuses a package that is not installed, is named differently, would replace a built-in, or differs between targets', () => {
  // All packages first: jest's resolver caches what it did not find.
  writePackage('pkg-echo', 'echo');
  writePackage('pkg-echo2', 'echo');
  const empty = path.join(deployment, 'node_modules', 'pkg-empty');
  mkdirSync(empty, { recursive: true });
  writeFileSync(path.join(empty, 'index.js'), 'exports.x = 1;');
  const dir = path.join(deployment, 'adapters');
  expect(() => loadAdapters([{ name: 'echo', package: '@city/fehlt' }], dir, deployment)).toThrow(/adapter package "@city\/fehlt" is not installed/);
  expect(() => loadAdapters([{ name: 'other', package: 'pkg-echo' }], dir, deployment)).toThrow(/adapter is named "echo", expected "other"/);
  expect(() => loadAdapters([{ name: 'http', package: 'pkg-echo' }], dir, deployment)).toThrow('adapter "http" is built in; a package cannot replace it (choose another name)');
  expect(() => loadAdapters([{ name: 'echo', package: 'pkg-echo' }, { name: 'echo', package: 'pkg-echo2' }], dir, deployment)).toThrow('adapter "echo" is given as package "pkg-echo" and as "pkg-echo2"');
  expect(() => loadAdapters([{ name: 'empty', package: 'pkg-empty' }], dir, deployment)).toThrow(/does not export an adapter definition/);
});

it('an adapter from the adapters directory, by name', () => {
  const dir = path.join(deployment, 'adapters');
  mkdirSync(path.join(dir, 'lokal'), { recursive: true });
  writeFileSync(path.join(dir, 'lokal', 'index.js'), `const { z } = require('zod');\nmodule.exports = { name: 'lokal', summary: 's', configSchema: z.strictObject({}), defaultConcurrency: 1, create() { return {}; } };\n`);
  expect(loadAdapters(['lokal', 'http'], dir).get('lokal')?.summary).toBe('s');
});
