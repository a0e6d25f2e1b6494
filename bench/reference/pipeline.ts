// The thin reference: the thinnest honest hand-wired pipeline doing the router's job, to measure the
// router's overhead against. HTTP intake (node:http) → publish to a durable quorum queue, 202 only after
// the broker's confirm → consume → parse with @xmldom/xmldom, header facts by precompiled XPath (known
// paths, no `//` scans) → POST the facts as JSON to the back office → ack after its 2xx.
// No store, no routing table, no mapping language, no retries beyond a requeue: what is left is the work
// that any implementation of the job has to do. Configured from the environment by the benchmark driver.
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { DOMParser } from '@xmldom/xmldom';
import amqp, { type ConsumeMessage } from 'amqplib';
import xpath from 'xpath';

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} must be set`);
  return value;
};

const PORT = Number(env('PORT'));
const QUEUE = env('QUEUE');
const SINK = new URL(env('SINK_URL'));
const PREFETCH = Number(process.env.PREFETCH ?? '16');
const NAMESPACES = { xbau: 'http://www.xleitstelle.de/xbau/2/6' };

interface Expression {
  evaluateString(options: { node: unknown; namespaces: Record<string, string> }): string;
}
const compile = (source: string) => (xpath as unknown as { parse(s: string): Expression }).parse(source);
const HEAD = '/*/nachrichtenkopf.g2g';
const FACTS: Array<[string, Expression]> = [
  ['messageUuid', compile(`string(${HEAD}/identifikation.nachricht/nachrichtenUUID)`)],
  ['messageType', compile(`string(${HEAD}/identifikation.nachricht/nachrichtentyp/code)`)],
  ['createdAt', compile(`string(${HEAD}/identifikation.nachricht/erstellungszeitpunkt)`)],
  ['reader', compile(`string(${HEAD}/leser/kennung)`)],
  ['author', compile(`string(${HEAD}/autor/kennung)`)],
  ['ags', compile('string(/*/xbau:bauvorhaben/xbau:verortung/xbau:baugrundstueck/xbau:grundstueck/xbau:anschrift/xbau:gemeindeschluessel/code)')],
];

const agent = new http.Agent({ keepAlive: true, maxSockets: PREFETCH });

function extract(body: Buffer): Record<string, string> {
  const parser = new DOMParser({
    onError: (level, message) => {
      throw new Error(`${level}: ${message.split('\n')[0]}`);
    },
  });
  const document = parser.parseFromString(body.toString('utf8'), 'application/xml');
  const facts: Record<string, string> = {};
  for (const [name, expression] of FACTS) facts[name] = expression.evaluateString({ node: document, namespaces: NAMESPACES });
  return facts;
}

function post(submissionId: string, json: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = http.request({
      host: SINK.hostname, port: SINK.port, path: SINK.pathname, method: 'POST', agent,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json), 'x-submission-id': submissionId, 'idempotency-key': submissionId },
    }, (response) => {
      response.resume();
      response.once('end', () => resolve(response.statusCode ?? 0));
    });
    request.once('error', reject);
    request.end(json);
  });
}

async function main(): Promise<void> {
  const connection = await amqp.connect(env('AMQP_URL'), { noDelay: true });
  const publisher = await connection.createConfirmChannel();
  await publisher.assertQueue(QUEUE, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
  const consumer = await connection.createChannel();
  await consumer.prefetch(PREFETCH);

  await consumer.consume(QUEUE, (message: ConsumeMessage | null) => {
    if (!message) return;
    const submissionId = String(message.properties.messageId);
    let json: string;
    try {
      json = JSON.stringify({ submissionId, ...extract(message.content) });
    } catch {
      consumer.nack(message, false, false);
      return;
    }
    post(submissionId, json).then(
      (status) => (status >= 200 && status < 300 ? consumer.ack(message) : setTimeout(() => consumer.nack(message, false, true), 250)),
      () => setTimeout(() => consumer.nack(message, false, true), 250),
    );
  });

  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
      return;
    }
    if (req.method !== 'POST' || req.url !== '/api/v1/submissions') {
      res.writeHead(404).end();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const submissionId = randomUUID();
      publisher.publish('', QUEUE, Buffer.concat(chunks), { persistent: true, messageId: submissionId, contentType: req.headers['content-type'] }, (error: unknown) => {
        if (error) {
          res.writeHead(503, { 'content-type': 'application/json' }).end('{"status":"unavailable"}');
          return;
        }
        const answer = JSON.stringify({ submissionId, status: 'received', duplicate: false });
        res.writeHead(202, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(answer) }).end(answer);
      });
    });
  });
  server.keepAliveTimeout = 30_000;
  server.listen(PORT, '127.0.0.1');

  const shutdown = () => {
    server.close();
    void consumer.close().then(() => connection.close()).finally(() => process.exit(0));
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}

main().catch((error: unknown) => {
  console.error((error as Error).message);
  process.exit(1);
});
