// HTTP intake: POST /api/v1/submissions with an XÖV/FIM XML body. Answers 202 only after the submission
// is durable; bad input gets a 4xx problem+json with a stable reason code and nothing is stored.
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type { Logger } from 'pino';
import type { Authenticator } from '../auth/auth';
import { InputError } from '../errors';
import { TransportUnavailableError } from '../transport/transport';
import { ValidationUnavailableError } from '../envelope/schema-validation';
import type { Pipeline } from '../pipeline';
import { problemFor, sendInputError, sendProblem } from './problem';

const XML_TYPES = ['application/xml', 'text/xml', 'application/*+xml'];

export function submissionIntake(pipeline: Pipeline, options: { maxBodySize: number; log: Logger; auth: Authenticator }): Router {
  const router = express.Router();
  router.post(
    '/api/v1/submissions',
    options.auth.require('submit'),
    (req: Request, res: Response, next: NextFunction) => {
      if (!req.is(XML_TYPES)) {
        sendProblem(res, problemFor('unsupported-media-type', `send the message as application/xml (got ${req.get('content-type') ?? 'no content type'})`, req.originalUrl));
        return;
      }
      next();
    },
    express.raw({ type: () => true, limit: options.maxBodySize }),
    async (req: Request, res: Response) => {
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      try {
        const result = await pipeline.receive(body, 'http', { idempotencyKey: req.get('idempotency-key'), client: req.client, traceparent: req.get('traceparent') });
        res.status(202).location(`/api/v1/submissions/${result.submissionId}`).json(result);
      } catch (error) {
        if (error instanceof InputError) {
          options.log.info({ event: 'refused', reason: error.code, bytes: body.length, client: req.client?.name }, 'submission refused');
          sendInputError(res, error, req.originalUrl);
          return;
        }
        if (error instanceof ValidationUnavailableError) {
          options.log.error({ event: 'unavailable', reason: 'validation-unavailable', bytes: body.length }, 'schema validation unavailable; answered 503');
          sendProblem(res, problemFor('validation-unavailable', 'the message could not be validated right now; send it again later', req.originalUrl), { 'Retry-After': '10' });
          return;
        }
        if (error instanceof TransportUnavailableError) {
          // Stored, maybe, but not queued: the sender must send again; the resend is idempotent.
          options.log.warn({ event: 'unavailable', bytes: body.length }, 'transport unavailable; answered 503');
          sendProblem(res, problemFor('transport-unavailable', 'the router cannot queue submissions right now; send it again later', req.originalUrl), { 'Retry-After': '10' });
          return;
        }
        options.log.error({ err: error, bytes: body.length }, 'submission could not be stored');
        sendProblem(res, problemFor('store-unavailable', 'the submission could not be stored; send it again later', req.originalUrl), { 'Retry-After': '30' });
      }
    },
  );
  return router;
}

/** Turns body-parser failures (size limit, aborted upload) into problems. */
export function intakeErrors(log: Logger) {
  return (error: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(error);
    const type = (error as { type?: string }).type;
    if (type === 'entity.too.large') {
      const limit = (error as { limit?: number }).limit;
      sendProblem(res, problemFor('payload-too-large', `the body exceeds the limit of ${limit} bytes`, req.originalUrl));
      return;
    }
    if (type === 'request.aborted' || type === 'request.size.invalid') {
      sendProblem(res, problemFor('empty-body', 'the request body was incomplete', req.originalUrl));
      return;
    }
    log.error({ err: error }, 'unexpected error at intake');
    sendProblem(res, problemFor('internal-error', 'internal error', req.originalUrl));
  };
}
