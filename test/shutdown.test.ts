// Graceful shutdown of the router process (SIGTERM), in both modes: the listener stops taking submissions,
// a delivery in flight finishes within the grace period (and is not attempted again after a restart); one
// that would outlast the grace period is handed back and delivered after the restart, with the same
// idempotency key, so the back office keeps one.
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { cityConfig, eventually, FIXTURES, MODES, productionConfig, REPO, tempDir, variant, writeConfig } from './support/harness';
import { amqpUrl, databaseUrl, deleteTopology, dropSchema, stopServices } from './support/services';
import { Topology } from '../src/transport/rabbitmq-topology';

const MUENCHEN = readFileSync(path.join(FIXTURES, 'valid/xbau-0200-antrag-muenchen.xml'), 'utf8');
const PORT = 17_000 + (process.pid % 1000);
const URL_ = `http://127.0.0.1:${PORT}`;

/** A back office that answers after `delayMs`; records each request's idempotency key and when it was answered. */
async function slowBackOffice(delayMs: number) {
  const state = { requests: [] as string[], answered: [] as string[], open: 0 };
  const server = http.createServer((req, res) => {
    if (req.method !== 'POST') {
      res.writeHead(204).end(); // readiness probes (OPTIONS)
      return;
    }
    const key = String(req.headers['idempotency-key']);
    state.requests.push(key);
    state.open += 1;
    req.resume();
    const timer = setTimeout(() => {
      state.open -= 1;
      state.answered.push(key);
      res.writeHead(201, { 'content-type': 'application/json' }).end(`{"aktenzeichen":"AZ-${state.answered.length}"}`);
    }, delayMs);
    res.on('close', () => clearTimeout(timer));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { state, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }) };
}

afterAll(() => stopServices());

describe.each(MODES)('%s mode', (mode) => {
  let child: ChildProcess | undefined;
  afterEach(() => child?.kill('SIGKILL'));

  async function setup(delayMs: number) {
    const office = await slowBackOffice(delayMs);
    const dir = tempDir();
    let config = cityConfig(dir, office.url, { delivery: { retry: { maxAttempts: 5, initialDelay: '100ms', maxDelay: '500ms' }, leaseTime: '2s' } });
    const targets = config.targets as Record<string, Record<string, unknown>>;
    targets['muenchen-lbk'] = { ...targets['muenchen-lbk'], config: { url: `${office.url}/muenchen-lbk`, timeoutMs: 10_000 } };
    const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'warn', AMQP_URL: '', DATABASE_URL: '' };
    let cleanup = async () => undefined as unknown;
    if (mode === 'production') {
      config = productionConfig(config);
      const [amqp, database] = await Promise.all([amqpUrl(), databaseUrl()]);
      Object.assign(env, { AMQP_URL: amqp, DATABASE_URL: database });
      const { schema } = (config.store as { postgres: { schema: string } }).postgres;
      const { prefix } = (config.transport as { amqp: { prefix: string } }).amqp;
      cleanup = () => Promise.all([dropSchema(database, schema), deleteTopology(amqp, new Topology(prefix, 0).names(['route', 'deliver.muenchen-lbk', 'deliver.augsburg-boa', 'deliver.nuernberg-bob']))]);
    }
    const file = writeConfig(dir, config);
    const start = async (graceMs: number) => {
      child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO, 'src/cli.ts'), 'start', '--config', file, '--port', String(PORT), '--grace', String(graceMs)], { cwd: REPO, stdio: ['ignore', 'ignore', 'inherit'], env });
      await eventually(async () => (await fetch(`${URL_}/readyz`).catch(() => undefined))?.ok, 30_000, 'router ready');
      return child;
    };
    return { office, start, cleanup };
  }

  const exitOf = (process: ChildProcess) => new Promise<{ code: number | null; at: number }>((resolve) => process.once('exit', (code) => resolve({ code, at: Date.now() })));
  const submit = async () => {
    const response = await fetch(`${URL_}/api/v1/submissions`, { method: 'POST', headers: { 'content-type': 'application/xml' }, body: variant(MUENCHEN) });
    expect(response.status).toBe(202);
    return ((await response.json()) as { submissionId: string }).submissionId;
  };

  test('SIGTERM: stops taking submissions, lets the delivery in flight finish, exits 0; nothing is attempted again', async () => {
    const { office, start, cleanup } = await setup(1500);
    try {
      const router = await start(10_000);
      const id = await submit();
      await eventually(() => office.state.open === 1, 10_000, 'the delivery in flight');
      const exited = exitOf(router);
      const signalled = Date.now();
      router.kill('SIGTERM');
      await eventually(async () => (await fetch(`${URL_}/healthz`).catch(() => undefined)) === undefined, 5000, 'the listener to close');
      const { code, at } = await exited;
      expect(code).toBe(0);
      expect(at - signalled).toBeLessThan(10_000);
      expect(office.state.answered).toEqual([`${id}/muenchen-lbk`]);

      // After a restart nothing is delivered again: the outcome was recorded before the exit.
      await start(10_000);
      const status = (await (await fetch(`${URL_}/api/v1/submissions/${id}`)).json()) as { state: string; deliveries: Array<{ attempts: number }> };
      expect(status).toMatchObject({ state: 'delivered', deliveries: [{ attempts: 1 }] });
      await new Promise((resolve) => setTimeout(resolve, 1000));
      expect(office.state.requests).toHaveLength(1);
    } finally {
      child?.kill('SIGKILL');
      await office.close();
      await cleanup();
    }
  }, 90_000);

  test('SIGTERM with a short grace period: the delivery is handed back and delivered after the restart, once', async () => {
    const { office, start, cleanup } = await setup(4000);
    try {
      const router = await start(300);
      const id = await submit();
      await eventually(() => office.state.open === 1, 10_000, 'the delivery in flight');
      const exited = exitOf(router);
      const signalled = Date.now();
      router.kill('SIGTERM');
      const { at } = await exited;
      expect(at - signalled).toBeLessThan(3500); // did not wait for the back office's 4 s
      expect(office.state.answered).toEqual([]);

      await start(10_000);
      await eventually(async () => ((await (await fetch(`${URL_}/api/v1/submissions/${id}`)).json()) as { state: string }).state === 'delivered', 30_000, 'delivery after the restart');
      expect(new Set(office.state.answered)).toEqual(new Set([`${id}/muenchen-lbk`]));
      expect(office.state.requests.every((key) => key === `${id}/muenchen-lbk`)).toBe(true);
    } finally {
      child?.kill('SIGKILL');
      await office.close();
      await cleanup();
    }
  }, 90_000);
});
