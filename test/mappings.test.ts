// Runs every mapping's test cases (mappings/<name>.test.yaml), exactly as `antragsrouter mapping test` does.
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { runMappingTests } from '../src/map/mapping-test';
import { REPO } from './support/harness';

const dir = path.join(REPO, 'mappings');
const testFiles = readdirSync(dir).filter((f) => f.endsWith('.test.yaml'));
const mappingFiles = readdirSync(dir).filter((f) => f.endsWith('.yaml') && !f.endsWith('.test.yaml'));

test('every mapping has test cases beside it', () => {
  expect(mappingFiles.length).toBeGreaterThan(0);
  expect(mappingFiles.filter((f) => !testFiles.includes(f.replace(/\.yaml$/, '.test.yaml')))).toEqual([]);
});

describe.each(testFiles)('%s', (file) => {
  const results = runMappingTests(path.join(dir, file));
  test.each(results.map((r) => [r.name, r] as const))('%s', (_name, result) => {
    expect(result.message).toBeUndefined();
    expect(result.passed).toBe(true);
  });
});
