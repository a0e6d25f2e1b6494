// A small demo back office for the bundled example and the tests: accepts JSON or XML deliveries per office,
// answers with a file number (Aktenzeichen), recognises repeated Idempotency-Keys, and can be told to fail.
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import express from 'express';

export interface ReceivedDelivery {
  office: string;
  idempotencyKey: string;
  submissionId: string;
  contentType: string;
  bytes: number;
  sha256: string;
  body: Buffer;
  aktenzeichen: string;
  /** W3C trace context the router passed on, if any. */
  traceparent?: string;
}

/** Decides the answer to one request: a status, or 'hang' to never answer (timeout tests). */
export type Behaviour = (office: string, request: { idempotencyKey: string }) => number | 'hang';

export interface BackOffice {
  url: string;
  /** First delivery per idempotency key, in arrival order. */
  received: ReceivedDelivery[];
  /** Requests that repeated an idempotency key already received. */
  duplicates: number;
  /** Requests answered with a failure status (any office). */
  failures: number;
  setBehaviour(behaviour: Behaviour | undefined): void;
  close(): Promise<void>;
}

export async function startBackOffice(options: { port?: number; host?: string; directory?: string; behaviour?: Behaviour } = {}): Promise<BackOffice> {
  const received: ReceivedDelivery[] = [];
  const byKey = new Map<string, ReceivedDelivery>();
  // With a directory the back office is durable like a real one: an index of what it took survives a
  // restart, so a repeated Idempotency-Key is recognised and file numbers go on where they stopped.
  const index = options.directory ? path.join(options.directory, 'index.jsonl') : undefined;
  if (index && existsSync(index)) {
    for (const line of readFileSync(index, 'utf8').split('\n').filter(Boolean)) {
      const entry = { ...(JSON.parse(line) as Omit<ReceivedDelivery, 'body'>), body: Buffer.alloc(0) };
      received.push(entry);
      if (entry.idempotencyKey) byKey.set(entry.idempotencyKey, entry);
    }
  }
  let behaviour = options.behaviour;
  const state = { duplicates: 0, failures: 0 };
  const app = express();
  app.use(express.raw({ type: () => true, limit: '50mb' }));
  // Failure injection for trying out retries by hand:
  //   curl -X POST 'localhost:8090/_fail?office=muenchen-lbk&status=503&seconds=60'   (or &count=3)
  let injected: { office?: string; status: number; until?: number; remaining?: number } | undefined;
  app.post('/_fail', (req, res) => {
    const status = Number(req.query.status ?? 503);
    if (!Number.isInteger(status) || status < 300 || status > 599) {
      res.status(400).json({ error: 'status must be 300..599' });
      return;
    }
    injected = {
      office: typeof req.query.office === 'string' ? req.query.office : undefined,
      status,
      until: req.query.seconds ? Date.now() + Number(req.query.seconds) * 1000 : undefined,
      remaining: req.query.count ? Number(req.query.count) : undefined,
    };
    res.json({ injected });
  });
  app.delete('/_fail', (_req, res) => {
    injected = undefined;
    res.json({ injected: null });
  });
  const injectedStatus = (office: string): number | undefined => {
    if (!injected || (injected.office && injected.office !== office)) return undefined;
    if ((injected.until !== undefined && Date.now() > injected.until) || injected.remaining === 0) {
      injected = undefined;
      return undefined;
    }
    if (injected.remaining !== undefined) injected.remaining -= 1;
    return injected.status;
  };
  app.options('/:office', (_req, res) => {
    res.sendStatus(204);
  });
  app.post('/:office', (req, res) => {
    const office = String(req.params.office);
    const idempotencyKey = req.get('idempotency-key') ?? '';
    const decided = injectedStatus(office) ?? behaviour?.(office, { idempotencyKey }) ?? 201;
    if (decided === 'hang') return;
    if (decided >= 300) {
      state.failures += 1;
      res.status(decided).json({ error: `demo back office answers ${decided}` });
      return;
    }
    const existing = byKey.get(idempotencyKey);
    if (existing) {
      state.duplicates += 1;
      res.status(200).json({ aktenzeichen: existing.aktenzeichen, duplicate: true });
      return;
    }
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const delivery: ReceivedDelivery = {
      office,
      idempotencyKey,
      submissionId: req.get('x-submission-id') ?? '',
      contentType: req.get('content-type') ?? '',
      bytes: body.length,
      sha256: createHash('sha256').update(body).digest('hex'),
      body,
      aktenzeichen: `${office.toUpperCase()}-${new Date().getFullYear()}-${String(received.length + 1).padStart(6, '0')}`,
      traceparent: req.get('traceparent'),
    };
    received.push(delivery);
    if (idempotencyKey) byKey.set(idempotencyKey, delivery);
    if (options.directory && index) {
      const dir = path.join(options.directory, office);
      mkdirSync(dir, { recursive: true });
      writeFileSync(path.join(dir, `${delivery.aktenzeichen}.${delivery.contentType.includes('json') ? 'json' : 'xml'}`), body);
      const { body: _body, ...entry } = delivery;
      appendFileSync(index, `${JSON.stringify(entry)}\n`);
    }
    res.status(201).json({ aktenzeichen: delivery.aktenzeichen });
  });
  app.get('/', (_req, res) => {
    res.json({ received: received.map(({ body: _body, ...summary }) => summary), duplicates: state.duplicates, failures: state.failures });
  });
  const server = await new Promise<ReturnType<typeof app.listen>>((resolve, reject) => {
    const s = app.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    get duplicates() { return state.duplicates; },
    get failures() { return state.failures; },
    setBehaviour(next) { behaviour = next; },
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
