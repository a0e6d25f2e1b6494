// The admin API (role admin): find submissions, inspect them, replay dead deliveries, re-route parked
// submissions, discard with a reason, read the audit trail. Every action is audited with the operator's
// client name; content is shown only through an explicit, audited request that states a reason.
import express, { type Request, type Response, type Router } from 'express';
import { z } from 'zod';
import type { Authenticator } from '../auth/auth';
import type { LoadedConfig } from '../config/load';
import type { Adapter } from '../deliver/adapter';
import { problemFor, sendProblem } from '../intake/problem';
import type { Pipeline } from '../pipeline';
import { SUBMISSION_ID, SUBMISSION_STATES, type OperatorResult, type Store } from '../store/store';

const note = z.string().trim().min(1).max(500);

const listQuery = z.strictObject({
  state: z.union([z.enum(SUBMISSION_STATES), z.array(z.enum(SUBMISSION_STATES))]).optional(),
  target: z.string().max(100).optional(),
  deliveryState: z.enum(['pending', 'delivered', 'dead', 'discarded']).optional(),
  route: z.string().max(100).optional(),
  tenant: z.string().regex(/^\d{8}$/).optional(),
  from: z.iso.datetime({ offset: true }).optional(),
  to: z.iso.datetime({ offset: true }).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
  after: z.string().regex(SUBMISSION_ID).optional(),
});

const replayBody = z.strictObject({ target: z.string().min(1), toTarget: z.string().min(1).optional(), note: note.optional() });
const rerouteBody = z.strictObject({ note: note.optional() });
const discardBody = z.strictObject({ target: z.string().min(1).optional(), reason: note });
const contentBody = z.strictObject({ reason: note });

/** A zod failure as a problem naming the fields (values are never echoed). */
function invalid(res: Response, req: Request, error: z.ZodError): void {
  const detail = error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ');
  sendProblem(res, problemFor('invalid-request', detail, req.originalUrl));
}

function answer(res: Response, req: Request, result: OperatorResult): void {
  if (result.ok) {
    res.json({ ok: true });
    return;
  }
  sendProblem(res, problemFor(result.problem === 'not-found' ? 'submission-not-found' : 'wrong-state', result.detail, req.originalUrl));
}

export interface AdminApiDependencies {
  pipeline: Pipeline;
  store: Store;
  auth: Authenticator;
  config: LoadedConfig;
  adapters: ReadonlyMap<string, Adapter>;
}

export function adminApi({ pipeline, store, auth, config, adapters }: AdminApiDependencies): Router {
  const router = express.Router();
  router.use('/api/v1/admin', auth.require('admin'), express.json({ limit: '16kb' }));
  const actor = (req: Request) => req.client!.name;
  const idOf = (req: Request, res: Response): string | undefined => {
    const id = String(req.params.id).toLowerCase();
    if (SUBMISSION_ID.test(id)) return id;
    sendProblem(res, problemFor('submission-not-found', 'no submission with id (malformed id)', req.originalUrl));
    return undefined;
  };

  router.get('/api/v1/admin/submissions', async (req, res) => {
    const parsed = listQuery.safeParse(req.query);
    if (!parsed.success) return invalid(res, req, parsed.error);
    const q = parsed.data;
    const items = await store.list({
      states: q.state === undefined ? undefined : [q.state].flat(),
      target: q.target, deliveryState: q.deliveryState, route: q.route, tenant: q.tenant,
      receivedFrom: q.from ? new Date(q.from) : undefined, receivedTo: q.to ? new Date(q.to) : undefined,
      limit: q.limit, after: q.after,
    });
    res.json({ items, next: items.length === q.limit ? items.at(-1)!.id : undefined });
  });

  router.get('/api/v1/admin/submissions/:id', async (req, res) => {
    const id = idOf(req, res);
    if (!id) return;
    const status = await store.get(id);
    if (!status) return sendProblem(res, problemFor('submission-not-found', `no submission with id ${id}`, req.originalUrl));
    res.json({ ...status, audit: await store.audit({ submissionId: id, limit: 100 }) });
  });

  // Content is personal data: a POST with a stated reason, written to the audit trail before it is sent.
  router.post('/api/v1/admin/submissions/:id/content', async (req, res) => {
    const id = idOf(req, res);
    if (!id) return;
    const parsed = contentBody.safeParse(req.body ?? {});
    if (!parsed.success) return invalid(res, req, parsed.error);
    const payload = await store.payload(id);
    if (!payload) return sendProblem(res, problemFor('submission-not-found', `no content for submission ${id} (unknown, or deleted by retention)`, req.originalUrl));
    await store.recordAudit({ actor: actor(req), action: 'view-content', submissionId: id, detail: parsed.data.reason });
    res.type('application/xml').set('Cache-Control', 'no-store').send(payload);
  });

  router.post('/api/v1/admin/submissions/:id/replay', async (req, res) => {
    const id = idOf(req, res);
    if (!id) return;
    const parsed = replayBody.safeParse(req.body ?? {});
    if (!parsed.success) return invalid(res, req, parsed.error);
    const { target, toTarget } = parsed.data;
    if (toTarget !== undefined && !config.targets.has(toTarget)) {
      return sendProblem(res, problemFor('unknown-target', `no target ${toTarget} in the configuration`, req.originalUrl));
    }
    answer(res, req, await pipeline.replay(id, target, { toTarget, actor: actor(req), note: parsed.data.note }));
  });

  router.post('/api/v1/admin/submissions/:id/reroute', async (req, res) => {
    const id = idOf(req, res);
    if (!id) return;
    const parsed = rerouteBody.safeParse(req.body ?? {});
    if (!parsed.success) return invalid(res, req, parsed.error);
    answer(res, req, await pipeline.reroute(id, { actor: actor(req), note: parsed.data.note }));
  });

  router.post('/api/v1/admin/submissions/:id/discard', async (req, res) => {
    const id = idOf(req, res);
    if (!id) return;
    const parsed = discardBody.safeParse(req.body ?? {});
    if (!parsed.success) return invalid(res, req, parsed.error);
    answer(res, req, await store.discard(id, parsed.data.target, { actor: actor(req), action: 'discard', submissionId: id, target: parsed.data.target, detail: parsed.data.reason }));
  });

  router.get('/api/v1/admin/audit', async (req, res) => {
    const parsed = z.strictObject({ submissionId: z.string().regex(SUBMISSION_ID).optional(), limit: z.coerce.number().int().min(1).max(1000).default(100) }).safeParse(req.query);
    if (!parsed.success) return invalid(res, req, parsed.error);
    res.json({ items: await store.audit(parsed.data) });
  });

  router.get('/api/v1/admin/targets', (_req, res) => {
    res.json({ items: [...config.targets.values()].map((t) => ({ name: t.name, adapter: t.adapter.name, mapping: t.mapping.name, concurrency: t.concurrency })) });
  });

  // The console's dashboard: each target's health and last hour's outcomes, throughput per minute.
  router.get('/api/v1/admin/overview', async (_req, res) => {
    const since = new Date(Date.now() - 60 * 60 * 1000);
    const [stats, states, health] = await Promise.all([
      store.stats(since),
      store.countByState(),
      Promise.all([...adapters].map(async ([name, adapter]) => [name, await adapter.check()] as const)),
    ]);
    const targets = [...config.targets.values()].map((t) => {
      const count = (outcome: string) => stats.attempts.find((a) => a.target === t.name && a.outcome === outcome)?.count ?? 0;
      const lastHour = { delivered: count('delivered'), retry: count('retry'), dead: count('dead') };
      const attempts = lastHour.delivered + lastHour.retry + lastHour.dead;
      return {
        name: t.name, adapter: t.adapter.name, health: health.find(([n]) => n === t.name)?.[1] ?? { ok: false, detail: 'no adapter' },
        lastHour, errorRate: attempts ? (lastHour.retry + lastHour.dead) / attempts : 0,
      };
    });
    res.json({ since: since.toISOString(), states, targets, perMinute: stats.perMinute });
  });
  return router;
}
