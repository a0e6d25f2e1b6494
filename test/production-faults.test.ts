// Production mode under faults: two router instances (child processes) share one PostgreSQL schema and one
// RabbitMQ prefix as competing consumers. During a burst, the broker force-closes their connections twice
// and one instance is killed with SIGKILL and restarted. Afterwards every accepted submission is delivered
// exactly once, permanent failures are dead letters with their reason, and the broker holds nothing else.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { connect } from 'amqplib';
import { startBackOffice, type BackOffice } from '../src/demo/back-office';
import { Topology } from '../src/transport/rabbitmq-topology';
import { cityConfig, eventually, FIXTURES, productionConfig, REPO, tempDir, variant, writeConfig } from './support/harness';
import { amqpUrl, closeBrokerConnections, databaseUrl, deleteTopology, dropSchema, stopServices } from './support/services';

/** 300 by default; FAULT_TEST_TOTAL=2000 for the full-size run described in the README. */
const TOTAL = Number(process.env.FAULT_TEST_TOTAL ?? 300);
const PORTS = [19_000 + (process.pid % 500) * 2, 19_001 + (process.pid % 500) * 2];
const urlOf = (i: number) => `http://127.0.0.1:${PORTS[i]}`;

let backOffice: BackOffice | undefined;
const children: Array<ChildProcess | undefined> = [undefined, undefined];

afterAll(async () => {
  for (const child of children) child?.kill('SIGKILL');
  await backOffice?.close();
  await stopServices();
});

test('two instances, broker connections force-closed twice, one instance killed: nothing lost, nothing twice', async () => {
  const [amqp, database] = await Promise.all([amqpUrl(), databaseUrl()]);
  backOffice = await startBackOffice({ behaviour: (office) => (office === 'nuernberg-bob' ? 400 : 201) });
  const office = backOffice;
  const dir = tempDir();
  // Short leases: a delivery in flight in the killed instance is taken over after 3 s.
  const config = productionConfig({ ...cityConfig(dir, office.url), delivery: { retry: { maxAttempts: 8, initialDelay: '100ms', maxDelay: '1s' }, leaseTime: '3s' } });
  const { schema } = (config.store as { postgres: { schema: string } }).postgres;
  const { prefix } = (config.transport as { amqp: { prefix: string } }).amqp;
  const configFile = writeConfig(dir, config);
  const start = (i: number) => {
    children[i] = spawn(process.execPath, ['--import', 'tsx', path.join(REPO, 'src/cli.ts'), 'start', '--config', configFile, '--port', String(PORTS[i])], {
      cwd: REPO, stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, LOG_LEVEL: 'error', AMQP_URL: amqp, DATABASE_URL: database },
    });
  };
  const ready = (i: number) => eventually(async () => (await fetch(`${urlOf(i)}/readyz`).catch(() => undefined))?.ok, 30_000, `instance ${i} ready`);

  try {
    start(0);
    start(1);
    await Promise.all([ready(0), ready(1)]);

    const template = readFileSync(path.join(FIXTURES, 'valid/xbau-0200-antrag-muenchen.xml'), 'utf8');
    const cities = ['09162000', '09761000', '09564000'];
    const messages = Array.from({ length: TOTAL }, (_, i) => variant(template, { ags: cities[i % 3] }));
    const accepted = new Map<number, string>();
    const refused = { unavailable: 0, network: 0 };
    const send = async (i: number, instance: number) => {
      try {
        const response = await fetch(`${urlOf(instance)}/api/v1/submissions`, { method: 'POST', headers: { 'content-type': 'application/xml' }, body: messages[i] });
        if (response.status === 202) accepted.set(i, ((await response.json()) as { submissionId: string }).submissionId);
        else if (response.status === 503) refused.unavailable += 1;
        else throw new Error(`unexpected ${response.status} ${await response.text()}`);
      } catch (error) {
        if ((error as Error).message.startsWith('unexpected')) throw error;
        refused.network += 1; // the killed instance: not accepted, the sender sends it again
      }
    };
    const faults: Array<[number, () => Promise<void>]> = [
      [TOTAL * 0.2, async () => { expect(await closeBrokerConnections(prefix)).toBeGreaterThanOrEqual(2); }],
      [TOTAL * 0.4, async () => {
        children[0]!.kill('SIGKILL');
        await new Promise((resolve) => children[0]!.once('exit', resolve));
      }],
      [TOTAL * 0.55, async () => { expect(await closeBrokerConnections(prefix)).toBeGreaterThanOrEqual(1); }],
      [TOTAL * 0.7, async () => {
        start(0);
        await ready(0);
      }],
    ];
    // The sender: batches of 10 alternating between the instances; whatever was not accepted is sent again.
    for (let round = 0; accepted.size < TOTAL && round < 40; round += 1) {
      const pending = messages.map((_, i) => i).filter((i) => !accepted.has(i));
      for (let b = 0; b < pending.length; b += 10) {
        await Promise.all(pending.slice(b, b + 10).map((i, k) => send(i, (b / 10 + k) % 2)));
        while (faults.length && accepted.size >= faults[0]![0]) await faults.shift()![1]();
      }
      if (accepted.size < TOTAL) await new Promise((resolve) => setTimeout(resolve, 500));
    }
    while (faults.length) await faults.shift()![1]();
    expect(accepted.size).toBe(TOTAL);

    const ids = (city: number) => [...accepted].filter(([i]) => i % 3 === city).map(([, id]) => id).sort();
    const augsburgDir = path.join(dir, 'out/augsburg');
    const settled = async () => {
      const states = await Promise.all(ids(2).map(async (id) => ((await (await fetch(`${urlOf(1)}/api/v1/submissions/${id}`)).json()) as { state: string }).state));
      return office.received.length >= ids(0).length && readdirSync(augsburgDir).filter((f) => f.endsWith('.json')).length >= ids(1).length && states.every((s) => s === 'failed');
    };
    await eventually(settled, 90_000, 'every submission delivered or failed');
    await new Promise((resolve) => setTimeout(resolve, 1000));

    // Exactly once at each back office.
    expect(office.received.map((r) => r.submissionId).sort()).toEqual(ids(0));
    expect(readdirSync(augsburgDir).sort()).toEqual(ids(1).map((id) => `0200-${id}.json`).sort());
    // Permanent failures: dead letters with the reason, attempted once.
    for (const id of ids(2).slice(0, 25)) {
      const status = (await (await fetch(`${urlOf(0)}/api/v1/submissions/${id}`)).json()) as { state: string; deliveries: Array<{ state: string; reason: string; attempts: number }> };
      expect(status).toMatchObject({ state: 'failed', deliveries: [{ state: 'dead', reason: 'http-status' }] });
    }

    // The broker holds no stray messages: work and delay queues are empty; the dead letters carry reasons.
    const connection = await connect(amqp);
    try {
      const channel = await connection.createChannel();
      const topology = new Topology(prefix, 0);
      const names = topology.names(['route', 'deliver.muenchen-lbk', 'deliver.augsburg-boa', 'deliver.nuernberg-bob']);
      for (const queue of names.queues.filter((q) => q !== topology.deadQueue)) {
        expect([queue, (await channel.checkQueue(queue)).messageCount]).toEqual([queue, 0]);
      }
      const reasons = new Set<string>();
      for (let message = await channel.get(topology.deadQueue); message; message = await channel.get(topology.deadQueue)) {
        reasons.add(String(message.properties.headers?.['x-antragsrouter-reason']));
      }
      expect([...reasons]).toEqual(['http-status']);
    } finally {
      await connection.close();
    }
    console.log(`production faults: ${TOTAL} accepted (${refused.unavailable} answered 503, ${refused.network} refused by the killed instance, then resent); back office saw ${office.duplicates} repeated idempotency keys`);
  } finally {
    for (const child of children) child?.kill('SIGKILL');
    const topology = new Topology(prefix, 0);
    await Promise.all([
      dropSchema(database, schema),
      deleteTopology(amqp, topology.names(['route', 'deliver.muenchen-lbk', 'deliver.augsburg-boa', 'deliver.nuernberg-bob'])),
    ]);
  }
}, 600_000);
