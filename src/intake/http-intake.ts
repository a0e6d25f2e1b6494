// HTTP intake: POST /api/v1/submissions with an XÖV/FIM XML body, or multipart with attachments. Answers 202
// only after the submission is durable; bad input gets a 4xx problem+json with a stable reason code and
// nothing is stored (attachments already streamed into the payload store are deleted again).
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type { Logger } from 'pino';
import type { Authenticator } from '../auth/auth';
import { InputError } from '../errors';
import { TransportUnavailableError } from '../transport/transport';
import { ValidationUnavailableError } from '../envelope/schema-validation';
import type { Pipeline, ReceiveResult } from '../pipeline';
import type { PayloadStore } from '../store/payload-store';
import { AttachmentCollector, type AttachmentLimits } from './attachment-collector';
import { mediaTypeOf, readMultipart, stripAngles } from './multipart';
import { problemFor, sendInputError, sendProblem } from './problem';

const XML_TYPES = ['application/xml', 'text/xml', 'application/*+xml'];
const MULTIPART_TYPES = ['multipart/form-data', 'multipart/related'];

export interface HttpIntakeOptions {
  maxBodySize: number;
  attachments: AttachmentLimits;
  payloads: PayloadStore;
  log: Logger;
  auth: Authenticator;
}

/**
 * `POST /api/v1/submissions` with either the XML document as the body, or a multipart body:
 * `multipart/form-data` with the XML in the part named `application`, or `multipart/related` with the XML
 * as the root part (the `start` parameter, else the first part); a part named `rendering` is the PDF
 * rendering, every other part an attachment, streamed into the payload store as it arrives.
 */
export function submissionIntake(pipeline: Pipeline, options: HttpIntakeOptions): Router {
  const router = express.Router();
  const { log } = options;

  /** Answers with the outcome of `receive`: 202, or the problem for exactly this failure. */
  const answer = async (req: Request, res: Response, bytes: () => number, receive: () => Promise<ReceiveResult>) => {
    try {
      const result = await receive();
      res.status(202).location(`/api/v1/submissions/${result.submissionId}`).json(result);
    } catch (error) {
      // A refusal while the body still streams in: do not read the rest of it, close the connection.
      if (!req.complete) res.set('Connection', 'close');
      if (error instanceof InputError) {
        log.info({ event: 'refused', reason: error.code, bytes: bytes(), client: req.client?.name }, 'submission refused');
        sendInputError(res, error, req.originalUrl);
        return;
      }
      if (error instanceof ValidationUnavailableError) {
        log.error({ event: 'unavailable', reason: 'validation-unavailable', bytes: bytes() }, 'schema validation unavailable; answered 503');
        sendProblem(res, problemFor('validation-unavailable', 'the message could not be validated right now; send it again later', req.originalUrl), { 'Retry-After': '10' });
        return;
      }
      if (error instanceof TransportUnavailableError) {
        // Stored, maybe, but not queued: the sender must send again; the resend is idempotent.
        log.warn({ event: 'unavailable', bytes: bytes() }, 'transport unavailable; answered 503');
        sendProblem(res, problemFor('transport-unavailable', 'the router cannot queue submissions right now; send it again later', req.originalUrl), { 'Retry-After': '10' });
        return;
      }
      log.error({ err: error, bytes: bytes() }, 'submission could not be stored');
      sendProblem(res, problemFor('store-unavailable', 'the submission could not be stored; send it again later', req.originalUrl), { 'Retry-After': '30' });
    }
  };

  router.post(
    '/api/v1/submissions',
    options.auth.require('submit'),
    async (req: Request, res: Response, next: NextFunction) => {
      const mediaType = mediaTypeOf(req.headers);
      if (mediaType && MULTIPART_TYPES.includes(mediaType.type)) {
        await answer(req, res, () => Number(req.socket.bytesRead), () => receiveMultipart(pipeline, options, req, mediaType));
        return;
      }
      if (!req.is(XML_TYPES)) {
        sendProblem(res, problemFor('unsupported-media-type', `send the message as application/xml or multipart (got ${req.get('content-type') ?? 'no content type'})`, req.originalUrl));
        return;
      }
      next();
    },
    express.raw({ type: () => true, limit: options.maxBodySize }),
    async (req: Request, res: Response) => {
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      await answer(req, res, () => body.length, () => pipeline.receive(body, 'http', { idempotencyKey: req.get('idempotency-key'), client: req.client, traceparent: req.get('traceparent') }));
    },
  );
  return router;
}

async function receiveMultipart(pipeline: Pipeline, options: HttpIntakeOptions, req: Request, mediaType: { type: string; parameters: Record<string, string> }): Promise<ReceiveResult> {
  const collector = new AttachmentCollector(options.payloads, options.attachments);
  const formData = mediaType.type === 'multipart/form-data';
  const start = mediaType.parameters.start ? stripAngles(mediaType.parameters.start) : undefined;
  try {
    const body = await readMultipart(req, {
      isRoot: (info, index, contentId) => (formData ? info.name === 'application' : start ? contentId === start : index === 0),
      rootLimit: { maxBytes: options.maxBodySize, code: 'payload-too-large', detail: `the XML application exceeds the limit of ${options.maxBodySize} bytes` },
      collector,
    });
    const attachments = body.parts.map((part) => collector.record(part.blob, {
      id: part.contentId ?? (part.name === 'rendering' ? 'rendering' : undefined),
      name: part.filename ?? part.contentId,
      mediaType: part.mediaType,
      role: part.name === 'rendering' ? 'rendering' : 'attachment',
    }));
    return await pipeline.receive(body.root.body, 'http', { idempotencyKey: req.get('idempotency-key'), client: req.client, traceparent: req.get('traceparent'), attachments });
  } catch (error) {
    await collector.discard();
    throw error;
  }
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
