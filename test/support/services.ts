// The real servers for integration tests: AMQP_URL / DATABASE_URL from the environment (as in CI, with
// RabbitMQ and PostgreSQL on localhost); where unset, containers started with testcontainers (a laptop
// with Docker). Each run isolates itself: its own PostgreSQL schema, its own queue prefix.
import { randomBytes } from 'node:crypto';
// Static imports: with "module": "node16" a dynamic import() stays a native import(), which jest (CommonJS,
// no --experimental-vm-modules) cannot run: the testcontainers path would fail before looking for Docker.
import { PostgreSqlContainer } from '@testcontainers/postgresql';
import { RabbitMQContainer } from '@testcontainers/rabbitmq';
import { Client } from 'pg';

let containers: Array<{ stop(): Promise<unknown> }> = [];
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

/** Stops containers this process started (call from afterAll). */
export async function stopServices(): Promise<void> {
  const stopping = containers;
  containers = [];
  amqp = undefined;
  database = undefined;
  await Promise.all(stopping.map((c) => c.stop()));
}
