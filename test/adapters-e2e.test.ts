// End to end through the router with the email, sftp and amqp adapters as configured built-ins: one
// München application fanned out to an S/MIME mailbox (real SMTP server, read with openssl), an SFTP
// drop folder (real OpenSSH server) and a back office's RabbitMQ exchange; credentials only as secret
// references, never in the log.
import { readFileSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { simpleParser } from 'mailparser';
import type { RunningRouter } from '../src/main';
import { AmqpBackOffice } from '../adapters/amqp/test-counterpart';
import { OpenSsl, SmtpBackOffice } from '../adapters/email/test-counterpart';
import { OpenSshServer } from '../adapters/sftp/test-counterpart';
import { captureLog, cityConfig, eventually, FIXTURES, getStatus, post, startTestRouter, tempDir, variant } from './support/harness';
import { amqpUrl, stopServices } from './support/services';

const MUENCHEN = readFileSync(path.join(FIXTURES, 'valid', 'xbau-0200-antrag-muenchen.xml'), 'utf8');

const openssl = new OpenSsl();
const ssh = new OpenSshServer();
let smtp: SmtpBackOffice;
let mq: AmqpBackOffice;
let router: RunningRouter;
let logText: () => string;
let backOfficeCert: { cert: string; key: string };

beforeAll(async () => {
  const serverTls = await openssl.certificate('localhost', { dns: 'localhost' });
  backOfficeCert = await openssl.certificate('lbk', { email: 'lbk@muenchen.example' });
  smtp = new SmtpBackOffice({ tls: { key: readFileSync(serverTls.key), cert: readFileSync(serverTls.cert) }, users: { router: 'e2e-smtp-s3cret' } });
  await smtp.start();
  await ssh.start();
  mq = new AmqpBackOffice(await amqpUrl());
  await mq.start();
  process.env.E2E_SMTP_PASSWORD = 'e2e-smtp-s3cret';

  const dir = tempDir();
  const captured = captureLog();
  logText = captured.text;
  const config = cityConfig(dir, 'http://127.0.0.1:1', {
    targets: {
      'lbk-mail': {
        adapter: 'email', mapping: 'xbau-bauantrag-json',
        config: {
          host: '127.0.0.1', port: smtp.port, tls: { caFile: serverTls.cert, servername: 'localhost' },
          auth: { user: 'router', password: { env: 'E2E_SMTP_PASSWORD' } },
          from: 'antragsrouter@muenchen.example', to: ['lbk@muenchen.example'],
          smime: { recipientCertificateFile: backOfficeCert.cert },
        },
      },
      'lbk-sftp': { adapter: 'sftp', mapping: 'xml-passthrough', config: ssh.adapterConfig({ name: '{messageType}-{submissionId}' }) },
      'lbk-mq': { adapter: 'amqp', mapping: 'xbau-bauantrag-json', config: mq.adapterConfig({ routingKey: 'antrag.{messageType}' }) },
    },
    routes: [{ name: 'muenchen', match: { tenant: '09162000' }, deliver: ['lbk-mail', 'lbk-sftp', 'lbk-mq'] }],
  });
  router = await startTestRouter(config, captured.log);
});

afterAll(async () => {
  await router?.close();
  await smtp?.stop();
  await ssh.stop();
  await mq?.stop();
  await openssl.remove();
  await stopServices();
  delete process.env.E2E_SMTP_PASSWORD;
});

test('one application reaches the mailbox (S/MIME), the SFTP folder and the exchange; status shows all three', async () => {
  const { status, json } = await post(router.url, variant(MUENCHEN));
  expect(status).toBe(202);
  const id = json.submissionId as string;
  const settled = await eventually(async () => {
    const current = await getStatus(router.url, id);
    return ['delivered', 'failed', 'parked'].includes(current.state) && current;
  }, 20_000, 'delivery to settle');
  expect(settled.state).toBe('delivered');
  expect(settled.deliveries.map((d) => [d.target, d.state, d.attempts]).sort()).toEqual([['lbk-mail', 'delivered', 1], ['lbk-mq', 'delivered', 1], ['lbk-sftp', 'delivered', 1]]);

  // Mail: encrypted; the back office decrypts it with openssl and finds the mapped JSON.
  expect(smtp.received).toHaveLength(1);
  const content = await simpleParser(await openssl.decrypt(smtp.received[0]!.raw, backOfficeCert));
  const payload = content.attachments.find((a) => a.filename === `antrag-${id}.json`)!;
  expect((JSON.parse(payload.content.toString()) as { gemeinde: { ags: string } }).gemeinde.ags).toBe('09162000');

  // SFTP: the XML as received, in its own directory.
  const dir = path.join(ssh.dropDir, `0200-${id}`);
  expect((await fs.readdir(dir)).sort()).toEqual(['manifest.json', 'payload.xml']);
  expect(await fs.readFile(path.join(dir, 'payload.xml'), 'utf8')).toContain('baugenehmigung.antrag.0200');

  // AMQP: one persistent message with the idempotency key.
  const [message, ...more] = await mq.received();
  expect(more).toEqual([]);
  expect(message!.properties).toMatchObject({ messageId: `${id}/lbk-mq`, deliveryMode: 2 });

  expect(logText()).not.toContain('e2e-smtp-s3cret');
});
