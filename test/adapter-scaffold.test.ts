// `antragsrouter adapter new`: a freshly scaffolded adapter type-checks, passes the conformance suite
// unchanged (its own test, run by a separate jest process) and loads through the registry. Scaffolded
// into a temporary directory inside the repository (var/, ignored by git), removed afterwards.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadAdapters } from '../src/deliver/registry';
import { scaffoldAdapter } from '../src/scaffold/scaffold';

const REPO = path.resolve(__dirname, '..');
let adaptersDir: string;
beforeAll(() => {
  mkdirSync(path.join(REPO, 'var'), { recursive: true });
  adaptersDir = mkdtempSync(path.join(REPO, 'var', 'scaffold-test-'));
});
afterAll(() => rmSync(adaptersDir, { recursive: true, force: true }));

const run = (args: string[]) => spawnSync(process.execPath, args, { cwd: REPO, encoding: 'utf8', env: { ...process.env, FORCE_COLOR: '0' } });

describe('a scaffolded adapter', () => {
  let dir: string;
  beforeAll(() => {
    const result = run(['--import', 'tsx', 'src/cli.ts', 'adapter', 'new', 'stadt-dms', '--dir', path.relative(REPO, adaptersDir)]);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    dir = path.join(adaptersDir, 'stadt-dms');
  });

  it('has index.ts, a conformance test and a README, renamed, with imports that reach src/', () => {
    expect(readdirSync(dir).sort()).toEqual(['README.md', 'index.ts', 'stadt-dms.test.ts']);
    const index = readFileSync(path.join(dir, 'index.ts'), 'utf8');
    expect(index).toContain("name: 'stadt-dms'");
    expect(index).not.toContain('scaffold-template');
    const src = path.relative(dir, path.join(REPO, 'src')).split(path.sep).join('/');
    expect(index).toContain(`from '${src}/deliver/adapter'`);
    const test = readFileSync(path.join(dir, 'stadt-dms.test.ts'), 'utf8');
    expect(test).toContain(`from '${src}/testkit/conformance'`);
    expect(test).toContain("from './index'");
    expect(test).toContain('STADT_DMS_TEST_TOKEN');
    expect(readFileSync(path.join(dir, 'README.md'), 'utf8')).toMatch(/^# `stadt-dms` adapter/);
  });

  it('type-checks under the project\'s strict settings', () => {
    writeFileSync(path.join(adaptersDir, 'tsconfig.json'), JSON.stringify({ extends: path.join(REPO, 'tsconfig.json'), compilerOptions: { rootDir: REPO }, include: ['.'] }));
    const result = run([path.join(REPO, 'node_modules/typescript/bin/tsc'), '-p', path.join(adaptersDir, 'tsconfig.json'), '--noEmit']);
    expect(result.stdout + result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  it('passes the conformance suite unchanged (its own test file, in a separate jest run)', () => {
    const result = run([path.join(REPO, 'node_modules/jest/bin/jest.js'), '--ci', '--roots', dir]);
    const summary = /Tests:\s+(.*)/.exec(result.stderr)?.[1] ?? result.stderr.slice(-2000);
    expect(summary).toMatch(/^\d+ passed, \d+ total$/);
    expect(Number(/^(\d+) passed/.exec(summary)?.[1])).toBeGreaterThanOrEqual(12);
    expect(result.stderr).toContain('adapter conformance: stadt-dms');
    expect(result.status).toBe(0);
  });

  it('loads through the registry from the adapters directory', () => {
    const registry = loadAdapters(['stadt-dms'], adaptersDir);
    expect(registry.get('stadt-dms')?.configSchema.safeParse({ url: 'https://dms.example/in' }).success).toBe(true);
  });
});

describe('refusals', () => {
  it('a bad name, a built-in name, an existing directory', () => {
    expect(() => scaffoldAdapter('Stadt DMS', adaptersDir)).toThrow('adapter name "Stadt DMS": use lower-case letters');
    expect(() => scaffoldAdapter('http', adaptersDir)).toThrow('adapter name "http" is built in');
    scaffoldAdapter('zweimal', adaptersDir);
    expect(() => scaffoldAdapter('zweimal', adaptersDir)).toThrow(/exists already/);
  });
});
