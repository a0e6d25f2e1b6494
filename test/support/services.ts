// The real servers for integration tests: AMQP_URL / DATABASE_URL from the environment (as in CI, with
// RabbitMQ and PostgreSQL on localhost); where unset, containers started with testcontainers (a laptop
// with Docker). Each run isolates itself: its own PostgreSQL schema, its own queue prefix.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
// Static imports: with "module": "node16" a dynamic import() stays a native import(), which jest (CommonJS,
// no --experimental-vm-modules) cannot run: the testcontainers path would fail before looking for Docker.
import { PostgreSqlContainer } from '@testcontainers/postgresql';
import { RabbitMQContainer } from '@testcontainers/rabbitmq';
import { connect as amqpConnect } from 'amqplib';
import { Client } from 'pg';

let containers: Array<{ stop(): Promise<unknown> }> = [];
let rabbitContainer: { exec(command: string[]): Promise<{ output: string; exitCode: number }> } | undefined;
let amqp: Promise<string> | undefined;
let database: Promise<string> | undefined;

/** A short unique name for this run's schema / queue prefix. */
export function runId(prefix: string): string {
  return `${prefix}_${randomBytes(4).toString('hex')}`;
}

export function amqpUrl(): Promise<string> {
  amqp ??= process.env.AMQP_URL
    ? Promise.resolve(process.env.AMQP_URL)
    : (async () => {
      const container = await new RabbitMQContainer('rabbitmq:3.13-management').start();
      containers.push(container);
      rabbitContainer = container;
      return container.getAmqpUrl();
    })();
  return amqp;
}

export function databaseUrl(): Promise<string> {
  database ??= process.env.DATABASE_URL
    ? Promise.resolve(process.env.DATABASE_URL)
    : (async () => {
      const container = await new PostgreSqlContainer('postgres:15').start();
      containers.push(container);
      return container.getConnectionUri();
    })();
  return database;
}

/** Drops a schema created by a test run. */
export async function dropSchema(url: string, schema: string): Promise<void> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema.replace(/"/g, '')}" CASCADE`);
  } finally {
    await client.end();
  }
}

/** Deletes a test run's exchanges and queues (with whatever they still hold). */
export async function deleteTopology(url: string, names: { exchanges: string[]; queues: string[] }): Promise<void> {
  const connection = await amqpConnect(url);
  try {
    const channel = await connection.createChannel();
    for (const queue of new Set(names.queues)) await channel.deleteQueue(queue);
    for (const exchange of new Set(names.exchanges)) await channel.deleteExchange(exchange);
  } finally {
    await connection.close();
  }
}

/** Runs rabbitmqctl: in the test container where one was started, else the local broker's. */
async function rabbitmqctl(args: string[]): Promise<string> {
  if (rabbitContainer) {
    const { output, exitCode } = await rabbitContainer.exec(['rabbitmqctl', ...args]);
    if (exitCode !== 0) throw new Error(`rabbitmqctl ${args[0]} failed: ${output}`);
    return output;
  }
  const { stdout } = await promisify(execFile)('rabbitmqctl', args);
  return stdout;
}

/**
 * Force-closes the broker connections whose client name contains `namePart` (the routers name their
 * connections `antragsrouter <prefix>`), as `rabbitmqctl close_all_connections` would, but without
 * disturbing test files that run at the same time. Returns how many were closed.
 */
export async function closeBrokerConnections(namePart: string): Promise<number> {
  const listing = await rabbitmqctl(['list_connections', 'pid', 'client_properties', '-q']);
  const pids = listing.split('\n').filter((line) => line.includes(namePart)).map((line) => line.split('\t')[0]!).filter((pid) => pid.startsWith('<'));
  for (const pid of pids) await rabbitmqctl(['close_connection', pid, 'fault test: connection force-closed']);
  return pids.length;
}

/** Stops containers this process started (call from afterAll). */
export async function stopServices(): Promise<void> {
  const stopping = containers;
  containers = [];
  amqp = undefined;
  database = undefined;
  await Promise.all(stopping.map((c) => c.stop()));
}

/** Rows the PostgreSQL payload store holds in `schema` (blobs and their chunks): zero means nothing left behind. */
export async function payloadRows(url: string, schema: string): Promise<number> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    const name = schema.replace(/"/g, '');
    const { rows } = await client.query<{ n: string }>(`SELECT (SELECT count(*) FROM "${name}".blobs) + (SELECT count(*) FROM "${name}".blob_chunks) AS n`);
    return Number(rows[0]!.n);
  } finally {
    await client.end();
  }
}
