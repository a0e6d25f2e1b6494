// Secret references: read from environment or file, reported by reference only.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { findMissingSecrets, findSecretRefs, readSecret, readSecretBytes, SecretMissingError } from './secret';

const dir = mkdtempSync(path.join(tmpdir(), 'antragsrouter-secret-'));

test('reads from an environment variable', () => {
  expect(readSecret({ env: 'SMTP_PASSWORD' }, { SMTP_PASSWORD: 's3cr3t' })).toBe('s3cr3t');
});

test('reads from a file, dropping one trailing newline', () => {
  const file = path.join(dir, 'token');
  writeFileSync(file, 'abc\n');
  expect(readSecret({ file })).toBe('abc');
  expect(readSecretBytes({ file }).toString()).toBe('abc\n');
});

test('a missing secret names the reference and never a value', () => {
  expect(() => readSecret({ env: 'NOPE' }, {})).toThrow(new SecretMissingError({ env: 'NOPE' }, 'is not set'));
  expect(() => readSecret({ env: 'NOPE' }, {})).toThrow('secret environment variable NOPE is not set');
  expect(() => readSecret({ file: path.join(dir, 'absent') })).toThrow(`secret file ${path.join(dir, 'absent')} cannot be read (ENOENT)`);
});

test('finds every reference in a configuration with its path', () => {
  const config = { targets: { a: { config: { auth: { password: { env: 'P' } }, list: [{ file: '/k' }], other: { env: 'X', extra: 1 } } } } };
  expect(findSecretRefs(config)).toEqual([
    { path: 'targets.a.config.auth.password', ref: { env: 'P' } },
    { path: 'targets.a.config.list.0', ref: { file: '/k' } },
  ]);
});

test('an empty secret file counts as missing', () => {
  const file = path.join(dir, 'empty');
  writeFileSync(file, '');
  expect(() => readSecretBytes({ file })).toThrow(`secret file ${file} is empty`);
});

test('findMissingSecrets names each unreadable reference by path and never a value', () => {
  const present = path.join(dir, 'present');
  writeFileSync(present, 'wert-der-nicht-erscheinen-darf');
  const config = { a: { password: { env: 'SET' }, token: { env: 'UNSET' } }, b: [{ file: present }, { file: path.join(dir, 'absent') }] };
  const missing = findMissingSecrets(config, ['targets'], { SET: 'auch-geheim' });
  expect(missing).toEqual([
    { path: 'targets.a.token', ref: { env: 'UNSET' }, problem: 'secret environment variable UNSET is not set' },
    { path: 'targets.b.1', ref: { file: path.join(dir, 'absent') }, problem: `secret file ${path.join(dir, 'absent')} cannot be read (ENOENT)` },
  ]);
  expect(JSON.stringify(missing)).not.toMatch(/wert-der|auch-geheim/);
});
