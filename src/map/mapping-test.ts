// Runs a mapping's test cases (`<name>.test.yaml` beside `<name>.yaml`): input XML → expected output.
// Used by `antragsrouter mapping test` and by `npm test`; needs no broker, store or server.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { checkMessage } from '../envelope/envelope';
import { parseDom } from '../envelope/dom';
import { DEFAULT_XML_LIMITS } from '../envelope/xml-gate';
import { describeIssues } from '../config/schema';
import { loadMapping, MappingError } from './mapping';

const testFileSchema = z.strictObject({
  /** Mapping file name without extension; default: this file's name without `.test.yaml`. */
  mapping: z.string().optional(),
  cases: z.array(z.strictObject({
    name: z.string().min(1),
    /** Input XML, relative to this test file. */
    input: z.string().min(1),
    /** Facts to add or override (e.g. `ags`), as the deployment's configured facts would. */
    facts: z.record(z.string(), z.string()).default({}),
    /** Expected JSON output. */
    expect: z.unknown().optional(),
    /** Expected output is the input byte for byte (XML pass-through). */
    expectInput: z.boolean().optional(),
    /** Expected reason code of a mapping failure. */
    expectError: z.enum(['mapping-required-field', 'mapping-failed']).optional(),
  })).min(1),
});

export interface CaseResult {
  name: string;
  passed: boolean;
  message?: string;
}

/** The test file for a mapping file or test file path. */
export function testFileFor(file: string): string {
  return /\.test\.ya?ml$/.test(file) ? file : file.replace(/\.ya?ml$/, '.test.yaml');
}

/** First path where two JSON values differ, e.g. `anlagen[2].dateiname`. */
function firstDifference(expected: unknown, actual: unknown, at = ''): string {
  if (isDeepStrictEqual(expected, actual)) return '';
  if (expected && actual && typeof expected === 'object' && typeof actual === 'object') {
    const keys = new Set([...Object.keys(expected), ...Object.keys(actual)]);
    for (const key of keys) {
      const next = Array.isArray(expected) ? `${at}[${key}]` : at ? `${at}.${key}` : key;
      const found = firstDifference((expected as Record<string, unknown>)[key], (actual as Record<string, unknown>)[key], next);
      if (found) return found;
    }
  }
  return `${at || '(root)'}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`;
}

/** Runs every case of a test file. Throws only if the test file or mapping itself is invalid. */
export function runMappingTests(file: string): CaseResult[] {
  const testFile = path.resolve(testFileFor(file));
  if (!existsSync(testFile)) throw new Error(`${testFile}: no test file beside the mapping`);
  const parsed = testFileSchema.safeParse(parseYaml(readFileSync(testFile, 'utf8')));
  if (!parsed.success) throw new Error(`${testFile}:\n  ${describeIssues(parsed.error.issues).join('\n  ')}`);
  const dir = path.dirname(testFile);
  const mappingName = parsed.data.mapping ?? path.basename(testFile).replace(/\.test\.ya?ml$/, '');
  const mapping = loadMapping(path.join(dir, `${mappingName}.yaml`));
  return parsed.data.cases.map((testCase) => {
    const raw = readFileSync(path.resolve(dir, testCase.input));
    try {
      const checked = checkMessage(raw, DEFAULT_XML_LIMITS);
      const document = parseDom(checked.text);
      const payload = mapping.run({ raw, document, facts: { ...checked.facts, ...testCase.facts } });
      if (testCase.expectError) return { name: testCase.name, passed: false, message: `expected ${testCase.expectError}, but the mapping succeeded` };
      if (testCase.expectInput) {
        const same = payload.body.equals(raw);
        return { name: testCase.name, passed: same, message: same ? undefined : 'output differs from the input' };
      }
      const actual = JSON.parse(payload.body.toString('utf8')) as unknown;
      const difference = firstDifference(testCase.expect, actual);
      return { name: testCase.name, passed: !difference, message: difference || undefined };
    } catch (error) {
      if (error instanceof MappingError && testCase.expectError === error.code) return { name: testCase.name, passed: true };
      return { name: testCase.name, passed: false, message: (error as Error).message };
    }
  });
}
