// The intelliForm deposit intake end to end, in both modes: every fixture call (inline base64) and its
// MTOM/XOP form is accepted, routed by formId / custom parameter / XPath into myForm, and delivered by the
// file adapter with every attachment byte-identical; resends are delivered once; limits refuse with an
// ApplicationFault and leave nothing stored; retention deletes payloads and keeps the status.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DOMParser, XMLSerializer } from '@xmldom/xmldom';
import { createClientAsync } from 'soap';
import { attachmentFileNames } from '../adapters/file';
import { TRANSACTION_NAMESPACE, USER_NAMESPACE } from '../src/envelope/intelliform-form';
import { newToken, tokenHash } from '../src/auth/auth';
import type { RunningRouter } from '../src/main';
import { attachmentsOf, depositFixture, DEPOSIT_FIXTURES, postDeposit, randomDepositId, responseParameter, sha256, toMtom, withDepositId } from './support/deposits';
import { eventually, getStatus, MODES, REPO, startTestRouter, tempDir, type Mode } from './support/harness';
import { databaseUrl, payloadRows, runId, stopServices } from './support/services';

afterAll(() => stopServices());

const XSD = path.join(REPO, 'resources/intelliform/ApplicationService.xsd');

function depositConfig(dir: string, schema: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    instance: 'test',
    server: { port: 0 },
    store: { path: path.join(dir, 'store.db'), postgres: { schema } },
    mappingsDir: path.join(REPO, 'mappings'),
    namespaces: { t: TRANSACTION_NAMESPACE, u: USER_NAMESPACE },
    delivery: { retry: { maxAttempts: 3, initialDelay: '50ms', maxDelay: '200ms' } },
    targets: {
      lbk: { adapter: 'file', mapping: 'xml-passthrough', config: { directory: path.join(dir, 'out/lbk') } },
      support: { adapter: 'file', mapping: 'xml-passthrough', config: { directory: path.join(dir, 'out/support') } },
    },
    routes: [
      { name: 'lbk', match: { customParameters: { 'for-routing-target': 'XBau_Bauantrag_LBK' }, messageType: '0200' }, deliver: ['lbk'] },
      { name: 'support', match: { formId: 'test/RW/*', xpath: "/myForm/@t:lang = 'de-DE' and /myForm/@u:accountSource = 'BayernID'" }, deliver: ['support'] },
    ],
    ...overrides,
  };
}

/** Blobs in the payload store: files in embedded mode, rows in production mode. */
async function blobCount(mode: Mode, dir: string, schema: string): Promise<number> {
  if (mode === 'embedded') {
    const root = path.join(dir, 'payloads');
    if (!existsSync(root)) return 0;
    return readdirSync(root).filter((d) => d !== '.incoming').reduce((n, d) => n + readdirSync(path.join(root, d)).length, 0);
  }
  return payloadRows(await databaseUrl(), schema);
}

/** The ApplicationFault of a SOAP fault answer. */
function applicationFault(text: string): { faultId: string; message: string; userMessage: string; xml: string } {
  const document = new DOMParser().parseFromString(text, 'text/xml');
  const fault = document.getElementsByTagNameNS('http://xmlns.cit.de/intelliform/2009/webservices/backend', 'ApplicationFault')[0]!;
  const child = (name: string) => fault.getElementsByTagName(name)[0]?.textContent ?? '';
  return { faultId: child('faultId'), message: child('message'), userMessage: child('userMessage'), xml: new XMLSerializer().serializeToString(fault) };
}

describe.each(MODES)('%s mode', (mode) => {
  let router: RunningRouter;
  let dir: string;
  const schema = runId('deposit');

  beforeAll(async () => {
    dir = tempDir();
    router = await startTestRouter(depositConfig(dir, schema), undefined, mode);
  });
  afterAll(() => router?.close());

  const settled = (id: string) => eventually(async () => {
    const status = await getStatus(router.url, id);
    return ['delivered', 'failed', 'parked'].includes(status.state) && status;
  }, 20_000, `submission ${id} to settle`);

  /** Checks the delivered files against what the call sent: payload = primary data, attachments beside it. */
  function expectDeliveredAsSent(target: string, submissionId: string, xml: string): void {
    const sent = attachmentsOf(xml);
    const out = path.join(dir, 'out', target);
    const payload = readFileSync(path.join(out, `${submissionId}.xml`));
    expect(sha256(payload)).toBe(sent[0]!.sha256);
    const attachmentDir = path.join(out, `${submissionId}.attachments`);
    const expected = sent.slice(1);
    const names = attachmentFileNames(expected);
    expect(readdirSync(attachmentDir).sort()).toEqual([...names].sort());
    names.forEach((file, i) => expect(sha256(readFileSync(path.join(attachmentDir, file)))).toBe(expected[i]!.sha256));
  }

  test('hostile attachment names cannot leave the target directory', async () => {
    let n = 0;
    // As they stand in the XML (a CR LF as character references: header injection into a later e-mail).
    const names = ['../../../../../tmp/evil-up.pdf', '..\\..\\evil-back.pdf', '/etc/evil-abs.pdf', 'ok&#13;&#10;X-Injected: 1.pdf', '..'];
    const xml = withDepositId(depositFixture(DEPOSIT_FIXTURES[0]!)).replace(/<name>([^<]*\.pdf)<\/name>/g, (whole) => {
      const name = names[n++];
      return name === undefined ? whole : `<name>${name}</name>`;
    });
    const answer = await postDeposit(router.url, xml);
    expect(answer.status).toBe(200);
    const id = responseParameter(answer.text, 'antragsrouter-submission-id')!;
    expect((await settled(id)).state).toBe('delivered');
    const written = readdirSync(path.join(dir, 'out', 'lbk', `${id}.attachments`));
    // eslint-disable-next-line no-control-regex -- control characters in a written file name are the finding
    expect(written.every((f) => !f.includes('/') && !f.includes('\\') && !f.includes('..') && !/[\u0000-\u001f]/.test(f))).toBe(true);
    expect(written).toEqual(expect.arrayContaining(['evil-up.pdf', 'evil-back.pdf', 'evil-abs.pdf']));
    expect(existsSync('/tmp/evil-up.pdf')).toBe(false);
    expect(existsSync(path.join(dir, 'evil-back.pdf'))).toBe(false);
  });

  test('malformed MTOM is refused with a specific fault and leaves nothing stored', async () => {
    const blobsBefore = await blobCount(mode, dir, schema);
    const xml = withDepositId(depositFixture(DEPOSIT_FIXTURES[1]!));
    const mtom = toMtom(xml);
    const text = mtom.body.toString('latin1');
    const boundary = /boundary="([^"]+)"/.exec(mtom.contentType)![1]!;
    const cases: Array<[string, Buffer, string]> = [
      ['a reference to a part that is not there', Buffer.from(text.replace(/href="cid:part1[^"]*"/, 'href="cid:missing@x"'), 'latin1'), mtom.contentType],
      ['no closing boundary', Buffer.from(text.slice(0, text.lastIndexOf(`--${boundary}--`)), 'latin1'), mtom.contentType],
      ['a wrong boundary', mtom.body, mtom.contentType.replace(boundary, 'not-the-boundary')],
      ['no root part', Buffer.from(`--${boundary}\r\nContent-Type: application/octet-stream\r\n\r\nxx\r\n--${boundary}--\r\n`), mtom.contentType],
    ];
    for (const [what, body, type] of cases) {
      const answer = await postDeposit(router.url, body, type);
      expect([what, answer.status]).toEqual([what, 500]);
      expect([what, applicationFault(answer.text).message]).toEqual([what, expect.stringMatching(/^(multipart-invalid|soap-invalid|attachment-invalid|deposit-invalid): /)]);
      expect(applicationFault(answer.text).userMessage).toMatch(/[äöüÄÖÜß]|Antrag|bitte/i);
    }
    expect(await blobCount(mode, dir, schema)).toBe(blobsBefore);
  });

  test.each(DEPOSIT_FIXTURES)('%s is accepted and delivered with its attachments byte-identical', async (name) => {
    const xml = depositFixture(name);
    const answer = await postDeposit(router.url, xml);
    expect(answer.status).toBe(200);
    expect(answer.text).toContain('depositResponse');
    expect(responseParameter(answer.text, 'antragsrouter-status')).toBe('accepted');
    const submissionId = responseParameter(answer.text, 'antragsrouter-submission-id')!;
    const status = await settled(submissionId);
    const target = name.startsWith('deposit-xbau') ? 'lbk' : 'support';
    expect(status.state).toBe('delivered');
    expect(status.deliveries).toEqual([expect.objectContaining({ target, state: 'delivered', attempts: 1 })]);
    expectDeliveredAsSent(target, submissionId, xml);

    // Facts: the deposit's keys, never the citizen's account or form content.
    const facts = status.facts as Record<string, unknown>;
    expect(facts).toMatchObject({ depositId: expect.stringMatching(/^\d{20}$/), formId: expect.any(String), 'parameter.for-routing-target': expect.any(String) });
    const text = JSON.stringify(status);
    for (const personal of ['3s-fiktiv', 'Mustermann', 'Beispielhuber', 'XML-Datensatz', 'Lageplan']) expect(text).not.toContain(personal);
    expect((status.attachments as Array<{ sha256: string }>).map((a) => a.sha256)).toEqual(attachmentsOf(xml).slice(1).map((a) => a.sha256));
  });

  test('the MTOM/XOP form of each call is delivered the same way', async () => {
    for (const name of DEPOSIT_FIXTURES) {
      const xml = withDepositId(depositFixture(name));
      const mtom = toMtom(xml);
      const answer = await postDeposit(router.url, mtom.body, mtom.contentType);
      expect(answer.status).toBe(200);
      const submissionId = responseParameter(answer.text, 'antragsrouter-submission-id')!;
      expect((await settled(submissionId)).state).toBe('delivered');
      expectDeliveredAsSent(name.startsWith('deposit-xbau') ? 'lbk' : 'support', submissionId, xml);
    }
  });

  test('a repeated deposit with the same id is answered like the first and delivered once', async () => {
    const xml = withDepositId(depositFixture(DEPOSIT_FIXTURES[0]!));
    const first = await postDeposit(router.url, xml);
    const submissionId = responseParameter(first.text, 'antragsrouter-submission-id')!;
    await settled(submissionId);
    const blobs = await blobCount(mode, dir, schema);
    const mtom = toMtom(xml);
    const again = await postDeposit(router.url, mtom.body, mtom.contentType);
    expect(again.status).toBe(200);
    expect(responseParameter(again.text, 'antragsrouter-submission-id')).toBe(submissionId);
    expect(responseParameter(again.text, 'antragsrouter-status')).toBe('duplicate');
    const status = await getStatus(router.url, submissionId);
    expect(status.deliveries).toEqual([expect.objectContaining({ target: 'lbk', state: 'delivered', attempts: 1 })]);
    expect(status.history.map((h) => h.event)).toEqual(['received', 'routed', 'attempt', 'resent']);
    // The resend's attachments were streamed in, then deleted again.
    expect(await blobCount(mode, dir, schema)).toBe(blobs);
  });

  test('a SOAP client generated from the served WSDL alone can deposit, and gets ApplicationFault details', async () => {
    const client = await createClientAsync(`${router.url}/intelliform/deposit?wsdl`);
    const [primary, ...rest] = attachmentsOf(depositFixture(DEPOSIT_FIXTURES[0]!));
    const id = randomDepositId();
    const [result] = await client.depositAsync({
      data: {
        attachments: [primary!, ...rest].map((a) => ({ content: a.bytes.toString('base64'), contentType: a.contentType, id: a.id, name: a.name })),
        customParameters: [{ key: 'for-routing-target', value: 'XBau_Bauantrag_LBK' }],
        formId: 'test/LBK/Bauantrag-XBau',
        id,
        primaryDataAttachmentId: primary!.id,
      },
    }) as [{ return: { customParameters: Array<{ key: string; value: string }> } }];
    const submissionId = result.return.customParameters.find((p) => p.key === 'antragsrouter-submission-id')!.value;
    expect((await settled(submissionId)).state).toBe('delivered');

    const refused = await client.depositAsync({ data: { id: randomDepositId(), formId: 'x' } }).then(() => undefined, (error: unknown) => error) as { root?: { Envelope: { Body: { Fault: { detail: { ApplicationFault: { faultId: string; userMessage: string } } } } } } };
    const fault = refused.root!.Envelope.Body.Fault.detail.ApplicationFault;
    expect(fault.faultId).toMatch(/^[0-9a-f-]{36}$/);
    expect(fault.userMessage).toMatch(/^Ihr Antrag konnte nicht angenommen werden/);
  });

  test('retention deletes payload and attachments of delivered submissions and keeps their status', async () => {
    const limited = await startTestRouter(depositConfig(tempDir(), runId('retention'), { retention: { afterDelivery: '1s', interval: '1h' } }), undefined, mode);
    try {
      const xml = withDepositId(depositFixture(DEPOSIT_FIXTURES[0]!));
      const answer = await postDeposit(limited.url, xml);
      const submissionId = responseParameter(answer.text, 'antragsrouter-submission-id')!;
      await eventually(async () => (await getStatus(limited.url, submissionId)).state === 'delivered');
      const keys = (await limited.store.attachments(submissionId)).map((a) => a.key);
      expect(keys).toHaveLength(4);
      expect(await limited.retention.run(new Date())).toBe(0);
      expect(await limited.retention.run(new Date(Date.now() + 5_000))).toBe(1);
      expect(await limited.store.payload(submissionId)).toBeUndefined();
      expect(await limited.store.attachments(submissionId)).toEqual([]);
      for (const key of keys) await expect(limited.payloads.open(key)).rejects.toThrow();
      const status = await getStatus(limited.url, submissionId);
      expect(status).toMatchObject({ state: 'delivered', purgedAt: expect.any(String), attachments: [] });
      expect(status.history.map((h) => h.event)).toEqual(['received', 'routed', 'attempt', 'purged']);
      expect(await limited.retention.run(new Date(Date.now() + 5_000))).toBe(0);
    } finally {
      await limited.close();
    }
  });
});

describe.each(MODES)('refusals, %s mode', (mode) => {
  let router: RunningRouter;
  let dir: string;
  const schema = runId('refusals');

  beforeAll(async () => {
    dir = tempDir();
    router = await startTestRouter(depositConfig(dir, schema, { attachments: { maxSize: '1kb', maxTotalSize: '2kb' } }), undefined, mode);
  });
  afterAll(() => router?.close());

  test('attachments over the limit are refused with an ApplicationFault that validates against the XSD; nothing stays stored', async () => {
    const xml = depositFixture(DEPOSIT_FIXTURES[0]!);
    // Four PDFs of about 900 bytes each: the third one passes 2 kB in all.
    expect(attachmentsOf(xml).slice(1).map((a) => a.bytes.length)).toEqual([938, 919, 886, 871]);
    const answer = await postDeposit(router.url, xml);
    expect(answer.status).toBe(500);
    expect(answer.text).toContain('<faultcode>soap:Client</faultcode>');
    const fault = applicationFault(answer.text);
    expect(fault.faultId).toMatch(/^[0-9a-f-]{36}$/);
    expect(fault.message).toBe('submission-too-large: the attachments together exceed 2048 bytes (at attachment 4)');
    expect(fault.userMessage).toBe('Ihr Antrag konnte nicht angenommen werden: Die Anlagen sind zusammen größer als 2 kB. Bitte verkleinern Sie die Dateien und senden Sie den Antrag erneut.');
    expect(await blobCount(mode, dir, schema)).toBe(0);
    expect(await router.store.countByState()).toEqual({ received: 0, routed: 0, parked: 0, delivered: 0, failed: 0, discarded: 0 });

    // The fault element is what the WSDL promises: validate it with libxml2 against the XSD.
    const file = path.join(dir, 'fault.xml');
    writeFileSync(file, fault.xml);
    expect(() => execFileSync('xmllint', ['--noout', '--schema', XSD, file], { stdio: 'pipe' })).not.toThrow();
  });

  test('malformed calls get specific faults', async () => {
    const cases: Array<[string, string, RegExp]> = [
      ['<a>&amp</a>', 'text/xml', /^xml-not-well-formed: /],
      ['<!DOCTYPE x [<!ENTITY e "e">]><x/>', 'text/xml', /^xml-doctype-forbidden: /],
      ['<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><x/></soap:Body></soap:Envelope>', 'text/xml', /^soap-invalid: /],
      [withDepositId(depositFixture(DEPOSIT_FIXTURES[1]!)).replace(/<primaryDataAttachmentId>[^<]*</, '<primaryDataAttachmentId>nope<'), 'text/xml', /^deposit-invalid: .*primaryDataAttachmentId/],
      [withDepositId(depositFixture(DEPOSIT_FIXTURES[1]!)).replace('<content>', '<content>!!'), 'text/xml', /^attachment-invalid: attachment 1 \(primary data\): content is not valid base64/],
      ['{}', 'application/json', /^unsupported-media-type: /],
    ];
    for (const [body, type, expected] of cases) {
      const answer = await postDeposit(router.url, body, type);
      expect(answer.status).toBe(500);
      expect(applicationFault(answer.text).message).toMatch(expected);
    }
    expect(await blobCount(mode, dir, schema)).toBe(0);
  });

});

test('with clients configured, only a client with role submit may deposit; the WSDL stays public', async () => {
  const token = newToken();
  const dir = tempDir();
  const router = await startTestRouter(depositConfig(dir, 'unused', { auth: { clients: { formserver: { tokenSha256: tokenHash(token), roles: ['submit'], tenants: ['*'] } } } }));
  try {
    const xml = withDepositId(depositFixture(DEPOSIT_FIXTURES[0]!));
    const deposit = (headers: Record<string, string>) => fetch(`${router.url}/intelliform/deposit`, { method: 'POST', headers: { 'content-type': 'text/xml', ...headers }, body: xml });
    expect((await deposit({})).status).toBe(401);
    expect((await deposit({ authorization: `Bearer ${newToken()}` })).status).toBe(401);
    const answer = await deposit({ authorization: `Bearer ${token}` });
    expect(answer.status).toBe(200);
    expect(responseParameter(await answer.text(), 'antragsrouter-status')).toBe('accepted');
    expect((await fetch(`${router.url}/intelliform/deposit?wsdl`)).status).toBe(200);
  } finally {
    await router.close();
  }
});
