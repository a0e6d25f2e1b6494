// The intelliForm `deposit` intake: cit intelliForm's back-end web service ApplicationService (SOAP 1.1,
// document/literal), with attachments inline as base64 or as MTOM/XOP parts. The primary data attachment is
// the routing document; the others are streamed into the payload store. Answers `depositResponse` only once
// the submission is durable; every error is an `ApplicationFault` with a `faultId` and a citizen-fit
// German `userMessage`. The deposit `id` is the submission's idempotency key: a repeated deposit is
// answered like the first and delivered once.
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import express, { type Request, type Response, type Router } from 'express';
import type { Logger } from 'pino';
import type { Authenticator } from '../auth/auth';
import { decodeXml } from '../envelope/decode';
import { parseDom } from '../envelope/dom';
import { inspectXml, type XmlLimits } from '../envelope/xml-gate';
import type { Facts } from '../envelope/envelope';
import { ValidationUnavailableError } from '../envelope/schema-validation';
import { InputError, type ReasonCode } from '../errors';
import type { Pipeline, ReceiveResult } from '../pipeline';
import { customParameterFact } from '../route/keys';
import { readBounded, type PayloadStore, type StoredBlob } from '../store/payload-store';
import type { AttachmentRecord } from '../store/store';
import { TransportUnavailableError } from '../transport/transport';
import { AttachmentCollector, type AttachmentLimits } from './attachment-collector';
import { base64Chunks, decodeBase64 } from './base64-chunks';
import { BACKEND_NAMESPACE, readDeposit, SOAP11_NAMESPACE, type DepositAttachment, type DepositData } from './deposit-request';
import { mediaTypeOf, readMultipart, stripAngles, type StoredPart } from './multipart';

export interface DepositEndpointOptions {
  /** URL path of the endpoint, e.g. `/intelliform/deposit`. */
  path: string;
  /** Address announced in the WSDL; default: the address the WSDL was requested at. */
  publicUrl?: string;
  maxEnvelopeSize: number;
  /** Largest routing document (the primary data attachment), as `server.maxBodySize`. */
  maxDocumentSize: number;
  xml: XmlLimits;
  attachments: AttachmentLimits;
  payloads: PayloadStore;
  log: Logger;
  /** Who may deposit: a client with role `submit` (the form server's token or certificate). */
  auth: Authenticator;
}

const XML_TYPES = new Set(['text/xml', 'application/xml']);

/** Finds `resources/intelliform/` from the source tree and from the build (dist/src/...). */
function resource(name: string): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'resources', 'intelliform', name);
    if (existsSync(candidate)) return readFileSync(candidate, 'utf8');
    if (path.dirname(dir) === dir) throw new Error(`resources/intelliform/${name} not found`);
  }
}

/** The WSDL as served: endpoint address and schema location point here; the WS-SecurityPolicy is removed (not enforced). */
export function servedWsdl(wsdl: string, endpoint: string): string {
  return wsdl
    .replace(/(<soap:address\s+location=")[^"]*(")/, `$1${escapeXml(endpoint)}$2`)
    .replace(/schemaLocation="ApplicationService\.xsd"/, `schemaLocation="${escapeXml(`${endpoint}?xsd=ApplicationService.xsd`)}"`)
    .replace(/\s*<wsp:Policy[\s\S]*<\/wsp:Policy>/, '');
}

export function depositEndpoint(pipeline: Pipeline, options: DepositEndpointOptions): Router {
  const router = express.Router();
  const wsdl = resource('ApplicationService.wsdl');
  const xsd = resource('ApplicationService.xsd');

  router.get(options.path, (req: Request, res: Response) => {
    const endpoint = options.publicUrl ?? `${req.protocol}://${req.get('host') ?? 'localhost'}${options.path}`;
    if ('wsdl' in req.query) {
      res.type('text/xml').send(servedWsdl(wsdl, endpoint));
    } else if (req.query.xsd === 'ApplicationService.xsd') {
      res.type('text/xml').send(xsd);
    } else {
      res.status(404).type('text/plain').send('POST a SOAP deposit here; the WSDL is at ?wsdl');
    }
  });

  router.post(options.path, options.auth.require('submit'), async (req: Request, res: Response) => {
    const collector = new AttachmentCollector(options.payloads, options.attachments);
    try {
      const result = await receiveDeposit(pipeline, options, req, collector);
      res.status(200).type('text/xml; charset=utf-8').send(depositResponse(result));
    } catch (error) {
      await collector.discard().catch((cleanup: unknown) => options.log.warn({ err: cleanup }, 'attachments of a refused deposit could not be deleted'));
      if (!req.complete) res.set('Connection', 'close');
      const fault = faultFor(error, options);
      const level = fault.code === 'internal-error' || fault.code === 'store-unavailable' ? 'error' : 'info';
      options.log[level]({ event: 'refused', source: 'intelliform', reason: fault.code, faultId: fault.faultId, err: level === 'error' ? error : undefined }, 'deposit answered with ApplicationFault');
      // SOAP 1.1 over HTTP: a fault is answered with status 500.
      res.status(500).type('text/xml; charset=utf-8').send(applicationFault(fault));
    }
  });
  return router;
}

/**
 * Reads the request (plain SOAP or MTOM, whose non-root parts go to the payload store) and its `deposit`.
 * Only the extracted strings outlive this function: the envelope's bytes, its text and DOM are garbage
 * once it returns, which matters for inline base64 attachments.
 */
async function readRequest(options: DepositEndpointOptions, req: Request, collector: AttachmentCollector): Promise<{ deposit: DepositData; parts: StoredPart[] }> {
  const mediaType = mediaTypeOf(req.headers);
  const envelopeLimit = { maxBytes: options.maxEnvelopeSize, code: 'payload-too-large' as const, detail: `the SOAP envelope exceeds ${options.maxEnvelopeSize} bytes (send large attachments as MTOM parts)` };
  let envelope: Buffer;
  let parts: StoredPart[] = [];
  if (mediaType?.type === 'multipart/related') {
    const start = mediaType.parameters.start ? stripAngles(mediaType.parameters.start) : undefined;
    const body = await readMultipart(req, { isRoot: (_info, index, contentId) => (start ? contentId === start : index === 0), rootLimit: envelopeLimit, collector });
    envelope = body.root.body;
    parts = body.parts;
  } else if (mediaType && XML_TYPES.has(mediaType.type)) {
    envelope = await readBounded(req, envelopeLimit);
  } else {
    throw new InputError('unsupported-media-type', `send the deposit as text/xml or MTOM multipart/related (got ${req.get('content-type') ?? 'no content type'})`);
  }
  const text = decodeXml(envelope);
  inspectXml(text, options.xml);
  return { deposit: readDeposit(parseDom(text)), parts };
}

/** Stores the attachments and hands the submission to the pipeline. */
async function receiveDeposit(pipeline: Pipeline, options: DepositEndpointOptions, req: Request, collector: AttachmentCollector): Promise<ReceiveResult> {
  const { deposit, parts } = await readRequest(options, req, collector);
  if (!deposit.id) throw new InputError('deposit-invalid', 'depositData has no id');
  if (!deposit.primaryDataAttachmentId) throw new InputError('deposit-invalid', 'depositData has no primaryDataAttachmentId');
  // Ids may repeat (intelliForm's own example has two attachments `myForm-xml`): the first one is the primary data.
  const primaryIndex = deposit.attachments.findIndex((a) => a.id === deposit.primaryDataAttachmentId);
  if (primaryIndex < 0) throw new InputError('deposit-invalid', `no attachment has the primaryDataAttachmentId "${deposit.primaryDataAttachmentId}"`);

  const byContentId = new Map(parts.filter((p) => p.contentId !== undefined).map((p) => [p.contentId!, p]));
  const used = new Set<string>();
  let document: Buffer | undefined;
  const attachments: AttachmentRecord[] = [];
  for (const [index, attachment] of deposit.attachments.entries()) {
    const label = `attachment ${index + 1}`;
    if (index === primaryIndex) {
      document = await primaryDocument(attachment, label, byContentId, used, options, collector);
      continue;
    }
    const blob = await attachmentBlob(attachment, label, byContentId, used, collector);
    attachments.push(collector.record(blob, {
      id: attachment.id, name: attachment.name, mediaType: attachment.contentType,
      role: attachment.id !== undefined && attachment.id === deposit.primaryFormAttachmentId ? 'rendering' : 'attachment',
    }));
  }
  // MTOM parts no attachment refers to are not kept.
  await collector.release(parts.filter((p) => !used.has(p.blob.key)).map((p) => p.blob.key));
  return pipeline.receive(document!, 'intelliform', {
    submissionKey: `intelliform:deposit:${deposit.id}`,
    idempotencyKey: deposit.id,
    facts: depositFacts(deposit),
    attachments,
    client: req.client,
    traceparent: req.get('traceparent'),
  });
}

function xopPart(attachment: DepositAttachment & { content: { kind: 'xop' } }, label: string, byContentId: Map<string, StoredPart>, used: Set<string>): StoredBlob {
  const part = byContentId.get(attachment.content.contentId);
  if (!part) throw new InputError('attachment-invalid', `${label}: its xop:Include names no MIME part of the request`);
  used.add(part.blob.key);
  return part.blob;
}

/** The primary data attachment's bytes, in memory (it is the document routing and mapping parse). */
async function primaryDocument(attachment: DepositAttachment, label: string, byContentId: Map<string, StoredPart>, used: Set<string>, options: DepositEndpointOptions, collector: AttachmentCollector): Promise<Buffer> {
  const { content } = attachment;
  if (content.kind === 'inline') return decodeBase64(content.base64, `${label} (primary data)`, options.maxDocumentSize);
  if (content.kind === 'none') throw new InputError('deposit-invalid', `${label} (primary data) has no content`);
  const blob = xopPart({ ...attachment, content }, label, byContentId, used);
  const body = await readBounded(await options.payloads.open(blob.key), { maxBytes: options.maxDocumentSize, code: 'payload-too-large', detail: `${label} (primary data) exceeds the document limit of ${options.maxDocumentSize} bytes` });
  // It travels as the submission's payload, not as an attachment.
  await collector.release([blob.key]);
  return body;
}

async function attachmentBlob(attachment: DepositAttachment, label: string, byContentId: Map<string, StoredPart>, used: Set<string>, collector: AttachmentCollector): Promise<StoredBlob> {
  const { content } = attachment;
  if (content.kind === 'xop') return xopPart({ ...attachment, content }, label, byContentId, used);
  const source = content.kind === 'inline' ? Readable.from(base64Chunks(content.base64, label), { objectMode: false }) : Readable.from([], { objectMode: false });
  return collector.store(source, label);
}

/** The deposit's routing facts. `username` (the citizen's account) is personal and never becomes a fact. */
export function depositFacts(deposit: DepositData): Facts {
  const facts: Record<string, string | undefined> = {
    depositId: deposit.id,
    formId: deposit.formId,
    form: deposit.form,
    sender: deposit.sender,
    depositTimestamp: deposit.timestamp,
    client: deposit.client,
    clientId: deposit.clientId,
    customer: deposit.customer,
    customerId: deposit.customerId,
    primaryDataAttachmentId: deposit.primaryDataAttachmentId,
    primaryFormAttachmentId: deposit.primaryFormAttachmentId,
  };
  // The first value of a repeated key counts, as in a query string's usual reading.
  for (const [key, value] of deposit.customParameters) facts[customParameterFact(key)] ??= value;
  return Object.fromEntries(Object.entries(facts).filter(([, value]) => value !== undefined));
}

// ---- answers ---------------------------------------------------------------------------------------

const escapeXml = (value: string): string => value.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);

const entry = (key: string, value: string) => `<customParameters><key>${escapeXml(key)}</key><value>${escapeXml(value)}</value></customParameters>`;

const envelope = (body: string) => `<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="${SOAP11_NAMESPACE}"><soap:Body>${body}</soap:Body></soap:Envelope>`;

/** `depositResponse`; its custom parameters tell the form server the submission id and whether it was a resend. */
export function depositResponse(result: ReceiveResult): string {
  return envelope(`<ns2:depositResponse xmlns:ns2="${BACKEND_NAMESPACE}"><return>`
    + entry('antragsrouter-submission-id', result.submissionId)
    + entry('antragsrouter-status', result.duplicate ? 'duplicate' : 'accepted')
    + '</return></ns2:depositResponse>');
}

export interface Fault {
  faultId: string;
  code: ReasonCode;
  /** Operator-facing: reason code and detail (names positions and limits, never content). */
  message: string;
  /** Citizen-facing, German. */
  userMessage: string;
  /** SOAP faultcode: the sender's request (`Client`) or the router (`Server`). */
  side: 'Client' | 'Server';
}

const megabytes = (bytes: number) => (bytes >= 1024 ** 2 ? `${Math.floor(bytes / 1024 ** 2)} MB` : `${Math.floor(bytes / 1024)} kB`);

/** The citizen-facing message for a refusal: what happened and what to do, in plain German. */
function userMessageFor(code: ReasonCode, faultId: string, options: DepositEndpointOptions): string {
  const reference = ` (Fehlernummer ${faultId})`;
  switch (code) {
    case 'attachment-limit-exceeded':
      return `Ihr Antrag konnte nicht angenommen werden: Eine Anlage ist größer als ${megabytes(options.attachments.maxSize)}. Bitte verkleinern Sie die Datei und senden Sie den Antrag erneut.`;
    case 'submission-too-large':
      return `Ihr Antrag konnte nicht angenommen werden: Die Anlagen sind zusammen größer als ${megabytes(options.attachments.maxTotalSize)}. Bitte verkleinern Sie die Dateien und senden Sie den Antrag erneut.`;
    case 'too-many-attachments':
      return `Ihr Antrag konnte nicht angenommen werden: Es sind mehr als ${options.attachments.maxCount} Anlagen beigefügt. Bitte fassen Sie Dateien zusammen und senden Sie den Antrag erneut.`;
    case 'payload-too-large':
      return `Ihr Antrag konnte nicht angenommen werden: Die übermittelten Daten sind zu umfangreich. Bitte verkleinern Sie die Anlagen und senden Sie den Antrag erneut${reference}.`;
    case 'transport-unavailable':
    case 'validation-unavailable':
    case 'store-unavailable':
      return `Ihr Antrag kann im Moment nicht entgegengenommen werden. Bitte senden Sie ihn in einigen Minuten erneut${reference}.`;
    case 'internal-error':
      return `Bei der Übermittlung Ihres Antrags ist ein technischer Fehler aufgetreten. Bitte versuchen Sie es später erneut${reference}.`;
    default:
      return `Ihr Antrag konnte nicht angenommen werden, weil die übermittelten Daten fehlerhaft sind. Bitte wenden Sie sich an die zuständige Stelle und nennen Sie die Fehlernummer ${faultId}.`;
  }
}

export function faultFor(error: unknown, options: DepositEndpointOptions): Fault {
  const faultId = randomUUID();
  let code: ReasonCode;
  let detail: string;
  if (error instanceof InputError) {
    code = error.code;
    detail = error.detail;
  } else if (error instanceof TransportUnavailableError) {
    code = 'transport-unavailable';
    detail = 'the router cannot queue submissions right now; send it again later';
  } else if (error instanceof ValidationUnavailableError) {
    code = 'validation-unavailable';
    detail = 'the message could not be validated right now; send it again later';
  } else {
    code = 'store-unavailable';
    detail = 'the submission could not be stored; send it again later';
  }
  const side = error instanceof InputError ? 'Client' : 'Server';
  return { faultId, code, message: `${code}: ${detail}`, userMessage: userMessageFor(code, faultId, options), side };
}

/** A SOAP 1.1 Fault whose detail is the WSDL's `ApplicationFault` element. */
export function applicationFault(fault: Fault): string {
  return envelope('<soap:Fault>'
    + `<faultcode>soap:${fault.side}</faultcode>`
    + `<faultstring xml:lang="de">${escapeXml(fault.userMessage)}</faultstring>`
    + `<detail><ns2:ApplicationFault xmlns:ns2="${BACKEND_NAMESPACE}">`
    + `<faultId>${escapeXml(fault.faultId)}</faultId>`
    + `<message>${escapeXml(fault.message)}</message>`
    + `<userMessage>${escapeXml(fault.userMessage)}</userMessage>`
    + '</ns2:ApplicationFault></detail></soap:Fault>');
}
