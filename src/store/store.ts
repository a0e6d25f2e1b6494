// The store contract: submission status, history, delivery attempts, idempotency and payloads.
// Implemented by the embedded SQLite store now and by PostgreSQL in production mode.
import type { Facts } from '../envelope/envelope';
import type { RateLimit } from '../deliver/rate-limit';
import type { RoutedTarget } from '../route/router';

export type SubmissionState = 'received' | 'routed' | 'parked' | 'delivered' | 'failed';
export type DeliveryState = 'pending' | 'delivered' | 'dead';

/** `rendering`: the application as a document (the PDF the form service made); `attachment`: everything else. */
export type AttachmentRole = 'attachment' | 'rendering';

/** A reference to one attachment in the payload store (claim check), in the order received. */
export interface AttachmentRecord {
  /** Unique within the submission (the sender's id, made unique with a `~n` suffix where it repeats). */
  id: string;
  /** File name as sent, reduced to a safe base name. Personal content: never in logs or the status API. */
  name: string;
  mediaType: string;
  size: number;
  /** Lower-case hex SHA-256. */
  sha256: string;
  /** Key in the payload store. */
  key: string;
  role: AttachmentRole;
}

export interface NewSubmission {
  messageUuid: string;
  facts: Facts;
  payload: Buffer;
  /** Where it came from, e.g. `http`. */
  source: string;
  /** Attachments already in the payload store. */
  attachments?: readonly AttachmentRecord[];
}

export interface SubmissionSummary {
  id: string;
  messageUuid: string;
  state: SubmissionState;
}

export interface DeliveryRecord {
  target: string;
  route: string;
  state: DeliveryState;
  attempts: number;
  reason?: string;
  detail?: string;
  reference?: string;
  nextAttemptAt?: string;
  updatedAt: string;
}

export interface HistoryEvent {
  at: string;
  event: 'received' | 'resent' | 'routed' | 'parked' | 'attempt' | 'purged';
  target?: string;
  attempt?: number;
  outcome?: 'delivered' | 'retry' | 'dead';
  reason?: string;
  detail?: string;
}

/** Everything the status API shows: ids, keys, states, reasons; never payload content. */
export interface SubmissionStatus extends SubmissionSummary {
  reason?: string;
  source: string;
  size: number;
  receivedAt: string;
  updatedAt: string;
  facts: Facts;
  routes: string[];
  deliveries: DeliveryRecord[];
  history: HistoryEvent[];
  /** The attachments' references without their names (which may be personal). */
  attachments: Array<Omit<AttachmentRecord, 'name' | 'key'>>;
  /** When retention deleted payload and attachments (status and history stay). */
  purgedAt?: string;
}

export type Claim =
  | { kind: 'claimed'; attempt: number }
  | { kind: 'busy'; until: Date }
  | { kind: 'done' }
  /** The target has `maxInFlight` attempts running (across all instances sharing the store). */
  | { kind: 'throttled' };

export type AttemptOutcome =
  | { kind: 'delivered'; reference?: string; detail?: string }
  | { kind: 'retry'; reason: string; detail: string; nextAttemptAt: Date }
  | { kind: 'dead'; reason: string; detail: string };

export interface Store {
  /**
   * Stores a new submission with its payload, durably, or finds the one with the same messageUuid
   * (`created: false`, a `resent` event is recorded). Resolves only once it is on disk.
   */
  accept(submission: NewSubmission): Promise<{ submission: SubmissionSummary; created: boolean }>;
  get(id: string): Promise<SubmissionStatus | undefined>;
  payload(id: string): Promise<Buffer | undefined>;
  /** The submission's attachment references in the order received (empty once purged). */
  attachments(id: string): Promise<AttachmentRecord[]>;
  /** Those of `keys` (payload store keys) that no attachment reference names. */
  unreferencedKeys(keys: readonly string[]): Promise<string[]>;
  /** Ids of delivered submissions not yet purged whose delivery finished before `deliveredBefore`. */
  listPurgeable(deliveredBefore: Date, limit: number): Promise<string[]>;
  /**
   * Deletes the payload and the attachment references (the caller deletes the bytes from the payload store
   * first), marks the submission purged and records a `purged` event. False if it was purged already.
   */
  purge(id: string): Promise<boolean>;
  /** Ids of submissions still in state `received`, received before `before` if given (for the sweeps). */
  listReceived(before?: Date): Promise<string[]>;
  /**
   * Records the routing decision once: creates the deliveries (state `routed`), or parks the submission
   * with reason `no-route` when there are none. Returns false if the submission was already routed.
   */
  recordRouting(id: string, facts: Facts, routes: string[], targets: RoutedTarget[]): Promise<boolean>;
  deliveries(id: string): Promise<DeliveryRecord[]>;
  /**
   * Claims a pending delivery for one attempt, atomically: counts the attempt durably (before the adapter
   * is called, so a delivery that kills the process still runs out of attempts) and leases the delivery
   * for `leaseMs`, so that a second copy of its queue message — on this or another instance — waits.
   * With `maxInFlight`, the claim is `throttled` while that many leases of the target are unexpired.
   * `busy`: another worker holds an unexpired lease, or the next attempt is not due yet (a copy of the queue
   * message that arrived early must not cut the backoff short). `done`: delivered or dead-lettered already.
   */
  claimAttempt(id: string, target: string, leaseMs: number, maxInFlight?: number): Promise<Claim>;
  /**
   * Takes one attempt start from the target's rate budget (a token bucket shared by every instance on this
   * store). Resolves 0 when taken, else the milliseconds to wait before asking again.
   */
  takeRateToken(target: string, limit: RateLimit): Promise<number>;
  /** Records an attempt's outcome, ends the lease and updates the submission's state. */
  recordOutcome(id: string, target: string, attempt: number, outcome: AttemptOutcome): Promise<void>;
  /** Whether the store answers (feeds /readyz). */
  check(): Promise<{ ok: boolean; detail: string }>;
  /** Number of submissions per state (all states present, zero included). */
  countByState(): Promise<Record<SubmissionState, number>>;
  close(): Promise<void>;
}

/** History detail of a receipt or resend: where from and how large, never what. */
export const receivedDetail = (input: NewSubmission): string => {
  const attachments = input.attachments ?? [];
  const bytes = attachments.reduce((sum, a) => sum + a.size, 0);
  return `source ${input.source}, ${input.payload.length} bytes${attachments.length ? `, ${attachments.length} attachments (${bytes} bytes)` : ''}`;
};

export const purgedDetail = (attachments: number): string => `retention: payload and ${attachments} attachments deleted`;
