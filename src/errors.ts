// The error taxonomy: every refusal and every delivery failure carries one stable reason code.
// The README's reason-code table is generated from REASONS (see `antragsrouter reasons`).

/** Stable reason codes with their HTTP status (for intake refusals) and an operator-facing summary. */
export const REASONS = {
  // Intake: the request itself
  'unsupported-media-type': { status: 415, title: 'Unsupported media type' },
  'payload-too-large': { status: 413, title: 'Payload too large' },
  'empty-body': { status: 400, title: 'Empty body' },
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
  // Intake: schema validation (validation.schemas)
  'schema-invalid': { status: 400, title: 'Message is not valid against its XSD' },
  'schema-not-configured': { status: 400, title: 'No schema is configured for the message\'s standard and version' },
  'validation-unavailable': { status: 503, title: 'Schema validation unavailable; try again later' },
  // Who may call
  unauthenticated: { status: 401, title: 'No known API token or client certificate' },
  forbidden: { status: 403, title: 'The client lacks the role for this' },
  'tenant-not-allowed': { status: 403, title: 'The client may not submit for this tenant (AGS/ARS)' },
  'service-not-allowed': { status: 403, title: 'The client may not submit for this service (Leistungsschlüssel)' },
  // Status API
  'submission-not-found': { status: 404, title: 'Submission not found' },
  // Operator actions (admin API)
  'wrong-state': { status: 409, title: "The submission's state does not allow this action" },
  'unknown-target': { status: 400, title: 'No such target in the configuration' },
  'invalid-request': { status: 400, title: 'The request is missing a field or has an invalid one' },
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
  'xdomea-package-failed': { status: 0, title: 'The xdomea package could not be built (an attachment could not be read or did not match its size and hash)' },
  'xdomea-package-too-large': { status: 0, title: 'The xdomea package exceeds the configured maxPackageSize' },
  'tls-failed': { status: 0, title: 'TLS handshake or certificate verification with the back office failed' },
  'oauth-token-failed': { status: 0, title: 'No OAuth2 access token: the token endpoint refused or was unreachable' },
  'attachments-not-supported': { status: 0, title: 'The target is configured for a body that cannot carry the submission\'s attachments' },
  'attachment-unavailable': { status: 0, title: 'An attachment could not be opened from its store' },
  'adapter-error': { status: 0, title: 'Adapter failed without classifying the error' },
  // Delivery: email, sftp and amqp adapters
  'attachment-read-failed': { status: 0, title: 'Reading an attachment\'s bytes failed during the delivery' },
  'attachment-too-large': { status: 0, title: 'An attachment exceeds what the adapter is configured to carry' },
  'smtp-temporary': { status: 0, title: 'SMTP server answered with a temporary (4xx) failure' },
  'smtp-rejected': { status: 0, title: 'SMTP server refused the message permanently (5xx)' },
  'smtp-auth-failed': { status: 0, title: 'SMTP login refused (check the configured credentials)' },
  'sftp-host-key-mismatch': { status: 0, title: 'SFTP server host key does not match the pinned fingerprint' },
  'sftp-auth-failed': { status: 0, title: 'SFTP login refused (check the configured user and key or password)' },
  'sftp-upload-failed': { status: 0, title: 'Uploading or renaming on the SFTP server failed' },
  'sftp-name-conflict': { status: 0, title: 'The SFTP target name is taken by a different delivery' },
  'amqp-unroutable': { status: 0, title: 'Back-office broker returned the message: no queue bound for it' },
  'amqp-nack': { status: 0, title: 'Back-office broker refused to take the message (nack)' },
  'amqp-exchange-missing': { status: 0, title: 'The configured exchange does not exist on the back-office broker' },
  'max-attempts-exceeded': { status: 0, title: 'Retryable failures exhausted the attempt limit' },
  // Service
  'store-unavailable': { status: 503, title: 'Store unavailable; try again later' },
  'transport-unavailable': { status: 503, title: 'Message broker unavailable; try again later' },
  'internal-error': { status: 500, title: 'Internal error' },
  'redelivery-limit': { status: 0, title: 'A queue message was handed out too often without being settled' },
  'callback-failed': { status: 0, title: 'A status callback to the client was not answered 2xx after all attempts' },
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
    /** Further problem members (RFC 7807 extensions), e.g. the list of schema violations. */
    readonly extensions?: Readonly<Record<string, unknown>>,
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
