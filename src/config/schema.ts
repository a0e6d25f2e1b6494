// The configuration schema: the single source of validation, defaults and documentation of a deployment's YAML.
import { z } from 'zod';
import { secretRefSchema } from './secret';
import { duration, oneOrMany, size } from './units';

const name = z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'use lower-case letters, digits, "-" and "_"');

const retryFields = {
  /** Attempts in all, the first included; then the delivery goes to the dead letters. */
  maxAttempts: z.number().int().min(1).max(1000),
  initialDelay: duration,
  maxDelay: duration,
  multiplier: z.number().min(1).max(10),
};

export const retrySchema = z.strictObject({
  maxAttempts: retryFields.maxAttempts.default(20),
  initialDelay: retryFields.initialDelay.default(1000),
  maxDelay: retryFields.maxDelay.default(600_000),
  multiplier: retryFields.multiplier.default(2),
});

/** A target's overrides of `delivery.retry`: only the keys it gives, no defaults (they would mask the deployment's values). */
const retryOverrideSchema = z.strictObject(retryFields).partial();

const matchValue = oneOrMany(z.string().min(1));

export const matchSchema = z.strictObject({
  /** AGS (8 digits) or ARS (12 digits); compared with the submission's `ags`/`ars` facts. */
  tenant: oneOrMany(z.string().regex(/^(\d{8}|\d{12})$/, 'an AGS has 8 digits, an ARS 12')).optional(),
  /** DVDV reader id (`leser/kennung`); `*` matches any characters, e.g. `bab:*`. */
  reader: matchValue.optional(),
  /** Message type code (`0200`) or name (`baugenehmigung.antrag.0200`). */
  messageType: matchValue.optional(),
  /** Root element local name, e.g. `baugenehmigung.antrag.0200`. */
  rootElement: matchValue.optional(),
  standard: matchValue.optional(),
  version: matchValue.optional(),
  /** Leistungsschlüssel, 14 digits or `urn:de:fim:leika:leistung:<key>`; compared with the `leistung` fact. */
  leistung: oneOrMany(z.string().regex(/^(urn:de:fim:leika:leistung:)?\d{14}$/, 'a Leistungsschlüssel has 14 digits')).optional(),
  /** Test messages (XÖV `test` attribute) only, or never. */
  test: z.boolean().optional(),
  /** Configured facts by name and accepted values. */
  facts: z.record(z.string(), matchValue).optional(),
  /** intelliForm form id of a deposit (`depositData/formId`); `*` matches any characters, e.g. `test/LBK/*`. */
  formId: matchValue.optional(),
  /** intelliForm custom parameters of a deposit by key and accepted values, e.g. `for-routing-target: XBau_Bauantrag_LBK`. */
  customParameters: z.record(z.string().min(1), matchValue).optional(),
  /** XPath 1.0 predicates over the message (namespaces from the top-level map); all must be true. */
  xpath: oneOrMany(z.string().min(1)).optional(),
});

export const routeSchema = z.strictObject({
  name,
  description: z.string().optional(),
  /** All given criteria must hold; a list inside a criterion means any of its values. No criteria: matches all. */
  match: matchSchema.default({}),
  /** Target names to deliver to. */
  deliver: z.array(name).min(1),
  /** After a match, go on to the following routes too (fan-out). */
  continue: z.boolean().default(false),
});

export const targetSchema = z.strictObject({
  /** Adapter name: `http`, `file`, one loaded from `adapters/`, or one from `package`. */
  adapter: name,
  /** npm package that exports the adapter (e.g. `@city/antragsrouter-adapter-dms`), installed beside the configuration or in the working directory. */
  package: z.string().regex(/^(@[a-z0-9][a-z0-9._-]*\/)?[a-z0-9][a-z0-9._-]*$/, 'an npm package name').optional(),
  /** Mapping name (file `mappings/<name>.yaml`). */
  mapping: name,
  /** Deliveries this target takes at once; default from the adapter. */
  concurrency: z.number().int().min(1).max(256).optional(),
  retry: retryOverrideSchema.optional(),
  /** Attempts started per second across all instances (token bucket; `burst` defaults to 1). */
  rateLimit: z.strictObject({ perSecond: z.number().positive().max(100_000), burst: z.number().int().min(1).default(1) }).optional(),
  /** Attempts running at once across all instances (each instance also stays within `concurrency`). */
  maxInFlight: z.number().int().min(1).max(10_000).optional(),
  /** The adapter's own configuration, validated by the adapter's schema. */
  config: z.record(z.string(), z.unknown()).default({}),
});

const sha256Hex = z.string().regex(/^[0-9a-fA-F]{64}$/, 'a SHA-256 as 64 hex digits').transform((v) => v.toLowerCase());

/** A caller of the router: a form service (role `submit`), an operator (`admin`). */
export const clientSchema = z.strictObject({
  /** SHA-256 (hex) of the client's API token (`antragsrouter token new` makes one); several allow rotation. */
  tokenSha256: oneOrMany(sha256Hex).optional(),
  /** SHA-256 fingerprints of client certificates that authenticate this client (mutual TLS, `server.tls`). */
  certificateSha256: oneOrMany(sha256Hex).optional(),
  /** submit: send applications; admin: the admin API and console; receipt: a back office reporting receipts. */
  roles: z.array(z.enum(['submit', 'admin', 'receipt'])).min(1).default(['submit']),
  /** With role receipt: the targets (back offices) this client may report receipts for. */
  targets: z.array(name).optional(),
  /**
   * Status callbacks to this client (the form service): POSTed JSON, signed with HMAC-SHA512 over
   * `<timestamp>.<body>`, retried with backoff until answered 2xx.
   */
  callback: z.strictObject({
    url: z.url({ protocol: /^https?$/ }),
    secret: secretRefSchema,
    events: z.array(z.enum(['delivered', 'rejected', 'dead-lettered', 'receipt'])).min(1).default(['delivered', 'rejected', 'dead-lettered', 'receipt']),
    timeoutMs: z.number().int().min(100).max(120_000).default(10_000),
  }).optional(),
  /** AGS/ARS the client may submit for; `*` for any. Required with role `submit`. */
  tenants: oneOrMany(z.string().regex(/^(\*|\d{8}|\d{12})$/, 'an AGS (8 digits), an ARS (12 digits) or *')).optional(),
  /** Leistungsschlüssel the client may submit for (the `leistung` fact); any if not given. */
  services: oneOrMany(z.string().min(1)).optional(),
}).check((ctx) => {
  const client = ctx.value;
  if (!client.tokenSha256 && !client.certificateSha256) ctx.issues.push({ code: 'custom', input: client, message: 'give tokenSha256 or certificateSha256 (or both)' });
  if (client.roles.includes('submit') && !client.tenants) ctx.issues.push({ code: 'custom', input: client, path: ['tenants'], message: 'a client with role submit needs tenants (AGS/ARS, or * for any)' });
  if (client.roles.includes('receipt') && !client.targets?.length) ctx.issues.push({ code: 'custom', input: client, path: ['targets'], message: 'a client with role receipt needs the targets it reports for' });
});

export const configSchema = z.strictObject({
  /** Name of this deployment, shown in logs. */
  instance: z.string().min(1).default('antragsrouter'),
  server: z.strictObject({
    host: z.string().default('127.0.0.1'),
    port: z.number().int().min(0).max(65535).default(8080),
    /** Largest accepted request body. */
    maxBodySize: size.default(10 * 1024 * 1024),
    /** HTTPS instead of HTTP; with `clientCa`, callers may authenticate with a client certificate (mutual TLS). */
    tls: z.strictObject({
      cert: secretRefSchema,
      key: secretRefSchema,
      /** CA bundle that client certificates must chain to; enables asking for a client certificate. */
      clientCa: secretRefSchema.optional(),
    }).optional(),
  }).prefault({}),
  /**
   * Who may call the router. Without it the intake is open to anyone who can reach the port (for a first
   * try on one machine; the router warns at start-up). With it every request needs a known client.
   */
  auth: z.strictObject({
    clients: z.record(name, clientSchema),
  }).optional(),
  xml: z.strictObject({
    maxDepth: z.number().int().min(4).max(1000).default(64),
    maxElements: z.number().int().min(10).default(250_000),
  }).prefault({}),
  envelope: z.strictObject({
    /**
     * Refuse documents without an XÖV header (`xoev-header-missing`). Set false to accept e.g. FIM data
     * documents: their message id is the request's Idempotency-Key header, else the body's SHA-256.
     */
    requireXoevHeader: z.boolean().default(true),
  }).prefault({}),
  /**
   * Attachments (claim check): streamed into the payload store as they arrive, referenced from the
   * submission, handed to adapters as streams. A limit exceeded refuses the whole submission (413 /
   * ApplicationFault) and removes what was already stored of it.
   */
  attachments: z.strictObject({
    /** Largest single attachment. */
    maxSize: size.default(256 * 1024 ** 2),
    /** Largest sum of one submission's attachments. */
    maxTotalSize: size.default(1024 ** 3),
    /** Most attachments in one submission. */
    maxCount: z.number().int().min(0).max(10_000).default(100),
    /**
     * Embedded mode: directory of the attachment files (default: `payloads/` beside `store.path`).
     * Production mode keeps attachments in PostgreSQL (chunked, streamed in and out).
     */
    directory: z.string().min(1).optional(),
  }).prefault({}),
  retention: z.strictObject({
    /** Payload and attachments of a delivered submission are deleted this long after delivery; status and history stay. */
    afterDelivery: duration.default(30 * 86_400_000),
    /** How often the retention job looks for expired payloads. */
    interval: duration.default(3_600_000),
    /**
     * Status and history of a submission are deleted this long after its payload was (unset: kept). The
     * audit trail stays.
     */
    history: duration.optional(),
  }).prefault({}),
  /** The intelliForm `deposit` SOAP endpoint (cit intelliForm back-end web service ApplicationService). */
  intelliform: z.strictObject({
    /** Path of the SOAP endpoint; its WSDL is served at `<path>?wsdl`. */
    path: z.string().regex(/^\/[A-Za-z0-9/_.-]*$/, 'an absolute URL path').default('/intelliform/deposit'),
    /** Endpoint address announced in the WSDL (e.g. behind a proxy); default: the address the WSDL was fetched from. */
    publicUrl: z.url({ protocol: /^https?$/ }).optional(),
    /**
     * Largest SOAP envelope. Inline base64 attachments are inside the envelope, which is parsed as a whole
     * (strict gate, then DOM), so this bounds the memory one request takes: large files belong in MTOM/XOP
     * parts, which are streamed to the payload store and count only against the attachment limits.
     */
    maxEnvelopeSize: size.default(20 * 1024 ** 2),
  }).prefault({}),
  /** XSD validation of incoming messages per standard and version (see src/envelope/schema-validation.ts). */
  validation: z.strictObject({
    schemas: z.array(z.strictObject({
      /** Root `standard` attribute, e.g. `XBau-Hochbau`; `*` matches any characters. */
      standard: z.string().min(1),
      /** Root `version` attribute, e.g. `2.6`; `*` matches any characters. */
      version: z.string().min(1),
      /** Root element namespace, if it must match as well. */
      namespace: z.string().min(1).optional(),
      /** XSD file(s), relative to the working directory; several files must share one target namespace. */
      xsd: oneOrMany(z.string().min(1)),
    })).default([]),
    /** A message for which no schema is configured: `accept` it unvalidated, or `reject` it (`schema-not-configured`). */
    onMissingSchema: z.enum(['accept', 'reject']).default('accept'),
    /** Violations listed in a refusal at most. */
    maxViolations: z.number().int().min(1).max(1000).default(20),
  }).prefault({}),
  store: z.strictObject({
    /** SQLite database file of the embedded store and queue (single node). */
    path: z.string().default('var/antragsrouter.db'),
    /** Production mode: PostgreSQL. The URL (with credentials) comes from DATABASE_URL or `url`. */
    postgres: z.strictObject({
      /** Secret reference to the connection URL, e.g. `{ file: /run/secrets/database_url }`; DATABASE_URL wins. */
      url: secretRefSchema.optional(),
      /** Schema holding the tables; each deployment (city) its own. */
      schema: z.string().regex(/^[a-z_][a-z0-9_]*$/).default('antragsrouter'),
      poolSize: z.number().int().min(1).max(200).default(10),
    }).prefault({}),
  }).prefault({}),
  transport: z.strictObject({
    /** Production mode: RabbitMQ. The URL (with credentials) comes from AMQP_URL or `url`. */
    amqp: z.strictObject({
      /** Secret reference to the AMQP URL, e.g. `{ env: CITY_AMQP_URL }`; AMQP_URL wins. */
      url: secretRefSchema.optional(),
      /** Prefix of every exchange and queue, so that several deployments can share a broker. */
      prefix: z.string().regex(/^[A-Za-z0-9_.-]+$/).default('antragsrouter'),
      heartbeatSeconds: z.number().int().min(0).max(600).default(30),
    }).prefault({}),
  }).prefault({}),
  /** Directory of mapping files, relative to the working directory. */
  mappingsDir: z.string().default('mappings'),
  /** Directory of additional adapters (`<dir>/<name>/index.ts|js`). */
  adaptersDir: z.string().default('adapters'),
  /** Namespace prefixes for every XPath in this file. */
  namespaces: z.record(z.string().regex(/^[A-Za-z_][\w.-]*$/), z.string().min(1)).default({}),
  /**
   * Extra routing facts by XPath (string value); a list means the first non-empty value. The XÖV facts are
   * XPath variables (`$reader`, `$messageType`, ...). `ags`, `ars` and `leistung` feed the tenant/leistung criteria.
   */
  facts: z.record(z.string().regex(/^[A-Za-z][\w]*$/), oneOrMany(z.string().min(1))).default({}),
  delivery: z.strictObject({
    retry: retrySchema.prefault({}),
    /**
     * How long one attempt holds its delivery. A copy of the same delivery (after a crash, or on another
     * instance) waits this long before it may try; keep it above the slowest adapter's timeout.
     */
    leaseTime: duration.default(120_000),
    /**
     * Memory (estimated) for documents kept from intake to delivery, so that each is parsed once; the oldest
     * go first when it is full, and are then read and parsed again. 0 turns it off.
     */
    documentCache: z.union([z.literal(0), size]).default(64 * 1024 ** 2),
    /** Deliveries run at once by the accepting instance where it has a free slot (README: configuration reference). */
    immediate: z.boolean().default(true),
    /** How long a delivery waits in line for a slot of this instance when all are busy, before it is queued (0: never; README: configuration reference). */
    immediateWait: duration.default(250),
  }).prefault({}),
  targets: z.record(name, targetSchema),
  routes: z.array(routeSchema).min(1),
});

export type RawConfig = z.output<typeof configSchema>;
export type RouteConfig = z.output<typeof routeSchema>;
export type MatchConfig = z.output<typeof matchSchema>;
export type TargetConfig = z.output<typeof targetSchema>;
export type RetryPolicy = z.output<typeof retrySchema>;

/** Formats a zod issue path as `routes[3].deliver[0]`. */
export function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((text, key) => (typeof key === 'number' ? `${text}[${key}]` : text ? `${text}.${String(key)}` : String(key)), '');
}

/** Turns zod issues into `path: message` lines. */
export function describeIssues(issues: readonly z.core.$ZodIssue[], prefix: readonly PropertyKey[] = []): string[] {
  return issues.map((issue) => {
    const path = formatPath([...prefix, ...issue.path]);
    if (issue.code === 'unrecognized_keys') return `${formatPath([...prefix, ...issue.path, ...[]]) || '(top level)'}: unknown key(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    return `${path || '(top level)'}: ${issue.message}`;
  });
}
