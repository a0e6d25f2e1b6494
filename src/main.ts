// Composition root: load configuration, open store and transport (embedded, or PostgreSQL + RabbitMQ in
// production mode), connect adapters, wire the pipeline, start the HTTP server; shut down gracefully.
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import http, { type Server } from 'node:http';
import https from 'node:https';
import { readSecret, readSecretBytes } from './config/secret';
import express from 'express';
import type { Logger } from 'pino';
import type { LoadedConfig } from './config/load';
import type { Adapter } from './deliver/adapter';
import { SchemaValidator } from './envelope/schema-validation';
import { intakeErrors, submissionIntake } from './intake/http-intake';
import { depositEndpoint } from './intake/soap-deposit';
import { adminApi } from './admin/admin-api';
import { consolePages } from './admin/console';
import { Authenticator } from './auth/auth';
import { Callbacks } from './callbacks/callbacks';
import { receiptApi } from './intake/receipt-api';
import { Metrics } from './metrics';
import { Pipeline } from './pipeline';
import { statusApi } from './status/status-api';
import { DirectoryPayloadStore } from './store/directory-payload-store';
import type { PayloadStore } from './store/payload-store';
import { PostgresStore } from './store/postgres-store';
import { Retention } from './store/retention';
import { openSqlite } from './store/sqlite';
import { SqliteStore } from './store/sqlite-store';
import type { Store } from './store/store';
import { EmbeddedTransport } from './transport/embedded-transport';
import { RabbitTransport } from './transport/rabbitmq-transport';
import type { Transport } from './transport/transport';

export interface RunningRouter {
  /** Base URL of the HTTP server, e.g. http://127.0.0.1:8080 */
  url: string;
  pipeline: Pipeline;
  store: Store;
  payloads: PayloadStore;
  retention: Retention;
  /** Stops accepting, lets in-flight deliveries finish (up to `graceMs`), closes everything. */
  close(graceMs?: number): Promise<void>;
}

export interface StartOptions {
  log: Logger;
  /**
   * Production mode: RabbitMQ and PostgreSQL URLs (with credentials); `false` forces the embedded mode.
   * Default: AMQP_URL and DATABASE_URL from the environment; neither set: embedded mode; only one of them
   * set is an error.
   */
  production?: { amqpUrl?: string; databaseUrl?: string } | false;
  /** Override the configured port (0: any free port). */
  port?: number;
  /** Override the configured host. */
  host?: string;
}

interface Backbone {
  mode: 'embedded' | 'production';
  store: Store;
  payloads: PayloadStore;
  transport: Transport;
  /** Where the state lives, for the start-up log line (no credentials). */
  where: string;
  /** Closes store and transport after the transport has been stopped. */
  close(): Promise<void>;
}

/** Opens the store and transport of the selected mode. */
async function openBackbone(config: LoadedConfig, options: StartOptions, log: Logger): Promise<Backbone> {
  const { amqp: amqpConfig, postgres: postgresConfig } = { amqp: config.raw.transport.amqp, postgres: config.raw.store.postgres };
  const production = options.production === false ? {} : options.production ?? {
    amqpUrl: process.env.AMQP_URL || (amqpConfig.url && readSecret(amqpConfig.url)),
    databaseUrl: process.env.DATABASE_URL || (postgresConfig.url && readSecret(postgresConfig.url)),
  };
  const amqpUrl = production.amqpUrl || undefined;
  const databaseUrl = production.databaseUrl || undefined;
  if (!amqpUrl && !databaseUrl) {
    const db = openSqlite(config.raw.store.path);
    const directory = config.raw.attachments.directory ?? path.join(path.dirname(config.raw.store.path), 'payloads');
    let payloads: PayloadStore;
    try {
      payloads = await DirectoryPayloadStore.open(directory);
    } catch (error) {
      db.close();
      throw error;
    }
    return {
      mode: 'embedded', store: new SqliteStore(db), payloads, transport: new EmbeddedTransport(db, log), where: `${config.raw.store.path}, attachments in ${directory}`,
      async close() { db.close(); },
    };
  }
  if (!amqpUrl || !databaseUrl) {
    throw new Error(`production mode needs both AMQP_URL and DATABASE_URL; only ${amqpUrl ? 'AMQP_URL' : 'DATABASE_URL'} is set`);
  }
  const { postgres } = config.raw.store;
  const { amqp } = config.raw.transport;
  const store = await PostgresStore.open({ url: databaseUrl, schema: postgres.schema, poolSize: postgres.poolSize, log });
  let transport: RabbitTransport;
  try {
    transport = await RabbitTransport.open({ url: amqpUrl, prefix: amqp.prefix, heartbeatSeconds: amqp.heartbeatSeconds, log });
  } catch (error) {
    await store.close();
    throw error;
  }
  return {
    mode: 'production', store, payloads: store.payloadStore, transport, where: `PostgreSQL schema ${postgres.schema}, RabbitMQ prefix ${amqp.prefix}`,
    async close() { await store.close(); },
  };
}

export async function startRouter(config: LoadedConfig, options: StartOptions): Promise<RunningRouter> {
  const log = options.log.child({ instance: config.raw.instance });
  const backbone = await openBackbone(config, options, log);
  const { store, payloads, transport } = backbone;

  const adapters = new Map<string, Adapter>();
  let validator: SchemaValidator | undefined;
  let callbacks: Callbacks | undefined;
  try {
    // Callback secrets are read here: a missing one fails the start, naming its reference.
    const clients = config.raw.auth?.clients ?? {};
    if (Object.values(clients).some((c) => c.callback)) callbacks = new Callbacks(clients, store, transport, log);
    // Schemas are compiled once, here; a schema that does not compile fails the start naming it.
    if (config.raw.validation.schemas.length) validator = await SchemaValidator.start(config.raw.validation, log);
    for (const plan of config.targets.values()) {
      const adapter = plan.adapter.create(plan.adapterConfig, { target: plan.name, log: log.child({ target: plan.name }) });
      // A missing secret or unreadable certificate fails start-up, named by target and reference.
      await adapter.connect().catch((error: unknown) => {
        throw new Error(`target ${plan.name}: ${(error as Error).message}`, { cause: error });
      });
      adapters.set(plan.name, adapter);
    }
  } catch (error) {
    await Promise.allSettled([...adapters.values()].map((adapter) => adapter.close()));
    await validator?.close();
    await transport.stop(0);
    await backbone.close();
    throw error;
  }

  const metrics = new Metrics({
    tenants: config.raw.routes.flatMap((route) => [route.match?.tenant ?? []].flat()),
    collect: async () => {
      const [queues, submissions, storedBytes] = await Promise.all([transport.depth(), store.countByState(), store.storedBytes()]);
      return { queues, submissions, storedBytes };
    },
  });
  const pipeline = new Pipeline({ config, store, payloads, transport, adapters, log, metrics, validator, callbacks });
  await pipeline.start();
  callbacks?.start();
  const retention = new Retention({ store, payloads, ...config.raw.retention, log });
  retention.start();

  const app = express();
  app.disable('x-powered-by');
  const auth = new Authenticator(config.raw.auth);
  if (auth.open) log.warn({ event: 'auth-open' }, 'no auth.clients configured: anyone who reaches the port may submit; the admin API is closed');
  app.use(submissionIntake(pipeline, { maxBodySize: config.raw.server.maxBodySize, attachments: config.raw.attachments, payloads, log, auth }));
  app.use(depositEndpoint(pipeline, { ...config.raw.intelliform, maxDocumentSize: config.raw.server.maxBodySize, xml: config.raw.xml, attachments: config.raw.attachments, payloads, log, auth }));
  app.use(statusApi(store, auth));
  app.use(receiptApi(pipeline, auth));
  app.use(adminApi({ pipeline, store, auth, config, adapters }));
  app.use(consolePages());
  app.get('/metrics', async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.text());
  });
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    const [checks, storeCheck] = await Promise.all([
      Promise.all([...adapters].map(async ([target, adapter]) => ({ target, ...(await adapter.check()) }))),
      store.check(),
    ]);
    const transportCheck = transport.health();
    const ready = storeCheck.ok && transportCheck.ok;
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not-ready', mode: backbone.mode, store: storeCheck, transport: transportCheck, targets: checks });
  });
  app.use(intakeErrors(log));

  const tls = config.raw.server.tls;
  const server: Server = tls
    ? https.createServer({
      cert: readSecretBytes(tls.cert), key: readSecretBytes(tls.key),
      // Ask for a client certificate, but let token callers in too: the Authenticator decides per request.
      ...(tls.clientCa ? { ca: readSecretBytes(tls.clientCa), requestCert: true, rejectUnauthorized: false } : {}),
    }, app)
    : http.createServer(app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? config.raw.server.port, options.host ?? config.raw.server.host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const url = `${tls ? 'https' : 'http'}://${address.address.includes(':') ? `[${address.address}]` : address.address}:${address.port}`;
  log.info({ event: 'started', url, mode: backbone.mode, state: backbone.where, targets: [...config.targets.keys()], routes: config.raw.routes.length }, 'antragsrouter started');

  let closing: Promise<void> | undefined;
  return {
    url,
    pipeline,
    store,
    payloads,
    retention,
    close(graceMs = 10_000) {
      closing ??= (async () => {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
        });
        pipeline.stop();
        await retention.stop();
        // Accepted submissions' deliveries still being queued go to the broker before it is left (within
        // the grace time: a blocked broker must not hold the shutdown; the sweep queues what is left).
        await Promise.race([pipeline.queued(), new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref())]);
        await transport.stop(graceMs);
        await pipeline.settle();
        await Promise.allSettled([...adapters.values()].map((adapter) => adapter.close()));
        await validator?.close();
        await backbone.close();
        log.info({ event: 'stopped' }, 'antragsrouter stopped');
      })();
      return closing;
    },
  };
}
