// Composition root: load configuration, open store and transport, connect adapters, wire the pipeline,
// start the HTTP server; shut down gracefully.
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express from 'express';
import type { Logger } from 'pino';
import type { LoadedConfig } from './config/load';
import type { Adapter } from './deliver/adapter';
import { intakeErrors, submissionIntake } from './intake/http-intake';
import { Pipeline } from './pipeline';
import { statusApi } from './status/status-api';
import { openSqlite } from './store/sqlite';
import { SqliteStore } from './store/sqlite-store';
import type { Store } from './store/store';
import { EmbeddedTransport } from './transport/embedded-transport';

export interface RunningRouter {
  /** Base URL of the HTTP server, e.g. http://127.0.0.1:8080 */
  url: string;
  pipeline: Pipeline;
  store: Store;
  /** Stops accepting, lets in-flight deliveries finish (up to `graceMs`), closes everything. */
  close(graceMs?: number): Promise<void>;
}

export interface StartOptions {
  log: Logger;
  /** Override the configured port (0: any free port). */
  port?: number;
  /** Override the configured host. */
  host?: string;
}

export async function startRouter(config: LoadedConfig, options: StartOptions): Promise<RunningRouter> {
  const log = options.log.child({ instance: config.raw.instance });
  const db = openSqlite(config.raw.store.path);
  const store = new SqliteStore(db);
  const transport = new EmbeddedTransport(db, log);

  const adapters = new Map<string, Adapter>();
  try {
    for (const plan of config.targets.values()) {
      const adapter = plan.adapter.create(plan.adapterConfig, { target: plan.name, log: log.child({ target: plan.name }) });
      await adapter.connect();
      adapters.set(plan.name, adapter);
    }
  } catch (error) {
    db.close();
    throw error;
  }

  const pipeline = new Pipeline({ config, store, transport, adapters, log });
  await pipeline.start();

  const app = express();
  app.disable('x-powered-by');
  app.use(submissionIntake(pipeline, { maxBodySize: config.raw.server.maxBodySize, log }));
  app.use(statusApi(store));
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    const checks = await Promise.all([...adapters].map(async ([target, adapter]) => ({ target, ...(await adapter.check()) })));
    const ready = db.open;
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not-ready', store: db.open ? 'ok' : 'closed', targets: checks });
  });
  app.use(intakeErrors(log));

  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(options.port ?? config.raw.server.port, options.host ?? config.raw.server.host, () => resolve(s));
    s.once('error', reject);
  });
  const address = server.address() as AddressInfo;
  const url = `http://${address.address.includes(':') ? `[${address.address}]` : address.address}:${address.port}`;
  log.info({ event: 'started', url, store: config.raw.store.path, targets: [...config.targets.keys()], routes: config.raw.routes.length }, 'antragsrouter started');

  let closing: Promise<void> | undefined;
  return {
    url,
    pipeline,
    store,
    close(graceMs = 10_000) {
      closing ??= (async () => {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
        });
        pipeline.stop();
        await transport.stop(graceMs);
        await Promise.allSettled([...adapters.values()].map((adapter) => adapter.close()));
        db.close();
        log.info({ event: 'stopped' }, 'antragsrouter stopped');
      })();
      return closing;
    },
  };
}
