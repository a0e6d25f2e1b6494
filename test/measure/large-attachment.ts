// Measures the router's resident memory while a 200 MB attachment streams through it: once as an
// intelliForm deposit with an MTOM/XOP part, once as multipart/form-data on /api/v1/submissions; each is
// delivered by the file adapter and its SHA-256 compared. The router runs as its own process (the built
// dist/, as `npm start` runs it) and its RSS is sampled from /proc every 50 ms. A measurement, not a test:
//
//   npm run build && npx tsx test/measure/large-attachment.ts            # embedded mode
//   AMQP_URL=… DATABASE_URL=… npx tsx test/measure/large-attachment.ts   # production mode
//
// Prints the peak RSS per upload and the kernel's high-water mark (VmHWM) of the whole run. The inline
// base64 deposit runs last: its envelope is parsed whole (bounded by intelliform.maxEnvelopeSize), and the
// heap it grows is not given back at once, which would blur the streaming measurements after it.
import { spawn } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createReadStream, mkdtempSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { Topology } from '../../src/transport/rabbitmq-topology';
import { deleteTopology, dropSchema } from '../support/services';

const REPO = path.resolve(__dirname, '../..');
const SIZE = Number(process.env.SIZE_MB ?? 200) * 1024 * 1024;
const production = Boolean(process.env.AMQP_URL && process.env.DATABASE_URL);

const freePort = () => new Promise<number>((resolve) => {
  const server = createServer().listen(0, '127.0.0.1', () => {
    const { port } = server.address() as { port: number };
    server.close(() => resolve(port));
  });
});

const status = (pid: number, field: 'VmRSS' | 'VmHWM') => {
  const match = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, { encoding: 'utf8', flag: 'r' }));
  return Number(match?.[1] ?? 0) * 1024;
};
const mb = (bytes: number) => `${(bytes / 1024 ** 2).toFixed(1)} MB`;

/** `SIZE` bytes from a repeated 1 MiB random block, as a web stream, hashing what it yields. */
function source(prefix: Buffer, suffix: Buffer): { stream: ReadableStream<Uint8Array>; sha256: () => string } {
  const block = randomBytes(1024 * 1024);
  const hash = createHash('sha256');
  let sent = 0;
  let stage: 'prefix' | 'data' | 'suffix' | 'done' = 'prefix';
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (stage === 'prefix') {
        controller.enqueue(new Uint8Array(prefix));
        stage = 'data';
      } else if (stage === 'data') {
        const piece = block.subarray(0, Math.min(block.length, SIZE - sent));
        hash.update(piece);
        sent += piece.length;
        controller.enqueue(new Uint8Array(piece));
        if (sent >= SIZE) stage = 'suffix';
      } else if (stage === 'suffix') {
        controller.enqueue(new Uint8Array(suffix));
        stage = 'done';
      } else {
        controller.close();
      }
    },
  });
  return { stream, sha256: () => hash.digest('hex') };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'antragsrouter-measure-'));
  const port = await freePort();
  const schema = `measure_${randomBytes(4).toString('hex')}`;
  writeFileSync(path.join(dir, 'antragsrouter.yaml'), stringify({
    instance: 'measure',
    server: { port },
    store: { path: path.join(dir, 'store.db'), postgres: { schema } },
    transport: { amqp: { prefix: schema } },
    mappingsDir: path.join(REPO, 'mappings'),
    attachments: { maxSize: '1gb', maxTotalSize: '2gb' },
    targets: { drop: { adapter: 'file', mapping: 'xml-passthrough', config: { directory: path.join(dir, 'out') } } },
    routes: [{ name: 'all', deliver: ['drop'] }],
  }));
  const router = spawn(process.execPath, [path.join(REPO, 'dist/src/cli.js'), 'start', '--config', path.join(dir, 'antragsrouter.yaml')], { cwd: REPO, stdio: ['ignore', openSync(path.join(dir, 'router.log'), 'w'), 'inherit'] });
  router.once('exit', (code) => {
    if (code !== null && code !== 0) console.error(`router exited with ${code}; its log: ${path.join(dir, 'router.log')}`);
  });
  const url = `http://127.0.0.1:${port}`;
  let sampler: NodeJS.Timeout | undefined;
  try {
    for (let i = 0; ; i += 1) {
      if (await fetch(`${url}/readyz`).then((r) => r.ok, () => false)) break;
      if (i > 200) throw new Error('router did not start');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const pid = router.pid!;
    const baseline = status(pid, 'VmRSS');
    console.log(`mode ${production ? 'production' : 'embedded'}, attachment ${mb(SIZE)}, router RSS at rest ${mb(baseline)}`);

    const xbau = readFileSync(path.join(REPO, 'test/fixtures/valid/xbau-0200-antrag-muenchen.xml'), 'utf8');
    const fresh = () => xbau.replace(/<nachrichtenUUID>[^<]+</, `<nachrichtenUUID>${randomUUID()}<`);

    const uploads: Array<[string, () => { path: string; contentType: string; body: ReturnType<typeof source> }]> = [
      ['intelliForm deposit, MTOM/XOP part', () => {
        const boundary = `b${randomBytes(8).toString('hex')}`;
        const envelope = `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><ns2:deposit xmlns:ns2="http://xmlns.cit.de/intelliform/2009/webservices/backend"><data>`
          + `<attachments><content>${Buffer.from(fresh()).toString('base64')}</content><contentType>text/xml</contentType><id>myForm-xml</id><name>antrag.xml</name></attachments>`
          + '<attachments><content><xop:Include xmlns:xop="http://www.w3.org/2004/08/xop/include" href="cid:big@measure"/></content><contentType>application/pdf</contentType><id>big</id><name>Plan.pdf</name></attachments>'
          + `<formId>measure</formId><id>${Date.now()}000000</id><primaryDataAttachmentId>myForm-xml</primaryDataAttachmentId></data></ns2:deposit></soap:Body></soap:Envelope>`;
        const prefix = Buffer.from(`--${boundary}\r\nContent-Type: application/xop+xml; type="text/xml"\r\nContent-ID: <root@measure>\r\n\r\n${envelope}\r\n`
          + `--${boundary}\r\nContent-Type: application/pdf\r\nContent-ID: <big@measure>\r\n\r\n`);
        return { path: '/intelliform/deposit', contentType: `multipart/related; type="application/xop+xml"; start="<root@measure>"; boundary=${boundary}`, body: source(prefix, Buffer.from(`\r\n--${boundary}--\r\n`)) };
      }],
      ['multipart/form-data on /api/v1/submissions', () => {
        const boundary = `b${randomBytes(8).toString('hex')}`;
        const prefix = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="application"; filename="antrag.xml"\r\nContent-Type: application/xml\r\n\r\n${fresh()}\r\n`
          + `--${boundary}\r\nContent-Disposition: form-data; name="attachment"; filename="Plan.pdf"\r\nContent-Type: application/pdf\r\n\r\n`);
        return { path: '/api/v1/submissions', contentType: `multipart/form-data; boundary=${boundary}`, body: source(prefix, Buffer.from(`\r\n--${boundary}--\r\n`)) };
      }],
      ['intelliForm deposit, 14 MB inline base64 (bounded by intelliform.maxEnvelopeSize)', () => {
        const inline = randomBytes(14 * 1024 * 1024);
        const envelope = `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><ns2:deposit xmlns:ns2="http://xmlns.cit.de/intelliform/2009/webservices/backend"><data>`
          + `<attachments><content>${Buffer.from(fresh()).toString('base64')}</content><contentType>text/xml</contentType><id>myForm-xml</id><name>antrag.xml</name></attachments>`
          + `<attachments><content>${inline.toString('base64')}</content><contentType>application/pdf</contentType><id>inline</id><name>Plan.pdf</name></attachments>`
          + `<formId>measure</formId><id>${Date.now()}000001</id><primaryDataAttachmentId>myForm-xml</primaryDataAttachmentId></data></ns2:deposit></soap:Body></soap:Envelope>`;
        const body = Buffer.from(envelope);
        const hash = createHash('sha256').update(inline).digest('hex');
        const stream = new ReadableStream<Uint8Array>({
          start(controller) {
            for (let at = 0; at < body.length; at += 1024 * 1024) controller.enqueue(new Uint8Array(body.subarray(at, at + 1024 * 1024)));
            controller.close();
          },
        });
        return { path: '/intelliform/deposit', contentType: 'text/xml; charset=utf-8', body: { stream, sha256: () => hash } };
      }],
    ];

    for (const [name, make] of uploads) {
      const upload = make();
      let peak = status(pid, 'VmRSS');
      sampler = setInterval(() => {
        peak = Math.max(peak, status(pid, 'VmRSS'));
      }, 50);
      const started = Date.now();
      const response = await fetch(`${url}${upload.path}`, { method: 'POST', headers: { 'content-type': upload.contentType }, body: upload.body.stream, duplex: 'half' } as RequestInit);
      const answer = await response.text();
      const accepted = Date.now() - started;
      const peakAtIntake = peak;
      if (!response.ok) throw new Error(`${name}: HTTP ${response.status} ${answer.slice(0, 500)}`);
      const id = /antragsrouter-submission-id<\/key><value>([^<]+)</.exec(answer)?.[1] ?? (JSON.parse(answer) as { submissionId: string }).submissionId;
      for (;;) {
        const state = ((await (await fetch(`${url}/api/v1/submissions/${id}`)).json()) as { state: string }).state;
        if (state === 'delivered') break;
        if (state === 'failed' || state === 'parked') throw new Error(`${name}: ${state}`);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      clearInterval(sampler);
      const attachmentDir = path.join(dir, 'out', `${id}.attachments`);
      const file = readdirSync(attachmentDir).find((f) => f !== 'manifest.json')!;
      const delivered = createHash('sha256');
      for await (const chunk of createReadStream(path.join(attachmentDir, file))) delivered.update(chunk as Buffer);
      const intact = delivered.digest('hex') === upload.body.sha256();
      console.log(`${name}: accepted after ${accepted} ms, delivered, SHA-256 ${intact ? 'matches' : 'DIFFERS'}; peak RSS ${mb(peak)} (until accepted ${mb(peakAtIntake)})`);
      if (!intact) process.exitCode = 1;
    }
    console.log(`router high-water mark (VmHWM) over the whole run: ${mb(status(pid, 'VmHWM'))}`);
  } finally {
    clearInterval(sampler);
    router.kill('SIGTERM');
    await new Promise((resolve) => router.once('exit', resolve));
    if (production) {
      // This run's schema and queues go again (quorum queues left behind weigh on the broker).
      await dropSchema(process.env.DATABASE_URL!, schema);
      await deleteTopology(process.env.AMQP_URL!, new Topology(schema, 0).names(['route', 'deliver.drop']));
    }
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
