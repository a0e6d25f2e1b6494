// Status API: GET /api/v1/submissions/{id} — state, routing facts, deliveries and history; no content.
import express, { type Router } from 'express';
import { ANONYMOUS, type Authenticator } from '../auth/auth';
import { SUBMISSION_ID, type Store } from '../store/store';
import { problemFor, sendProblem } from '../intake/problem';


export function statusApi(store: Store, auth: Authenticator): Router {
  const router = express.Router();
  router.get('/api/v1/submissions/:id', auth.require('submit', 'admin'), async (req, res) => {
    const id = String(req.params.id);
    const found = SUBMISSION_ID.test(id.toLowerCase()) ? await store.get(id.toLowerCase()) : undefined;
    // A sender sees its own submissions only (operators see all); another's is answered as unknown.
    const client = req.client!;
    const status = found && (client === ANONYMOUS || client.roles.has('admin') || found.client === client.name) ? found : undefined;
    if (!status) {
      sendProblem(res, problemFor('submission-not-found', `no submission with id ${SUBMISSION_ID.test(id.toLowerCase()) ? id : '(malformed id)'}`, req.originalUrl));
      return;
    }
    res.json({ submissionId: status.id, ...status, id: undefined });
  });
  return router;
}
