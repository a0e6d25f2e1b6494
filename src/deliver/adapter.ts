// The adapter contract: the one module adapters import from src/. An adapter moves one mapped payload
// (with the submission's attachments) to one back office and says what happened, in exactly one of
// three outcomes.
//
// Writing one: `antragsrouter adapter new <name>` scaffolds a working adapter with its config schema, a
// test and a README (README section "Writing an adapter"). Its test runs the conformance suite
// (src/testkit/conformance.ts) against the real back office on loopback; every adapter must pass it.
// Rules in short:
//   - configuration is validated by `configSchema` (z.strictObject); credentials only as secret
//     references (`secretRefSchema`, read with `readSecret` in `connect`, see src/config/secret.ts)
//   - `deliver` returns delivered / retryable / rejected with a stable `reason` code; it does not throw
//   - the same `idempotencyKey` must be recognisable by the back office as a repeat
//   - attachments are streamed from `open()`, never read whole into memory
//   - logs carry ids, sizes, status codes and reasons; never payload content, names or secrets
import type { z } from 'zod';
import type { Logger } from 'pino';
import type { Readable } from 'node:stream';

/** The mapped payload for one target. */
export interface Payload {
  body: Buffer;
  /** e.g. `application/json; charset=utf-8` or `application/xml; charset=utf-8`. */
  contentType: string;
  /** File extension without dot, e.g. `json` or `xml`. */
  extension: string;
}

/**
 * One attachment of the submission (plans, PDFs, scans). Attachments travel out of band (claim check):
 * the adapter gets metadata and opens the bytes as a stream; never read one whole into memory.
 */
export interface DeliveryAttachment {
  /** Stable id within the submission. */
  id: string;
  /** File name as sent, reduced to a safe base name (no directories, no control characters). */
  name: string;
  mediaType: string;
  size: number;
  /** Lower-case hex SHA-256 of the bytes. */
  sha256: string;
  /** Opens a fresh stream of the bytes; may be called more than once (e.g. once per attempt). */
  open(): Promise<Readable>;
}

/** One delivery of one submission to one target. */
export interface DeliveryRequest {
  submissionId: string;
  target: string;
  /**
   * Stable for this submission and target across every attempt and every router instance: send it to
   * the back office (e.g. as `Idempotency-Key`) so that a repeated attempt is recognised there.
   */
  idempotencyKey: string;
  /** 1 for the first attempt. */
  attempt: number;
  payload: Payload;
  /** The submission's attachments, in the order received; empty when it has none. */
  attachments: readonly DeliveryAttachment[];
  /** Routing facts (ids, types, keys; never personal content). */
  facts: Readonly<Record<string, string | boolean | undefined>>;
  /**
   * W3C `traceparent` of this attempt (the submission's trace, continued from the sender's if it sent
   * one). Pass it on where the protocol allows (HTTP header, AMQP header) so the back office's traces join.
   */
  traceparent?: string;
  /** Logger bound to submissionId and target. Log ids, sizes, status codes; never payload content. */
  log: Logger;
}

/**
 * What happened. `delivered`: the back office has it. `retryable`: try again later (network, timeout,
 * 408, 429, 5xx); capped by the target's attempt limit. `rejected`: permanent, never retried; the delivery
 * goes to the dead letters with `reason`. An adapter that throws counts as retryable (`adapter-error`).
 */
export type DeliveryOutcome =
  | { status: 'delivered'; /** Back-office reference, e.g. a file number, if it gave one. */ reference?: string; detail?: string }
  | { status: 'retryable'; reason: string; detail: string; /** Back office asked to wait this long (e.g. Retry-After). */ retryAfterMs?: number }
  | { status: 'rejected'; reason: string; detail: string };

/** Result of `check`, shown in readiness. */
export interface HealthResult {
  ok: boolean;
  detail?: string;
}

/** Services an adapter gets at creation. */
export interface AdapterContext {
  target: string;
  log: Logger;
}

/** A live adapter instance for one target. */
export interface Adapter {
  /**
   * Called once before the first delivery. Read secrets, certificates and keys here, so that a missing one
   * fails start-up (throw; the message names the reference, never a value).
   */
  connect(): Promise<void>;
  /**
   * Delivers one payload. Called concurrently up to the target's concurrency. Must be idempotent for the
   * same `idempotencyKey`: after a crash the same delivery may be attempted again.
   */
  deliver(request: DeliveryRequest): Promise<DeliveryOutcome>;
  /** Cheap honest probe of the back office's reachability, for readiness. Must not throw. */
  check(): Promise<HealthResult>;
  /** Called once at shutdown after in-flight deliveries finished; releases connections. A second call is harmless. */
  close(): Promise<void>;
}

/**
 * What an adapter module exports (as `default`, as `adapter`, or as the module itself), from
 * `adapters/<name>/index` or from an npm package named in `targets.<t>.package`.
 */
export interface AdapterDefinition<Config = unknown> {
  /** Name used in configuration (`targets.<t>.adapter`). */
  name: string;
  summary: string;
  /**
   * Validates `targets.<t>.config`; unknown keys should be errors (use z.strictObject). Credential fields use
   * `secretRefSchema` (`{ env }` / `{ file }`), so an inline secret is a configuration error.
   */
  configSchema: z.ZodType<Config>;
  /** Deliveries one target takes at once unless the target configures `concurrency`. */
  defaultConcurrency: number;
  create(config: Config, context: AdapterContext): Adapter;
}

/** Helps adapter modules keep their config type: `export default defineAdapter({...})`. */
export function defineAdapter<Config>(definition: AdapterDefinition<Config>): AdapterDefinition<Config> {
  return definition;
}
