// The store contract: submission status, history, delivery attempts, idempotency and payloads.
// Implemented by the embedded SQLite store now and by PostgreSQL in production mode.
import type { Facts } from '../envelope/envelope';
import type { RateLimit } from '../deliver/rate-limit';
import type { RoutedTarget } from '../route/router';

/** A submission id as the APIs accept it (a UUID, lower case). */
export const SUBMISSION_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export type SubmissionState = 'received' | 'routed' | 'parked' | 'delivered' | 'failed' | 'discarded';
export const SUBMISSION_STATES: readonly SubmissionState[] = ['received', 'routed', 'parked', 'delivered', 'failed', 'discarded'];
/** `discarded`: an operator gave a dead delivery up (with a reason, audited); it is never attempted again. */
export type DeliveryState = 'pending' | 'delivered' | 'dead' | 'discarded';

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
  /** The authenticated client that sent it (its status callbacks go there). */
  client?: string;
  /**
   * The routing decision, when the intake could make it (facts complete, routes evaluated): stored with the
   * submission in the same transaction — its deliveries pending, or the submission parked when there are
   * none. The submission stays `received` until the caller has queued the deliveries and calls
   * `markRouted`, so that the sweep of `received` submissions queues them should that step be lost.
   */
  routing?: { facts: Facts; routes: string[]; targets: RoutedTarget[] };
  /**
   * Deliveries (of `routing.targets`) stored claimed for their first attempt — counted and leased for
   * `leaseMs`, as `claimAttempt` would — by a caller that starts them at once, without a claim of its own.
   */
  claimed?: { targets: readonly string[]; leaseMs: number };
}

/** What a back office reported about a delivery it received (its own check after import). */
export interface Receipt {
  status: 'accepted' | 'rejected';
  /** The back office's file number (Aktenzeichen), if it gave one. */
  fileNumber?: string;
  /** Why it was rejected (a code or short text, no personal content). */
  reason?: string;
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
  /** The back office's receipt, once it reported one. */
  receipt?: Receipt;
  nextAttemptAt?: string;
  updatedAt: string;
}

export interface HistoryEvent {
  at: string;
  event: 'received' | 'resent' | 'routed' | 'parked' | 'attempt' | 'replayed' | 'rerouted' | 'discarded' | 'receipt' | 'purged';
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
  /** The client that sent it, if the deployment authenticates clients. */
  client?: string;
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

/** What a delivery attempt needs to know of its submission, read with the claim. */
export interface ClaimContext {
  facts: Facts;
  route: string;
  receivedAt: string;
  client?: string;
  /** Number of attachment references (0: the attempt need not read them). */
  attachments: number;
  /** Number of deliveries of the submission (1: no other delivery's outcome can race with this one's). */
  deliveries: number;
}

export type Claim =
  | { kind: 'claimed'; attempt: number; context: ClaimContext }
  | { kind: 'busy'; until: Date }
  | { kind: 'done' }
  /** The target has `maxInFlight` attempts running (across all instances sharing the store). */
  | { kind: 'throttled' };

export type AttemptOutcome =
  | { kind: 'delivered'; reference?: string; detail?: string }
  | { kind: 'retry'; reason: string; detail: string; nextAttemptAt: Date }
  | { kind: 'dead'; reason: string; detail: string };

/** Filters for the operator's list of submissions (all optional; combined with AND). */
export interface SubmissionQuery {
  states?: SubmissionState[];
  /** Submissions with a delivery to this target (in `deliveryState`, if given). */
  target?: string;
  deliveryState?: DeliveryState;
  route?: string;
  /** AGS (recorded at routing from the `ags`/`ars` facts). */
  tenant?: string;
  receivedFrom?: Date;
  receivedTo?: Date;
  /** Newest first; at most this many (1–500). */
  limit: number;
  /** Paging: only submissions received before this one (its id, from the previous page's last item). */
  after?: string;
}

/** One line of the operator's list: ids, keys and states only. */
export interface SubmissionListItem {
  id: string;
  state: SubmissionState;
  reason?: string;
  tenant?: string;
  messageType?: string;
  source: string;
  receivedAt: string;
  updatedAt: string;
  deliveries: DeliveryRecord[];
}

/** An operator's (or the system's) action, kept in the audit trail. Never payload content. */
export interface AuditEntry {
  /** Client or operator name; `system` for jobs. */
  actor: string;
  /** e.g. `replay`, `discard`, `reroute`, `view-content`, `submission-refused`. */
  action: string;
  submissionId?: string;
  target?: string;
  /** Reason given, or what was done (no personal content). */
  detail?: string;
}

export interface AuditRecord extends AuditEntry {
  id: string;
  at: string;
}

/** Result of an operator action: done, or why the submission's state does not allow it. */
export type OperatorResult = { ok: true } | { ok: false; problem: 'not-found' | 'wrong-state'; detail: string };

export interface StoreStats {
  attempts: Array<{ target: string; outcome: 'delivered' | 'retry' | 'dead'; count: number }>;
  perMinute: Array<{ minute: string; received: number; delivered: number }>;
}

/** Merges per-minute counts of received submissions and delivered attempts into one sorted series. */
export function mergeMinutes(received: Array<{ minute: string; count: number }>, delivered: Array<{ minute: string; count: number }>): StoreStats['perMinute'] {
  const byMinute = new Map<string, { minute: string; received: number; delivered: number }>();
  const slot = (minute: string) => byMinute.get(minute) ?? byMinute.set(minute, { minute, received: 0, delivered: 0 }).get(minute)!;
  for (const r of received) slot(r.minute).received += r.count;
  for (const d of delivered) slot(d.minute).delivered += d.count;
  return [...byMinute.values()].sort((a, b) => a.minute.localeCompare(b.minute));
}

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
  /**
   * Deletes submissions whose payload was purged before `purgedBefore` — status, history, deliveries —
   * at most `limit`; the number deleted. The audit trail stays.
   */
  deleteHistory(purgedBefore: Date, limit: number): Promise<number>;
  /** Ids of delivered (or discarded) submissions not yet purged whose last change was before `deliveredBefore`. */
  listPurgeable(deliveredBefore: Date, limit: number): Promise<string[]>;
  /**
   * Deletes the payload and the attachment references (the caller deletes the bytes from the payload store
   * first), marks the submission purged and records a `purged` event. False if it was purged already.
   */
  purge(id: string): Promise<boolean>;
  /**
   * Ids of submissions still in state `received` (for the sweeps): received before `before` if given;
   * `skipLeased`: not those with a delivery leased now — its attempt is running, and whatever it leaves
   * open its caller queues (or, should that process die, a sweep after the lease has ended).
   */
  listReceived(before?: Date, options?: { skipLeased?: boolean }): Promise<string[]>;
  /**
   * Records the routing decision once: creates the deliveries (state `routed`), or parks the submission
   * with reason `no-route` when there are none. Returns false if the submission was already routed.
   */
  recordRouting(id: string, facts: Facts, routes: string[], targets: RoutedTarget[]): Promise<boolean>;
  /**
   * Submissions routed at intake (`NewSubmission.routing`) whose deliveries are queued now: `received`
   * becomes `routed` (any other state stays). Losing this write is harmless — the sweep queues the
   * deliveries again, and queued copies are claimed once — so it need not wait for the disk.
   */
  markRouted(ids: readonly string[]): Promise<void>;
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
   * Gives back a claim that was never used — a delivery stored claimed at intake (`NewSubmission.claimed`)
   * whose slot did not come: its attempt uncounted, its lease ended, so that a queued copy is claimed at
   * once. Changes nothing (false) unless the delivery is pending, leased, with exactly `attempt` attempts.
   */
  releaseClaim(id: string, target: string, attempt: number): Promise<boolean>;
  /**
   * Reserves one attempt start from the target's rate budget (a token bucket shared by every instance on
   * this store). Resolves the milliseconds until the reserved start — 0: at once; the caller waits that
   * long and then starts, without asking again. Each caller gets its own slot, 1/rate after the previous.
   */
  takeRateToken(target: string, limit: RateLimit): Promise<number>;
  /**
   * Records an attempt's outcome, ends the lease and updates the submission's state: final when no delivery
   * is pending; else `routed` — but a submission still `received` stays so (until `markRouted`: its other
   * deliveries, or this one's retry, may not be queued yet, and the sweep must still find it). `onlyDelivery`: the
   * caller knows (from its claim) that the submission has no other delivery, so nothing else can change
   * its state meanwhile and the store may skip serialising against other outcomes.
   */
  recordOutcome(id: string, target: string, attempt: number, outcome: AttemptOutcome, options?: { onlyDelivery?: boolean }): Promise<void>;
  /** The operator's list, newest first. */
  list(query: SubmissionQuery): Promise<SubmissionListItem[]>;
  /**
   * Gives a dead delivery a fresh attempt budget (attempts from 0), to the same target or, with `toTarget`,
   * to another one (the dead delivery is then `discarded`, a new one is created). The caller then queues
   * the pending delivery. Audited in the same transaction.
   */
  replay(id: string, target: string, options: { toTarget?: RoutedTarget; audit: AuditEntry }): Promise<OperatorResult>;
  /** Puts a parked (or fully failed) submission back to `received`, so that it is routed again with the current configuration. */
  reroute(id: string, audit: AuditEntry): Promise<OperatorResult>;
  /** Gives up a dead delivery (`target`) or a parked submission (no target) for good, with a reason. */
  discard(id: string, target: string | undefined, audit: AuditEntry): Promise<OperatorResult>;
  /**
   * Records a back office's receipt for a delivered delivery (file number or rejection). The same receipt
   * again changes nothing (`changed: false`); a different one replaces it. Refused unless delivered.
   */
  recordReceipt(id: string, target: string, receipt: Receipt, actor: string): Promise<OperatorResult & { changed?: boolean }>;
  /** Appends to the audit trail. */
  recordAudit(entry: AuditEntry): Promise<void>;
  /** The audit trail, newest first; of one submission if given. */
  audit(query: { submissionId?: string; limit: number }): Promise<AuditRecord[]>;
  /**
   * For the console: attempt outcomes per target since `since`, and submissions received and deliveries
   * delivered per minute since then (minutes as ISO strings, `YYYY-MM-DDTHH:MM`).
   */
  stats(since: Date): Promise<StoreStats>;
  /** Bytes of content held (payloads not yet purged, attachments), for the payload-store metric. */
  storedBytes(): Promise<{ payloads: number; attachments: number }>;
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
