// Test harness: temporary deployments of the router (in-process or as a child process) next to a demo back office.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { stringify } from 'yaml';
import { compileConfig } from '../../src/config/load';
import { startBackOffice, type BackOffice } from '../../src/demo/back-office';
import { startRouter, type RunningRouter } from '../../src/main';
import { Topology } from '../../src/transport/rabbitmq-topology';
import { amqpUrl, databaseUrl, deleteTopology, dropSchema, runId } from './services';
import { CALLBACK_QUEUE } from '../../src/callbacks/callbacks';

/** Embedded: SQLite file in the test's directory. Production: PostgreSQL + RabbitMQ, own schema and queue prefix. */
export type Mode = 'embedded' | 'production';
export const MODES: Mode[] = ['embedded', 'production'];

export const REPO = path.resolve(__dirname, '../..');
export const FIXTURES = path.join(REPO, 'test/fixtures');

const tempDirs: string[] = [];
// Removed when the test process (a jest worker) exits; KEEP_TEST_DIRS=1 keeps them for a post-mortem.
process.once('exit', () => {
  if (process.env.KEEP_TEST_DIRS) return;
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

/** A fresh directory under the system's temp dir, removed when the test process exits. */
export function tempDir(prefix = 'antragsrouter-'): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

/** A deployment for the three cities, with fast retries, writing into `dir`. */
export function cityConfig(dir: string, backOfficeUrl: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    instance: 'test',
    server: { port: 0 },
    store: { path: path.join(dir, 'store.db') },
    mappingsDir: path.join(REPO, 'mappings'),
    namespaces: { xbau: 'http://www.xleitstelle.de/xbau/2/6' },
    facts: {
      ags: [
        'string(/*/xbau:bauvorhaben/xbau:verortung/xbau:baugrundstueck/xbau:grundstueck/xbau:anschrift/xbau:gemeindeschluessel/code)',
        "substring-after($reader, 'bab:')",
      ],
    },
    delivery: { retry: { maxAttempts: 5, initialDelay: '50ms', maxDelay: '200ms' } },
    targets: {
      'muenchen-lbk': { adapter: 'http', mapping: 'xbau-bauantrag-json', config: { url: `${backOfficeUrl}/muenchen-lbk`, referenceField: 'aktenzeichen', timeoutMs: 2000 } },
      'augsburg-boa': { adapter: 'file', mapping: 'xbau-bauantrag-json', config: { directory: path.join(dir, 'out/augsburg'), fileName: '{messageType}-{submissionId}.{ext}' } },
      'nuernberg-bob': { adapter: 'http', mapping: 'xml-passthrough', config: { url: `${backOfficeUrl}/nuernberg-bob`, timeoutMs: 2000 } },
    },
    routes: [
      { name: 'muenchen', match: { tenant: '09162000' }, deliver: ['muenchen-lbk'] },
      { name: 'augsburg', match: { tenant: '097610000000', messageType: ['0200', '0202'] }, deliver: ['augsburg-boa'] },
      { name: 'nuernberg', match: { tenant: '09564000' }, deliver: ['nuernberg-bob'] },
    ],
    ...overrides,
  };
}

/** Log lines captured as text, to prove what never appears in them. */
export function captureLog(): { log: pino.Logger; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  return { log: pino({ level: 'debug' }, stream), text: () => chunks.join('') };
}

/**
 * Starts a router in-process. In production mode it gets a fresh PostgreSQL schema and RabbitMQ prefix
 * (unless the configuration names them), dropped again by `close()` unless `keep` is set.
 */
export async function startTestRouter(config: Record<string, unknown>, log = pino({ level: 'silent' }), mode: Mode = 'embedded', keep = false): Promise<RunningRouter> {
  if (mode === 'embedded') return startRouter(compileConfig(config, 'test'), { log, production: false });
  const [amqp, database] = await Promise.all([amqpUrl(), databaseUrl()]);
  const compiled = compileConfig(productionConfig(config), 'test');
  const router = await startRouter(compiled, { log, production: { amqpUrl: amqp, databaseUrl: database } });
  const close = router.close.bind(router);
  return Object.assign(router, {
    async close(graceMs?: number) {
      await close(graceMs);
      if (keep) return;
      const { schema } = compiled.raw.store.postgres;
      // The callback stage's queue too (declared when a client has a callback; deleting a missing queue is a no-op).
      const queues = ['route', CALLBACK_QUEUE, ...[...compiled.targets.keys()].map((t) => `deliver.${t}`)];
      const topology = new Topology(compiled.raw.transport.amqp.prefix, 0);
      await Promise.all([dropSchema(database, schema), deleteTopology(amqp, topology.names(queues))]);
    },
  });
}

/** The configuration with a schema and queue prefix of its own (kept where it names them already). */
export function productionConfig(config: Record<string, unknown>): Record<string, unknown> {
  const id = runId('e2e');
  const store = (config.store ?? {}) as Record<string, unknown>;
  const transport = (config.transport ?? {}) as Record<string, unknown>;
  return {
    ...config,
    store: { ...store, postgres: { schema: id, ...(store.postgres as object | undefined) } },
    transport: { ...transport, amqp: { prefix: id, heartbeatSeconds: 10, ...(transport.amqp as object | undefined) } },
  };
}

/** Writes the configuration as YAML (for the command line). */
export function writeConfig(dir: string, config: Record<string, unknown>): string {
  const file = path.join(dir, 'antragsrouter.yaml');
  writeFileSync(file, stringify(config));
  return file;
}

/** A copy of a fixture message with a new nachrichtenUUID (and optionally another AGS). */
export function variant(xml: string, options: { uuid?: string; ags?: string } = {}): string {
  const uuid = options.uuid ?? randomUUID();
  let out = xml.replace(/<nachrichtenUUID>[^<]+<\/nachrichtenUUID>/, `<nachrichtenUUID>${uuid}</nachrichtenUUID>`);
  if (options.ags) out = out.replace(/09162000|09761000|09564000/g, options.ags);
  return out;
}

export async function post(url: string, body: string | Buffer, contentType = 'application/xml'): Promise<{ status: number; type: string; json: Record<string, unknown> }> {
  const response = await fetch(`${url}/api/v1/submissions`, { method: 'POST', headers: { 'content-type': contentType }, body: typeof body === 'string' ? body : new Uint8Array(body) });
  return { status: response.status, type: response.headers.get('content-type') ?? '', json: (await response.json()) as Record<string, unknown> };
}

export async function getStatus(url: string, id: string): Promise<Record<string, unknown> & { state: string; deliveries: Array<Record<string, unknown>>; history: Array<Record<string, unknown>> }> {
  const response = await fetch(`${url}/api/v1/submissions/${id}`);
  return (await response.json()) as never;
}

/** Polls until `condition` returns a value, or fails after `timeoutMs`. */
export async function eventually<T>(condition: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 15_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A demo back office and a router with `cityConfig` (plus overrides) in `mode`, logging into a capture. */
export async function startCityRouter(mode: Mode, overrides: Record<string, unknown> = {}): Promise<{ router: RunningRouter; backOffice: BackOffice; logText: () => string; close(): Promise<void> }> {
  const backOffice = await startBackOffice();
  const captured = captureLog();
  const router = await startTestRouter(cityConfig(tempDir(), backOffice.url, overrides), captured.log, mode).catch(async (error: unknown) => {
    await backOffice.close();
    throw error;
  });
  return {
    router, backOffice, logText: captured.text,
    async close() {
      await router.close();
      await backOffice.close();
    },
  };
}

/**
 * The reason each bad fixture is refused with, at every intake, by a deployment without schema validation
 * (with XBau 2.6 validation configured, d is `schema-invalid`).
 */
export const BAD_FIXTURE_REASONS: Readonly<Record<string, string>> = {
  'a-not-well-formed-unescaped-ampersand.xml': 'xml-not-well-formed',
  'b-billion-laughs-entity-expansion.xml': 'xml-doctype-forbidden',
  'c-xxe-external-entity-etc-passwd.xml': 'xml-doctype-forbidden',
  'd-schema-invalid-leser-without-kennung.xml': 'xoev-header-incomplete',
  'e-two-root-elements-trailing-garbage.xml': 'xml-multiple-roots',
};
