// POST /api/v1/submissions as multipart (form-data and related), in both modes: the XML application,
// its PDF rendering and attachments are delivered by the file adapter byte-identical; limits answer 413
// and leave nothing stored.
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { attachmentFileNames } from '../adapters/file';
import type { RunningRouter } from '../src/main';
import { eventually, FIXTURES, getStatus, MODES, REPO, startTestRouter, tempDir, variant } from './support/harness';
import { stopServices } from './support/services';

afterAll(() => stopServices());

const sha256 = (bytes: Buffer | Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const muenchen = () => variant(readFileSync(path.join(FIXTURES, 'valid', 'xbau-0200-antrag-muenchen.xml'), 'utf8'));

const config = (dir: string, overrides: Record<string, unknown> = {}) => ({
  instance: 'test',
  server: { port: 0 },
  store: { path: path.join(dir, 'store.db') },
  mappingsDir: path.join(REPO, 'mappings'),
  targets: { drop: { adapter: 'file', mapping: 'xml-passthrough', config: { directory: path.join(dir, 'out') } } },
  routes: [{ name: 'all', deliver: ['drop'] }],
  ...overrides,
});

async function post(url: string, body: FormData | Buffer, contentType?: string) {
  const response = await fetch(`${url}/api/v1/submissions`, {
    method: 'POST', body: body instanceof FormData ? body : new Uint8Array(body), headers: contentType ? { 'content-type': contentType } : {},
  });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

describe.each(MODES)('%s mode', (mode) => {
  let router: RunningRouter;
  let dir: string;

  beforeAll(async () => {
    dir = tempDir();
    router = await startTestRouter(config(dir), undefined, mode);
  });
  afterAll(() => router?.close());

  const delivered = (id: string) => eventually(async () => {
    const status = await getStatus(router.url, id);
    return status.state === 'delivered' && status;
  }, 20_000, `submission ${id} delivered`);

  function expectFiles(submissionId: string, xml: string, attachments: Array<{ name: string; bytes: Buffer }>) {
    expect(readFileSync(path.join(dir, 'out', `${submissionId}.xml`), 'utf8')).toBe(xml);
    const attachmentDir = path.join(dir, 'out', `${submissionId}.attachments`);
    const names = attachmentFileNames(attachments);
    expect(readdirSync(attachmentDir).sort()).toEqual([...names].sort());
    names.forEach((file, i) => expect(sha256(readFileSync(path.join(attachmentDir, file)))).toBe(sha256(attachments[i]!.bytes)));
  }

  test('multipart/form-data: application, rendering and attachments', async () => {
    const xml = muenchen();
    const attachments = [
      { name: 'Antrag.pdf', bytes: randomBytes(50_000), type: 'application/pdf', field: 'rendering' },
      { name: 'Lageplan.pdf', bytes: randomBytes(300_000), type: 'application/pdf', field: 'attachment' },
      { name: 'Foto.jpg', bytes: randomBytes(1000), type: 'image/jpeg', field: 'attachment' },
    ];
    const form = new FormData();
    // The application need not come first.
    form.append(attachments[0]!.field, new Blob([attachments[0]!.bytes], { type: attachments[0]!.type }), attachments[0]!.name);
    form.append('application', new Blob([xml], { type: 'application/xml' }), 'antrag.xml');
    for (const a of attachments.slice(1)) form.append(a.field, new Blob([a.bytes], { type: a.type }), a.name);
    const answer = await post(router.url, form);
    expect(answer.status).toBe(202);
    const status = await delivered(answer.json.submissionId as string);
    expectFiles(answer.json.submissionId as string, xml, attachments);
    expect(status.attachments).toEqual(attachments.map((a, i) => ({
      id: i === 0 ? 'rendering' : `attachment-${i + 1}`, mediaType: a.type, size: a.bytes.length, sha256: sha256(a.bytes), role: i === 0 ? 'rendering' : 'attachment',
    })));
  });

  test('multipart/related: the start part is the application', async () => {
    const xml = muenchen();
    const scan = randomBytes(200_000);
    const boundary = 'b-antragsrouter-test';
    const body = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Type: application/pdf\r\nContent-ID: <scan@test>\r\n\r\n`), scan,
      Buffer.from(`\r\n--${boundary}\r\nContent-Type: application/xml\r\nContent-ID: <antrag@test>\r\n\r\n${xml}\r\n--${boundary}--\r\n`),
    ]);
    const answer = await post(router.url, body, `multipart/related; type="application/xml"; start="<antrag@test>"; boundary=${boundary}`);
    expect(answer.status).toBe(202);
    await delivered(answer.json.submissionId as string);
    expectFiles(answer.json.submissionId as string, xml, [{ name: 'scan_test', bytes: scan }]);
  });

  test('refusals: no application part, malformed body, invalid XML; nothing stays stored', async () => {
    const form = new FormData();
    form.append('attachment', new Blob([randomBytes(10)]), 'x.pdf');
    expect(await post(router.url, form)).toMatchObject({ status: 400, json: { code: 'multipart-invalid' } });
    expect(await post(router.url, Buffer.from('--x\r\nContent-Type: text/plain\r\n\r\nunfinished'), 'multipart/related; boundary=x')).toMatchObject({ status: 400, json: { code: 'multipart-invalid' } });
    const bad = new FormData();
    bad.append('attachment', new Blob([randomBytes(10)]), 'x.pdf');
    bad.append('application', new Blob(['<a>&</a>'], { type: 'application/xml' }), 'antrag.xml');
    expect(await post(router.url, bad)).toMatchObject({ status: 400, json: { code: 'xml-not-well-formed' } });
  });
});

describe('limits (embedded mode)', () => {
  test('an attachment over the limit answers 413 and nothing of the submission stays stored', async () => {
    const dir = tempDir();
    const router = await startTestRouter(config(dir, { attachments: { maxSize: '100kb', maxTotalSize: '150kb', maxCount: 2 } }));
    try {
      const send = (sizes: number[]) => {
        const form = new FormData();
        form.append('application', new Blob([muenchen()], { type: 'application/xml' }), 'antrag.xml');
        for (const size of sizes) form.append('attachment', new Blob([randomBytes(size)]), 'x.pdf');
        return post(router.url, form);
      };
      expect(await send([120_000])).toMatchObject({ status: 413, json: { code: 'attachment-limit-exceeded', detail: 'part 2 exceeds 102400 bytes' } });
      expect(await send([90_000, 90_000])).toMatchObject({ status: 413, json: { code: 'submission-too-large' } });
      expect(await send([10, 10, 10])).toMatchObject({ status: 413, json: { code: 'too-many-attachments' } });
      const files = readdirSync(path.join(dir, 'payloads'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
      expect(files).toEqual([]);
      expect(await router.store.countByState()).toEqual({ received: 0, routed: 0, parked: 0, delivered: 0, failed: 0, discarded: 0 });
      expect(await send([90_000])).toMatchObject({ status: 202 });
    } finally {
      await router.close();
    }
  });
});
