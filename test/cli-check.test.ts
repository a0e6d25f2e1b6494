// `antragsrouter check` as a process: every missing secret reference is named (path and variable or file),
// no secret value is printed, and the exit code is non-zero; with all secrets present it passes.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const REPO = path.resolve(__dirname, '..');
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'cli-check-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const PRESENT = 'Vorhandenes-Geheimnis-9f8e';

function configFile(): string {
  const file = path.join(dir, 'antragsrouter.yaml');
  writeFileSync(file, `
mappingsDir: ${path.join(REPO, 'mappings')}
targets:
  lbk:
    adapter: http
    mapping: xml-passthrough
    config:
      url: https://lbk.example/antraege
      auth: { type: oauth2, tokenUrl: https://idp.example/token, clientId: router, clientSecret: { env: CHECK_CLIENT_SECRET } }
      tls:
        clientCertificate: { pkcs12: { file: ${path.join(dir, 'fehlt.p12')} }, passphrase: { env: CHECK_P12_PASSPHRASE } }
  boa:
    adapter: http
    mapping: xml-passthrough
    config:
      url: https://boa.example/in
      auth: { type: basic, username: router, password: { env: CHECK_PRESENT_PASSWORD } }
routes:
  - name: all
    deliver: [lbk, boa]
`);
  return file;
}

function check(env: Record<string, string>) {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('CHECK_')));
  return spawnSync(process.execPath, ['--import', 'tsx', path.join(REPO, 'src/cli.ts'), 'check', '--config', configFile()], { cwd: REPO, env: { ...clean, ...env }, encoding: 'utf8' });
}

it('names every missing secret by path and reference, prints no value, exits 3', () => {
  const result = check({ CHECK_PRESENT_PASSWORD: PRESENT });
  expect(result.status).toBe(3);
  const output = result.stdout + result.stderr;
  expect(result.stderr).toContain('3 secret(s) missing');
  expect(result.stderr).toContain('targets.lbk.config.auth.clientSecret: secret environment variable CHECK_CLIENT_SECRET is not set');
  expect(result.stderr).toContain(`targets.lbk.config.tls.clientCertificate.pkcs12: secret file ${path.join(dir, 'fehlt.p12')} cannot be read (ENOENT)`);
  expect(result.stderr).toContain('targets.lbk.config.tls.clientCertificate.passphrase: secret environment variable CHECK_P12_PASSPHRASE is not set');
  expect(output).not.toContain('CHECK_PRESENT_PASSWORD');
  expect(output).not.toContain(PRESENT);
});

it('passes with every secret present, without printing any', () => {
  writeFileSync(path.join(dir, 'fehlt.p12'), 'not really pkcs12, but present');
  const result = check({ CHECK_PRESENT_PASSWORD: PRESENT, CHECK_CLIENT_SECRET: 'cs-1234567', CHECK_P12_PASSPHRASE: 'pp-7654321' });
  expect(result.stderr).toBe('');
  expect(result.status).toBe(0);
  expect(result.stdout).toMatch(/OK — 1 routes, 2 targets/);
  expect(result.stdout + result.stderr).not.toMatch(/Vorhandenes|cs-1234567|pp-7654321/);
});

it('start with a missing secret fails at once, naming the target and the variable', () => {
  const file = path.join(dir, 'start.yaml');
  writeFileSync(file, `
mappingsDir: ${path.join(REPO, 'mappings')}
store: { path: ${path.join(dir, 'store.db')} }
server: { port: 0 }
targets:
  boa:
    adapter: http
    mapping: xml-passthrough
    config: { url: "http://127.0.0.1:9/in", auth: { type: bearer, token: { env: CHECK_START_TOKEN } } }
routes:
  - { name: all, deliver: [boa] }
`);
  const clean = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('CHECK_') && key !== 'AMQP_URL' && key !== 'DATABASE_URL'));
  const result = spawnSync(process.execPath, ['--import', 'tsx', path.join(REPO, 'src/cli.ts'), 'start', '--config', file], { cwd: REPO, env: clean, encoding: 'utf8', timeout: 30_000 });
  expect(result.status).toBe(1);
  expect(result.stderr).toContain('target boa: secret environment variable CHECK_START_TOKEN is not set');
});
