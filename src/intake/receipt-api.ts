// Receipts from back offices: POST /api/v1/submissions/{id}/receipts (role receipt, for the targets the
// client is configured for) with the file number (Aktenzeichen) or a rejection after the back office's
// own check. Recorded once in the status and passed on to the sender as a status callback.
import express, { type Router } from 'express';
import { z } from 'zod';
import type { Authenticator } from '../auth/auth';
import type { Pipeline } from '../pipeline';
import { SUBMISSION_ID } from '../store/store';
import { problemFor, sendProblem } from './problem';

const code = z.string().trim().min(1).max(200).regex(/^[^\r\n]*$/, 'a single line');

const receiptBody = z.strictObject({
  target: z.string().min(1).max(100),
  status: z.enum(['accepted', 'rejected']),
  fileNumber: code.optional(),
  reason: code.optional(),
}).refine((r) => r.status === 'accepted' || r.reason !== undefined, { message: 'a rejection needs a reason', path: ['reason'] });

export function receiptApi(pipeline: Pipeline, auth: Authenticator): Router {
  const router = express.Router();
  router.post('/api/v1/submissions/:id/receipts', auth.require('receipt'), express.json({ limit: '4kb' }), async (req, res) => {
    const id = String(req.params.id).toLowerCase();
    const parsed = receiptBody.safeParse(req.body ?? {});
    if (!parsed.success) {
      sendProblem(res, problemFor('invalid-request', parsed.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; '), req.originalUrl));
      return;
    }
    const { target, ...receipt } = parsed.data;
    const client = req.client!;
    if (!client.targets?.has(target)) {
      sendProblem(res, problemFor('forbidden', `client ${client.name} may not report receipts for target ${target}`, req.originalUrl));
      return;
    }
    const result = SUBMISSION_ID.test(id) ? await pipeline.receipt(id, target, receipt, client.name) : { ok: false as const, problem: 'not-found' as const, detail: 'malformed id' };
    if (result.ok) {
      res.json({ ok: true });
      return;
    }
    sendProblem(res, problemFor(result.problem === 'not-found' ? 'submission-not-found' : 'wrong-state', result.detail, req.originalUrl));
  });
  return router;
}
