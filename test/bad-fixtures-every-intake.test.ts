// Every bad fixture against every intake, in both modes: as the XML body, as the application part of a
// multipart submission, and as the primary data attachment of an intelliForm deposit — each refused with
// the same reason code, and nothing stored.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { RunningRouter } from '../src/main';
import { depositFixture, DEPOSIT_FIXTURES, postDeposit, withDepositId } from './support/deposits';
import { BAD_FIXTURE_REASONS, FIXTURES, MODES, startCityRouter } from './support/harness';
import { stopServices } from './support/services';

const BAD = readdirSync(path.join(FIXTURES, 'bad')).filter((f) => f.endsWith('.xml'));
const EXPECTED = BAD_FIXTURE_REASONS;

afterAll(() => stopServices());

test('every bad fixture has an expected reason', () => {
  expect(BAD.sort()).toEqual(Object.keys(EXPECTED).sort());
});

describe.each(MODES)('%s mode', (mode) => {
  let router: RunningRouter;
  let close: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    ({ router, close } = await startCityRouter(mode));
  });
  afterAll(() => close?.());

  const total = async () => Object.values(await router.store.countByState()).reduce((a, b) => a + b, 0);

  describe.each(BAD)('%s', (name) => {
    const bytes = readFileSync(path.join(FIXTURES, 'bad', name));
    const code = EXPECTED[name]!;

    test('as the application part of a multipart submission', async () => {
      const before = await total();
      const form = new FormData();
      form.append('application', new Blob([new Uint8Array(bytes)], { type: 'application/xml' }), 'antrag.xml');
      form.append('attachment', new Blob([new Uint8Array(Buffer.from('%PDF-1.4 test'))], { type: 'application/pdf' }), 'plan.pdf');
      const response = await fetch(`${router.url}/api/v1/submissions`, { method: 'POST', body: form });
      expect(response.status).toBe(400);
      expect(((await response.json()) as { code: string }).code).toBe(code);
      expect(await total()).toBe(before);
    });

    test('as the primary data attachment of a deposit call', async () => {
      const before = await total();
      let first = true;
      const xml = withDepositId(depositFixture(DEPOSIT_FIXTURES[0]!)).replace(/<content>[^<]*<\/content>/g, (whole) => {
        if (!first) return whole;
        first = false;
        return `<content>${bytes.toString('base64')}</content>`;
      });
      const answer = await postDeposit(router.url, xml);
      expect(answer.status).toBe(500);
      expect(answer.text).toContain('ApplicationFault');
      expect(answer.text).toMatch(new RegExp(`<message>${code}: `));
      expect(answer.text).not.toContain('root:x:0:0');
      expect(await total()).toBe(before);
    });
  });
});
