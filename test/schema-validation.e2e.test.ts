// Schema validation through the HTTP intake, in both modes (embedded; PostgreSQL + RabbitMQ): with `validation.schemas` configured for
// XBau 2.6 (every message group, as one set), valid messages are accepted and delivered, a schema-invalid
// one gets a 400 problem listing the violation with line and element path, and nothing is stored.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { compileConfig } from '../src/config/load';
import { ConfigError } from '../src/errors';
import { startBackOffice, type BackOffice } from '../src/demo/back-office';
import type { RunningRouter } from '../src/main';
import { captureLog, cityConfig, eventually, FIXTURES, getStatus, MODES, post, REPO, startTestRouter, tempDir, variant } from './support/harness';
import { stopServices } from './support/services';

const XBAU = path.join(REPO, 'schemas/xbau/2.6');
const ALL_XBAU_MESSAGE_GROUPS = readdirSync(XBAU).filter((f) => /^xbau-(nachrichten-|bauordnungsrechtliche)/.test(f)).map((f) => path.join(XBAU, f));
const validation = { schemas: [{ standard: 'XBau-*', version: '2.6', namespace: 'http://www.xleitstelle.de/xbau/2/6', xsd: ALL_XBAU_MESSAGE_GROUPS }], maxViolations: 3 };

afterAll(() => stopServices());

describe.each(MODES)('schema validation at the HTTP intake, %s mode', (mode) => {
  let backOffice: BackOffice;
  let router: RunningRouter;
  let logText: () => string;

  beforeAll(async () => {
    backOffice = await startBackOffice();
    const captured = captureLog();
    logText = captured.text;
    router = await startTestRouter(cityConfig(tempDir(), backOffice.url, { validation }), captured.log, mode);
  });

  afterAll(async () => {
    await router?.close();
    await backOffice?.close();
  });

  test('the three valid XBau fixtures are accepted and delivered', async () => {
    for (const name of ['xbau-0200-antrag-muenchen.xml', 'xbau-0200-antrag-augsburg.xml', 'xbau-0202-antragGeaendert-augsburg.xml']) {
      const answer = await post(router.url, variant(readFileSync(path.join(FIXTURES, 'valid', name), 'utf8')));
      expect(answer.status).toBe(202);
      const status = await eventually(async () => {
        const s = await getStatus(router.url, answer.json.submissionId as string);
        return s.state === 'delivered' && s;
      }, 15_000, `${name} delivered`);
      expect(status.state).toBe('delivered');
    }
  });

  test('fixture d is refused with 400 schema-invalid naming the element; nothing is stored', async () => {
    const before = await router.store.countByState();
    const answer = await post(router.url, readFileSync(path.join(FIXTURES, 'bad/d-schema-invalid-leser-without-kennung.xml')));
    expect(answer.status).toBe(400);
    expect(answer.type).toBe('application/problem+json; charset=utf-8');
    expect(answer.json).toEqual({
      type: 'urn:antragsrouter:problem:schema-invalid',
      title: 'Message is not valid against its XSD',
      status: 400,
      code: 'schema-invalid',
      detail: "1 violation of the XBau-* 2.6 schema; first at line 16, /xbau:baugenehmigung.antrag.0200/nachrichtenkopf.g2g/leser/name: Element 'name': This element is not expected. Expected is ( kennung ).",
      instance: '/api/v1/submissions',
      schema: 'XBau-* 2.6',
      violationCount: 1,
      violations: [{ line: 16, path: '/xbau:baugenehmigung.antrag.0200/nachrichtenkopf.g2g/leser/name', message: "Element 'name': This element is not expected. Expected is ( kennung )." }],
    });
    expect(await router.store.countByState()).toEqual(before);
    expect(logText()).toContain('"reason":"schema-invalid"');
    expect(logText()).not.toContain('Lokalbaukommission');
  });

  test('a message with many violations lists maxViolations of them, without the values it carried', async () => {
    const text = variant(readFileSync(path.join(FIXTURES, 'valid/xbau-0200-antrag-augsburg.xml'), 'utf8'))
      .replace(/filesize="\d+"/g, 'filesize="Testperson"')
      .replace(/<erstellungszeitpunkt>[^<]+<\/erstellungszeitpunkt>/, '<erstellungszeitpunkt>Beispielstrasse 1</erstellungszeitpunkt>');
    const answer = await post(router.url, text);
    expect(answer.status).toBe(400);
    expect(answer.json.code).toBe('schema-invalid');
    expect(answer.json.violationCount).toBe(6);
    expect(answer.json.violations).toHaveLength(3);
    const body = JSON.stringify(answer.json);
    expect(body).not.toContain('Testperson');
    expect(body).not.toContain('Beispielstrasse');
  });
});

test('a schema file that is missing is a configuration error naming its path', () => {
  const broken = cityConfig(tempDir(), 'http://127.0.0.1:9', { validation: { schemas: [{ standard: 'XBau-*', version: '2.6', xsd: [ALL_XBAU_MESSAGE_GROUPS[0], '/nirgends/xbau.xsd'] }] } });
  expect(() => compileConfig(broken, 'test')).toThrow(ConfigError);
  expect(() => compileConfig(broken, 'test')).toThrow('validation.schemas[0].xsd[1]: cannot read /nirgends/xbau.xsd (ENOENT)');
});
