// The error taxonomy: every refusal and every delivery failure carries one stable reason code.
// The README's reason-code table is generated from REASONS (see `antragsrouter reasons`).

/** Stable reason codes with their HTTP status (for intake refusals) and an operator-facing summary. */
export const REASONS = {
  // Intake: the request itself
  'unsupported-media-type': { status: 415, title: 'Unsupported media type' },
  'payload-too-large': { status: 413, title: 'Payload too large' },
  'empty-body': { status: 400, title: 'Empty body' },
  // Intake: multipart bodies, attachments and the intelliForm deposit
  'multipart-invalid': { status: 400, title: 'Multipart body malformed or without the XML application part' },
  'attachment-too-large': { status: 413, title: 'An attachment exceeds the per-attachment size limit' },
  'submission-too-large': { status: 413, title: 'The attachments together exceed the per-submission size limit' },
  'too-many-attachments': { status: 413, title: 'More attachments than the configured limit' },
  'attachment-invalid': { status: 400, title: 'Attachment content unreadable (bad base64, unresolved XOP reference)' },
  'soap-invalid': { status: 400, title: 'Not a SOAP 1.1 deposit request' },
  'deposit-invalid': { status: 400, title: 'The deposit lacks a required field (id, primary data attachment)' },
  // Intake: XML hardening
  'xml-not-well-formed': { status: 400, title: 'XML is not well-formed' },
  'xml-doctype-forbidden': { status: 400, title: 'DOCTYPE and entity declarations are forbidden' },
  'xml-multiple-roots': { status: 400, title: 'More than one root element' },
  'xml-trailing-content': { status: 400, title: 'Content after the root element' },
  'xml-too-deep': { status: 400, title: 'Element nesting too deep' },
  'xml-too-many-elements': { status: 400, title: 'Too many elements' },
  // Intake: XÖV header
  'xoev-header-missing': { status: 400, title: 'No XÖV message header' },
  'xoev-header-incomplete': { status: 400, title: 'XÖV message header incomplete' },
  'xoev-header-invalid': { status: 400, title: 'XÖV message header invalid' },
  'xoev-attribute-missing': { status: 400, title: 'XÖV root attribute missing' },
  // Status API
  'submission-not-found': { status: 404, title: 'Submission not found' },
  // Routing
  'no-route': { status: 0, title: 'No route matched; submission parked' },
  // Mapping (delivery-time, permanent)
  'mapping-required-field': { status: 0, title: 'A required output field is empty' },
  'mapping-failed': { status: 0, title: 'Mapping could not be applied' },
  // Delivery
  'http-status': { status: 0, title: 'Back office answered with an HTTP status classified as failure' },
  'http-timeout': { status: 0, title: 'Back office did not answer in time' },
  'network-error': { status: 0, title: 'Back office unreachable' },
  'file-write-failed': { status: 0, title: 'Writing the file failed' },
  'attachment-corrupt': { status: 0, title: 'Stored attachment bytes do not match their SHA-256' },
  'adapter-error': { status: 0, title: 'Adapter failed without classifying the error' },
  'max-attempts-exceeded': { status: 0, title: 'Retryable failures exhausted the attempt limit' },
  // Service
  'store-unavailable': { status: 503, title: 'Store unavailable; try again later' },
  'transport-unavailable': { status: 503, title: 'Message broker unavailable; try again later' },
  'internal-error': { status: 500, title: 'Internal error' },
  'redelivery-limit': { status: 0, title: 'A queue message was handed out too often without being settled' },
  'malformed-queue-message': { status: 0, title: 'A queue message could not be read (not written by this router?)' },
} as const;

export type ReasonCode = keyof typeof REASONS;

/**
 * A refusal of input, safe to show to the caller: `detail` names positions, element names and limits,
 * never content values.
 */
export class InputError extends Error {
  constructor(
    readonly code: ReasonCode,
    readonly detail: string,
  ) {
    super(`${code}: ${detail}`);
    this.name = 'InputError';
  }

  get status(): number {
    return REASONS[this.code].status || 400;
  }
}

/** A configuration problem, named by its path (e.g. `routes[3].deliver[0]`). */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}
