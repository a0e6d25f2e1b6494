// XSD validation of incoming XÖV messages, per standard and version (`validation.schemas` in the
// configuration). Every schema set is compiled once at start-up in a worker thread (libxml2 via
// libxml2-wasm, see schema-worker.ts); each message is then validated there, so a large message does not
// block the event loop. Any intake calls `checkSchema` (throws InputError) or `validateMessage` (returns
// the violations); a refusal lists each violation with line and element path, never a text value.
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { InputError } from '../errors';
import type { RawViolation, WorkerAnswer, WorkerRequest } from './schema-protocol';

/** One schema violation, safe to show to the sender: position, element path and the validator's message without echoed values. */
export interface SchemaViolation {
  line: number;
  /** Element path, e.g. `/xbau:baugenehmigung.antrag.0200/nachrichtenkopf.g2g/leser/name`. */
  path: string;
  message: string;
}

/** What selects a schema set: the root's `standard` and `version` attributes and its namespace (XoevFacts fit). */
export interface SchemaKey {
  standard: string;
  version: string;
  rootNamespace?: string;
}

export interface SchemaSetConfig {
  /** Root `standard` attribute; `*` matches any characters (e.g. `XBau*`). */
  standard: string;
  /** Root `version` attribute; `*` matches any characters. */
  version: string;
  /** Root element namespace, if it must match too. */
  namespace?: string;
  /** XSD files (several: files of one target namespace, compiled as one set). */
  xsd: string[];
}

export interface ValidationConfig {
  schemas: SchemaSetConfig[];
  /** No schema set matches the message: accept it unvalidated, or refuse it (`schema-not-configured`). */
  onMissingSchema: 'accept' | 'reject';
  /** Violations listed in a refusal at most (the total is always given). */
  maxViolations: number;
}

/** The validator is not running (its worker failed); the sender should try again later. */
export class ValidationUnavailableError extends Error {
  constructor(detail: string) {
    super(`schema validation unavailable: ${detail}`);
    this.name = 'ValidationUnavailableError';
  }
}

const wildcard = (pattern: string) => new RegExp(`^${pattern.split('*').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);

/**
 * Removes values libxml2 echoes from the message (`The value 'Müller' is not …`, `'abc' is not a valid
 * value …`, key sequences); names of elements, attributes, types, facets and patterns stay.
 */
export function cleanMessage(message: string): string {
  return message
    .trim()
    .replace(/The value '[\s\S]*?' (?=(?:has|is|are|does|was|must)\b)/g, 'The value ')
    .replace(/: '[\s\S]*?' (?=is not a valid value)/g, ': the value ')
    .replace(/(key-sequence) \[[\s\S]*?\](?= (?:of|in|for)\b)/g, '$1')
    .replace(/\s+/g, ' ');
}

const label = (set: SchemaSetConfig) => `${set.standard} ${set.version}`;

/** Runs the worker and matches messages to schema sets. Create with `SchemaValidator.start`. */
export class SchemaValidator {
  private worker: Worker | undefined;
  private seq = 0;
  private readonly pending = new Map<number, { resolve: (answer: WorkerAnswer) => void; reject: (error: Error) => void }>();
  private readonly matchers: { set: SchemaSetConfig; id: string; standard: RegExp; version: RegExp }[];
  private starting: Promise<void> | undefined;
  private closed = false;

  private constructor(private readonly config: ValidationConfig, private readonly log: Logger) {
    this.matchers = config.schemas.map((set, i) => ({ set, id: String(i), standard: wildcard(set.standard), version: wildcard(set.version) }));
  }

  /** Starts the worker and compiles every schema set; throws naming the set and file that failed. */
  static async start(config: ValidationConfig, log: Logger): Promise<SchemaValidator> {
    const validator = new SchemaValidator(config, log);
    await validator.ensureWorker();
    return validator;
  }

  /** The schema set for a message, if one is configured. */
  schemaFor(key: SchemaKey): SchemaSetConfig | undefined {
    return this.match(key)?.set;
  }

  private match(key: SchemaKey) {
    return this.matchers.find((m) => m.standard.test(key.standard) && m.version.test(key.version) && (m.set.namespace === undefined || m.set.namespace === key.rootNamespace));
  }

  /**
   * Validates one message against the schema set for its standard and version. Returns the violations
   * (empty: valid, or no schema set and `onMissingSchema: accept`), at most `maxViolations` of them.
   * Throws InputError `schema-not-configured` when no set matches and the configuration says reject.
   */
  async validateMessage(message: string | Uint8Array, key: SchemaKey): Promise<SchemaViolation[]> {
    return (await this.run(message, key)).violations;
  }

  /** Validates and throws InputError `schema-invalid` listing the violations; nothing else happens to the message. */
  async checkSchema(message: string | Uint8Array, key: SchemaKey): Promise<void> {
    const { violations, total, set } = await this.run(message, key);
    if (!total) return;
    const first = violations[0]!;
    const detail = `${total} violation${total === 1 ? '' : 's'} of the ${label(set!)} schema; first at line ${first.line}, ${first.path}: ${first.message}`;
    throw new InputError('schema-invalid', detail, { schema: label(set!), violationCount: total, violations });
  }

  private async run(message: string | Uint8Array, key: SchemaKey): Promise<{ violations: SchemaViolation[]; total: number; set?: SchemaSetConfig }> {
    const matched = this.match(key);
    if (!matched) {
      if (this.config.onMissingSchema === 'reject') {
        throw new InputError('schema-not-configured', `no schema is configured for standard "${key.standard}" version "${key.version}"`);
      }
      return { violations: [], total: 0 };
    }
    const answer = await this.request({ kind: 'validate', seq: 0, id: matched.id, message });
    if (answer.kind === 'valid') return { violations: [], total: 0, set: matched.set };
    if (answer.kind !== 'invalid') throw new ValidationUnavailableError(answer.kind === 'failed' ? answer.detail : answer.kind);
    const violations = answer.violations.map((v: RawViolation) => ({ line: v.line, path: v.path ?? '', message: cleanMessage(v.message) }));
    return { violations: violations.slice(0, this.config.maxViolations), total: violations.length, set: matched.set };
  }

  private request(request: WorkerRequest): Promise<WorkerAnswer> {
    return this.ensureWorker().then(() => new Promise<WorkerAnswer>((resolve, reject) => {
      const seq = ++this.seq;
      this.pending.set(seq, { resolve, reject });
      // The idle worker does not keep the process alive; one with work does.
      this.worker!.ref();
      this.worker!.postMessage({ ...request, seq });
    }));
  }

  /** (Re)starts the worker if needed: once at start-up, and again after it died (e.g. out of memory). */
  private ensureWorker(): Promise<void> {
    if (this.closed) return Promise.reject(new ValidationUnavailableError('validator closed'));
    if (this.worker) return Promise.resolve();
    this.starting ??= this.spawn().finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  private async spawn(): Promise<void> {
    // From dist the worker is JavaScript; from the sources (tests, tsx) it is TypeScript, loaded through
    // tsx's require hook (a development dependency, never needed in production).
    const extension = path.extname(__filename);
    const file = path.join(__dirname, `schema-worker${extension}`);
    const worker = extension === '.ts'
      ? new Worker(`require('tsx/cjs'); require(${JSON.stringify(file)});`, { eval: true })
      : new Worker(file);
    const ready = new Promise<void>((resolve, reject) => {
      worker.once('message', (answer: WorkerAnswer) => (answer.kind === 'ready' ? resolve() : reject(new Error(answer.kind === 'start-failed' ? answer.detail : answer.kind))));
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`schema validation worker exited with code ${code}`)));
    });
    await ready;
    worker.on('message', (answer: WorkerAnswer) => {
      const waiting = this.pending.get(answer.seq);
      this.pending.delete(answer.seq);
      if (!this.pending.size) worker.unref();
      waiting?.resolve(answer);
    });
    worker.on('error', (error) => this.log.error({ err: error }, 'schema validation worker failed'));
    worker.on('exit', (code) => {
      if (this.worker === worker) this.worker = undefined;
      for (const [seq, waiting] of this.pending) {
        this.pending.delete(seq);
        waiting.reject(new ValidationUnavailableError(`worker exited with code ${code}`));
      }
      if (!this.closed) this.log.warn({ event: 'schema-worker-exit', code }, 'schema validation worker exited; it restarts with the next message');
    });
    this.worker = worker;
    const started = Date.now();
    const sets = this.matchers.map((m) => ({ id: m.id, files: m.set.xsd.map((file) => path.resolve(file)) }));
    const answer = await this.request({ kind: 'compile', seq: 0, sets });
    if (answer.kind === 'compile-failed') {
      await this.close();
      throw new Error(`validation.schemas[${answer.id}] (${label(this.config.schemas[Number(answer.id)]!)}): schema does not compile: ${answer.detail}`);
    }
    this.log.info({ event: 'schemas-compiled', schemas: this.config.schemas.map(label), ms: Date.now() - started }, 'schemas compiled');
  }

  async close(): Promise<void> {
    this.closed = true;
    const worker = this.worker;
    this.worker = undefined;
    if (worker) await worker.terminate();
  }
}
