// The embedded store on SQLite: one transaction per state change, so a crash never leaves half a record.
import { randomUUID } from 'node:crypto';
import { takeToken, type RateLimit } from '../deliver/rate-limit';
import type { Facts } from '../envelope/envelope';
import type { RoutedTarget } from '../route/router';
import type { SqliteDatabase } from './sqlite';
import { describeReceipt, finalState, receiptRecord, routingEvent, tenantOf } from './operations';
import { mergeMinutes, purgedDetail, receivedDetail, SUBMISSION_STATES, type StoreStats } from './store';
import type {
  AttachmentRecord, AttemptOutcome, AuditEntry, AuditRecord, Claim, DeliveryRecord, HistoryEvent, NewSubmission, OperatorResult, Receipt, Store, SubmissionListItem,
  SubmissionQuery, SubmissionState, SubmissionStatus, SubmissionSummary,
} from './store';

interface SubmissionRow {
  id: string;
  message_uuid: string;
  state: SubmissionState;
  reason: string | null;
  source: string;
  facts: string;
  routes: string;
  size: number;
  received_at: string;
  updated_at: string;
  tenant: string | null;
  client: string | null;
  purged_at: string | null;
}

interface AttachmentRow {
  id: string;
  name: string;
  media_type: string;
  size: number;
  sha256: string;
  blob_key: string;
  role: AttachmentRecord['role'];
}

interface DeliveryRow {
  target: string;
  route: string;
  state: DeliveryRecord['state'];
  attempts: number;
  reason: string | null;
  detail: string | null;
  reference: string | null;
  next_attempt_at: string | null;
  updated_at: string;
  receipt: string | null;
}

interface EventRow {
  at: string;
  event: HistoryEvent['event'];
  target: string | null;
  attempt: number | null;
  outcome: HistoryEvent['outcome'] | null;
  reason: string | null;
  detail: string | null;
}

const orUndefined = <T>(value: T | null): T | undefined => (value === null ? undefined : value);


export class SqliteStore implements Store {
  private readonly statements;
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(private readonly db: SqliteDatabase) {
    // The database is locked to this process: a lease still set was held by a process that died.
    db.prepare('UPDATE deliveries SET lease_until = NULL WHERE lease_until IS NOT NULL').run();
    this.statements = {
      byUuid: db.prepare<[string], SubmissionRow>('SELECT * FROM submissions WHERE message_uuid = ?'),
      byId: db.prepare<[string], SubmissionRow>('SELECT * FROM submissions WHERE id = ?'),
      insertSubmission: db.prepare(
        `INSERT INTO submissions (id, message_uuid, state, reason, source, client, facts, routes, tenant, size, received_at, updated_at)
         VALUES (@id, @messageUuid, @state, @reason, @source, @client, @facts, @routes, @tenant, @size, @now, @now)`,
      ),
      insertPayload: db.prepare('INSERT INTO payloads (submission_id, body) VALUES (?, ?)'),
      payload: db.prepare<[string], { body: Buffer }>('SELECT body FROM payloads WHERE submission_id = ?'),
      insertEvent: db.prepare(
        `INSERT INTO events (submission_id, at, event, target, attempt, outcome, reason, detail)
         VALUES (@id, @at, @event, @target, @attempt, @outcome, @reason, @detail)`,
      ),
      insertAttachment: db.prepare(
        `INSERT INTO attachments (submission_id, position, id, name, media_type, size, sha256, blob_key, role)
         VALUES (@submissionId, @position, @id, @name, @mediaType, @size, @sha256, @key, @role)`,
      ),
      attachments: db.prepare<[string], AttachmentRow>('SELECT id, name, media_type, size, sha256, blob_key, role FROM attachments WHERE submission_id = ? ORDER BY position'),
      purgeable: db.prepare<[string, number], string>("SELECT id FROM submissions WHERE state IN ('delivered', 'discarded') AND purged_at IS NULL AND updated_at < ? ORDER BY updated_at LIMIT ?").pluck(),
      referenced: db.prepare<[string], number>('SELECT 1 FROM attachments WHERE blob_key = ?').pluck(),
      markPurged: db.prepare('UPDATE submissions SET purged_at = ? WHERE id = ? AND purged_at IS NULL'),
      deletePayload: db.prepare('DELETE FROM payloads WHERE submission_id = ?'),
      deleteAttachments: db.prepare('DELETE FROM attachments WHERE submission_id = ?'),
      events: db.prepare<[string], EventRow>('SELECT at, event, target, attempt, outcome, reason, detail FROM events WHERE submission_id = ? ORDER BY id'),
      received: db.prepare<[string, number], string>(
        `SELECT id FROM submissions s WHERE state = 'received' AND received_at < ?
           AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.submission_id = s.id AND d.lease_until > ?)
         ORDER BY received_at`,
      ).pluck(),
      setState: db.prepare('UPDATE submissions SET state = @state, reason = @reason, facts = COALESCE(@facts, facts), routes = COALESCE(@routes, routes), updated_at = @now WHERE id = @id'),
      // After an attempt: as setState, but a submission still `received` stays so while a delivery is pending.
      settleOutcome: db.prepare("UPDATE submissions SET state = CASE WHEN @state = 'routed' AND state = 'received' THEN 'received' ELSE @state END, reason = NULL, updated_at = @now WHERE id = @id"),
      setTenant: db.prepare('UPDATE submissions SET tenant = ? WHERE id = ?'),
      markRouted: db.prepare("UPDATE submissions SET state = 'routed', updated_at = ? WHERE id = ? AND state = 'received'"),
      resetDelivery: db.prepare(
        `UPDATE deliveries SET state = 'pending', attempts = 0, reason = NULL, detail = NULL, next_attempt_at = NULL, lease_until = NULL, updated_at = ?
         WHERE submission_id = ? AND target = ?`,
      ),
      discardDelivery: db.prepare("UPDATE deliveries SET state = 'discarded', reason = ?, detail = ?, lease_until = NULL, updated_at = ? WHERE submission_id = ? AND target = ?"),
      insertAudit: db.prepare('INSERT INTO audit (at, actor, action, submission_id, target, detail) VALUES (@at, @actor, @action, @submissionId, @target, @detail)'),
      insertDelivery: db.prepare("INSERT INTO deliveries (submission_id, target, route, state, attempts, lease_until, updated_at) VALUES (?, ?, ?, 'pending', ?, ?, ?)"),
      deliveries: db.prepare<[string], DeliveryRow>('SELECT * FROM deliveries WHERE submission_id = ? ORDER BY rowid'),
      claim: db.prepare<{ id: string; target: string; now: number; until: number; at: string }, { attempts: number; route: string }>(
        `UPDATE deliveries SET attempts = attempts + 1, lease_until = @until, updated_at = @at
         WHERE submission_id = @id AND target = @target AND state = 'pending' AND (lease_until IS NULL OR lease_until <= @now)
           AND (next_attempt_at IS NULL OR next_attempt_at <= @at)
         RETURNING attempts, route`,
      ),
      releaseClaim: db.prepare<{ id: string; target: string; attempt: number; at: string }>(
        `UPDATE deliveries SET attempts = attempts - 1, lease_until = NULL, updated_at = @at
         WHERE submission_id = @id AND target = @target AND state = 'pending' AND attempts = @attempt AND lease_until IS NOT NULL`,
      ),
      claimContext: db.prepare<{ id: string }, { facts: string; received_at: string; client: string | null; attachments: number; deliveries: number }>(
        `SELECT facts, received_at, client, (SELECT count(*) FROM attachments WHERE submission_id = @id) AS attachments,
           (SELECT count(*) FROM deliveries WHERE submission_id = @id) AS deliveries FROM submissions WHERE id = @id`,
      ),
      leased: db.prepare<[string, number], number>("SELECT count(*) FROM deliveries WHERE target = ? AND state = 'pending' AND lease_until > ?").pluck(),
      delivery: db.prepare<[string, string], { state: string; lease_until: number | null; next_attempt_at: string | null }>('SELECT state, lease_until, next_attempt_at FROM deliveries WHERE submission_id = ? AND target = ?'),
      updateDelivery: db.prepare(
        `UPDATE deliveries SET state = @state, reason = @reason, detail = @detail, reference = COALESCE(@reference, reference),
           next_attempt_at = @nextAttemptAt, lease_until = NULL, updated_at = @now WHERE submission_id = @id AND target = @target`,
      ),
      countByState: db.prepare<[], { state: SubmissionState; n: number }>('SELECT state, count(*) AS n FROM submissions GROUP BY state'),
      deliveryStates: db.prepare<[string], { state: string; n: number }>('SELECT state, count(*) AS n FROM deliveries WHERE submission_id = ? GROUP BY state'),
    };
  }

  private event(id: string, event: Omit<HistoryEvent, 'at'>, at: string): void {
    this.statements.insertEvent.run({
      id, at, event: event.event, target: event.target ?? null, attempt: event.attempt ?? null,
      outcome: event.outcome ?? null, reason: event.reason ?? null, detail: event.detail ?? null,
    });
  }

  async accept(input: NewSubmission): Promise<{ submission: SubmissionSummary; created: boolean }> {
    return this.db.transaction(() => {
      const now = new Date().toISOString();
      const existing = this.statements.byUuid.get(input.messageUuid);
      if (existing) {
        this.event(existing.id, { event: 'resent', detail: receivedDetail(input) }, now);
        return { submission: { id: existing.id, messageUuid: existing.message_uuid, state: existing.state }, created: false };
      }
      const id = randomUUID();
      const { routing } = input;
      const parked = routing !== undefined && routing.targets.length === 0;
      const state: SubmissionState = parked ? 'parked' : 'received';
      this.statements.insertSubmission.run({
        id, messageUuid: input.messageUuid, state, reason: parked ? 'no-route' : null, source: input.source, client: input.client ?? null,
        facts: JSON.stringify(routing?.facts ?? input.facts), routes: JSON.stringify(routing?.routes ?? []), tenant: routing ? tenantOf(routing.facts) ?? null : null,
        size: input.payload.length, now,
      });
      this.statements.insertPayload.run(id, input.payload);
      (input.attachments ?? []).forEach((a, position) => this.statements.insertAttachment.run({ submissionId: id, position, ...a }));
      this.event(id, { event: 'received', detail: receivedDetail(input) }, now);
      if (routing) this.routed(id, routing.routes, routing.targets, now, input.claimed);
      return { submission: { id, messageUuid: input.messageUuid, state }, created: true };
    })();
  }

  async get(id: string): Promise<SubmissionStatus | undefined> {
    const row = this.statements.byId.get(id);
    if (!row) return undefined;
    return {
      id: row.id,
      messageUuid: row.message_uuid,
      state: row.state,
      reason: orUndefined(row.reason),
      source: row.source,
      client: orUndefined(row.client),
      size: row.size,
      receivedAt: row.received_at,
      updatedAt: row.updated_at,
      facts: JSON.parse(row.facts) as Facts,
      routes: JSON.parse(row.routes) as string[],
      deliveries: await this.deliveries(id),
      history: this.statements.events.all(id).map((e) => ({
        at: e.at, event: e.event, target: orUndefined(e.target), attempt: orUndefined(e.attempt),
        outcome: orUndefined(e.outcome), reason: orUndefined(e.reason), detail: orUndefined(e.detail),
      })),
      attachments: (await this.attachments(id)).map(({ name: _name, key: _key, ...reference }) => reference),
      purgedAt: orUndefined(row.purged_at),
    };
  }

  async payload(id: string): Promise<Buffer | undefined> {
    return this.statements.payload.get(id)?.body;
  }

  async attachments(id: string): Promise<AttachmentRecord[]> {
    return this.statements.attachments.all(id).map((a) => ({
      id: a.id, name: a.name, mediaType: a.media_type, size: a.size, sha256: a.sha256, key: a.blob_key, role: a.role,
    }));
  }

  async unreferencedKeys(keys: readonly string[]): Promise<string[]> {
    return keys.filter((key) => this.statements.referenced.get(key) === undefined);
  }

  async listPurgeable(deliveredBefore: Date, limit: number): Promise<string[]> {
    return this.statements.purgeable.all(deliveredBefore.toISOString(), limit);
  }

  async deleteHistory(purgedBefore: Date, limit: number): Promise<number> {
    return this.db.transaction(() => {
      const ids = this.db.prepare<[string, number], string>('SELECT id FROM submissions WHERE purged_at IS NOT NULL AND purged_at < ? ORDER BY purged_at LIMIT ?').pluck()
        .all(purgedBefore.toISOString(), limit);
      for (const id of ids) {
        for (const table of ['events', 'deliveries', 'attachments', 'payloads']) this.db.prepare(`DELETE FROM ${table} WHERE submission_id = ?`).run(id);
        this.db.prepare('DELETE FROM submissions WHERE id = ?').run(id);
      }
      return ids.length;
    })();
  }

  async purge(id: string): Promise<boolean> {
    return this.db.transaction(() => {
      const now = new Date().toISOString();
      const count = this.statements.attachments.all(id).length;
      if (this.statements.markPurged.run(now, id).changes === 0) return false;
      this.statements.deletePayload.run(id);
      this.statements.deleteAttachments.run(id);
      this.event(id, { event: 'purged', detail: purgedDetail(count) }, now);
      return true;
    })();
  }

  async listReceived(before?: Date, { skipLeased = false } = {}): Promise<string[]> {
    // (Leased until after the end of time: no lease excludes a submission.)
    return this.statements.received.all(before ? before.toISOString() : '9999-12-31T23:59:59.999Z', skipLeased ? Date.now() : Number.MAX_SAFE_INTEGER);
  }

  async recordRouting(id: string, facts: Facts, routes: string[], targets: RoutedTarget[]): Promise<boolean> {
    return this.db.transaction(() => {
      const row = this.statements.byId.get(id);
      // (a submission routed at intake is `received` with its deliveries until they are queued)
      if (!row || row.state !== 'received' || this.statements.deliveries.get(id)) return false;
      const now = new Date().toISOString();
      const parked = targets.length === 0;
      this.statements.setState.run({ id, state: parked ? 'parked' : 'routed', reason: parked ? 'no-route' : null, facts: JSON.stringify(facts), routes: JSON.stringify(routes), now });
      this.statements.setTenant.run(tenantOf(facts) ?? null, id);
      this.routed(id, routes, targets, now);
      return true;
    })();
  }

  /** The deliveries of a routing decision and its event (inside the caller's transaction). */
  private routed(id: string, routes: string[], targets: RoutedTarget[], now: string, claimed?: NewSubmission['claimed']): void {
    const leaseUntil = claimed && Date.parse(now) + claimed.leaseMs;
    for (const t of targets) {
      const claim = claimed?.targets.includes(t.target);
      this.statements.insertDelivery.run(id, t.target, t.route, claim ? 1 : 0, claim ? leaseUntil : null, now);
    }
    this.event(id, routingEvent(routes, targets), now);
  }

  async markRouted(ids: readonly string[]): Promise<void> {
    const now = new Date().toISOString();
    this.db.transaction(() => {
      for (const id of ids) this.statements.markRouted.run(now, id);
    })();
  }

  async deliveries(id: string): Promise<DeliveryRecord[]> {
    return this.statements.deliveries.all(id).map((d) => ({
      target: d.target, route: d.route, state: d.state, attempts: d.attempts, reason: orUndefined(d.reason),
      detail: orUndefined(d.detail), reference: orUndefined(d.reference), receipt: d.receipt ? JSON.parse(d.receipt) as Receipt : undefined,
      nextAttemptAt: orUndefined(d.next_attempt_at), updatedAt: d.updated_at,
    }));
  }

  async claimAttempt(id: string, target: string, leaseMs: number, maxInFlight?: number): Promise<Claim> {
    return this.db.transaction((): Claim => {
      const now = Date.now();
      if (maxInFlight !== undefined && this.statements.leased.get(target, now)! >= maxInFlight) {
        const row = this.statements.delivery.get(id, target);
        if (!row) throw new Error(`no delivery ${target} for submission ${id}`);
        return row.state === 'pending' ? { kind: 'throttled' } : { kind: 'done' };
      }
      const claimed = this.statements.claim.get({ id, target, now, until: now + leaseMs, at: new Date(now).toISOString() });
      if (claimed) {
        const context = this.statements.claimContext.get({ id })!;
        return {
          kind: 'claimed', attempt: claimed.attempts,
          context: { facts: JSON.parse(context.facts) as Facts, route: claimed.route, receivedAt: context.received_at, client: orUndefined(context.client), attachments: context.attachments, deliveries: context.deliveries },
        };
      }
      const row = this.statements.delivery.get(id, target);
      if (!row) throw new Error(`no delivery ${target} for submission ${id}`);
      if (row.state !== 'pending') return { kind: 'done' };
      return { kind: 'busy', until: new Date(Math.max(row.lease_until ?? now, row.next_attempt_at ? Date.parse(row.next_attempt_at) : now)) };
    })();
  }

  async releaseClaim(id: string, target: string, attempt: number): Promise<boolean> {
    return this.statements.releaseClaim.run({ id, target, attempt, at: new Date().toISOString() }).changes > 0;
  }

  /** One process owns the embedded store, so the bucket lives in memory (it refills from full after a restart). */
  async takeRateToken(target: string, limit: RateLimit): Promise<number> {
    const now = Date.now();
    const bucket = this.buckets.get(target) ?? { tokens: limit.burst, at: now };
    const taken = takeToken(bucket.tokens, now - bucket.at, limit);
    this.buckets.set(target, { tokens: taken.tokens, at: now });
    return taken.waitMs;
  }

  async recordOutcome(id: string, target: string, attempt: number, outcome: AttemptOutcome): Promise<void> {
    this.db.transaction(() => {
      const now = new Date().toISOString();
      const state = outcome.kind === 'delivered' ? 'delivered' : outcome.kind === 'dead' ? 'dead' : 'pending';
      const updated = this.statements.updateDelivery.run({
        id, target, state, now,
        reason: outcome.kind === 'delivered' ? null : outcome.reason,
        detail: outcome.detail ?? null,
        reference: outcome.kind === 'delivered' ? outcome.reference ?? null : null,
        nextAttemptAt: outcome.kind === 'retry' ? outcome.nextAttemptAt.toISOString() : null,
      });
      if (updated.changes === 0) throw new Error(`no delivery ${target} for submission ${id}`);
      this.event(id, {
        event: 'attempt', target, attempt, outcome: outcome.kind,
        reason: outcome.kind === 'delivered' ? undefined : outcome.reason,
        detail: outcome.kind === 'retry' ? `${outcome.detail}; next attempt ${outcome.nextAttemptAt.toISOString()}` : outcome.detail,
      }, now);
      this.settleState(id, now, this.statements.settleOutcome);
    })();
  }

  /** Sets the submission's state from its deliveries (inside the caller's transaction). */
  private settleState(id: string, now: string, statement = this.statements.setState): void {
    const counts = Object.fromEntries(this.statements.deliveryStates.all(id).map((r) => [r.state, r.n]));
    statement.run({ id, state: finalState(counts), reason: null, facts: null, routes: null, now });
  }

  private auditIn(entry: AuditEntry, at: string): void {
    this.statements.insertAudit.run({ at, actor: entry.actor, action: entry.action, submissionId: entry.submissionId ?? null, target: entry.target ?? null, detail: entry.detail ?? null });
  }

  async list(query: SubmissionQuery): Promise<SubmissionListItem[]> {
    const where: string[] = [];
    const params: Record<string, string | number> = { limit: Math.max(1, Math.min(500, query.limit)) };
    if (query.states?.length) {
      where.push(`s.state IN (${query.states.map((_, i) => `@state${i}`).join(', ')})`);
      query.states.forEach((state, i) => { params[`state${i}`] = state; });
    }
    if (query.tenant) { where.push('s.tenant = @tenant'); params.tenant = query.tenant; }
    if (query.receivedFrom) { where.push('s.received_at >= @from'); params.from = query.receivedFrom.toISOString(); }
    if (query.receivedTo) { where.push('s.received_at < @to'); params.to = query.receivedTo.toISOString(); }
    if (query.target || query.deliveryState || query.route) {
      const conditions = ['d.submission_id = s.id'];
      if (query.target) { conditions.push('d.target = @target'); params.target = query.target; }
      if (query.deliveryState) { conditions.push('d.state = @deliveryState'); params.deliveryState = query.deliveryState; }
      if (query.route) { conditions.push('d.route = @route'); params.route = query.route; }
      where.push(`EXISTS (SELECT 1 FROM deliveries d WHERE ${conditions.join(' AND ')})`);
    }
    if (query.after) {
      const cursor = this.statements.byId.get(query.after);
      if (!cursor) return [];
      where.push('(s.received_at < @afterAt OR (s.received_at = @afterAt AND s.id < @afterId))');
      params.afterAt = cursor.received_at;
      params.afterId = cursor.id;
    }
    const rows = this.db.prepare<Record<string, string | number>, SubmissionRow>(
      `SELECT s.* FROM submissions s ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY s.received_at DESC, s.id DESC LIMIT @limit`,
    ).all(params);
    return Promise.all(rows.map(async (row) => {
      const facts = JSON.parse(row.facts) as Facts;
      return {
        id: row.id, state: row.state, reason: orUndefined(row.reason), tenant: orUndefined(row.tenant),
        messageType: typeof facts.messageType === 'string' ? facts.messageType : undefined,
        source: row.source, receivedAt: row.received_at, updatedAt: row.updated_at, deliveries: await this.deliveries(row.id),
      };
    }));
  }

  async replay(id: string, target: string, options: { toTarget?: { target: string; route: string }; audit: AuditEntry }): Promise<OperatorResult> {
    return this.db.transaction((): OperatorResult => {
      const now = new Date().toISOString();
      const delivery = this.statements.deliveries.all(id).find((d) => d.target === target);
      if (!delivery) return { ok: false, problem: 'not-found', detail: `submission ${id} has no delivery to ${target}` };
      if (delivery.state !== 'dead') return { ok: false, problem: 'wrong-state', detail: `the delivery to ${target} is ${delivery.state}, not dead` };
      const to = options.toTarget;
      if (!to || to.target === target) {
        this.statements.resetDelivery.run(now, id, target);
        this.event(id, { event: 'replayed', target, detail: `by ${options.audit.actor}` }, now);
      } else {
        if (this.statements.deliveries.all(id).some((d) => d.target === to.target)) {
          return { ok: false, problem: 'wrong-state', detail: `submission ${id} already has a delivery to ${to.target}` };
        }
        this.statements.discardDelivery.run('replayed', `replayed to ${to.target}`, now, id, target);
        this.statements.insertDelivery.run(id, to.target, to.route, 0, null, now);
        this.event(id, { event: 'replayed', target: to.target, detail: `from ${target}, by ${options.audit.actor}` }, now);
      }
      this.settleState(id, now);
      this.auditIn(options.audit, now);
      return { ok: true };
    })();
  }

  async reroute(id: string, audit: AuditEntry): Promise<OperatorResult> {
    return this.db.transaction((): OperatorResult => {
      const row = this.statements.byId.get(id);
      if (!row) return { ok: false, problem: 'not-found', detail: `no submission ${id}` };
      if (row.state !== 'parked') return { ok: false, problem: 'wrong-state', detail: `submission ${id} is ${row.state}, not parked` };
      const now = new Date().toISOString();
      this.statements.setState.run({ id, state: 'received', reason: null, facts: null, routes: null, now });
      this.event(id, { event: 'rerouted', detail: `by ${audit.actor}` }, now);
      this.auditIn(audit, now);
      return { ok: true };
    })();
  }

  async discard(id: string, target: string | undefined, audit: AuditEntry): Promise<OperatorResult> {
    return this.db.transaction((): OperatorResult => {
      const row = this.statements.byId.get(id);
      if (!row) return { ok: false, problem: 'not-found', detail: `no submission ${id}` };
      const now = new Date().toISOString();
      const reason = audit.detail ?? 'discarded by an operator';
      if (target === undefined) {
        if (row.state !== 'parked') return { ok: false, problem: 'wrong-state', detail: `submission ${id} is ${row.state}, not parked` };
        this.statements.setState.run({ id, state: 'discarded', reason: 'discarded', facts: null, routes: null, now });
      } else {
        const delivery = this.statements.deliveries.all(id).find((d) => d.target === target);
        if (!delivery) return { ok: false, problem: 'not-found', detail: `submission ${id} has no delivery to ${target}` };
        if (delivery.state !== 'dead') return { ok: false, problem: 'wrong-state', detail: `the delivery to ${target} is ${delivery.state}, not dead` };
        this.statements.discardDelivery.run('discarded', reason, now, id, target);
        this.settleState(id, now);
      }
      this.event(id, { event: 'discarded', target, reason: 'discarded', detail: `${reason} (by ${audit.actor})` }, now);
      this.auditIn(audit, now);
      return { ok: true };
    })();
  }

  async stats(since: Date): Promise<StoreStats> {
    const from = since.toISOString();
    const attempts = this.db.prepare<[string], { target: string; outcome: 'delivered' | 'retry' | 'dead'; count: number }>(
      "SELECT target, outcome, count(*) AS count FROM events WHERE event = 'attempt' AND at >= ? GROUP BY target, outcome ORDER BY target, outcome",
    ).all(from);
    const received = this.db.prepare<[string], { minute: string; count: number }>(
      'SELECT substr(received_at, 1, 16) AS minute, count(*) AS count FROM submissions WHERE received_at >= ? GROUP BY minute',
    ).all(from);
    const delivered = this.db.prepare<[string], { minute: string; count: number }>(
      "SELECT substr(at, 1, 16) AS minute, count(*) AS count FROM events WHERE event = 'attempt' AND outcome = 'delivered' AND at >= ? GROUP BY minute",
    ).all(from);
    return { attempts, perMinute: mergeMinutes(received, delivered) };
  }

  async recordReceipt(id: string, target: string, receipt: Receipt, actor: string): Promise<OperatorResult & { changed?: boolean }> {
    return this.db.transaction((): OperatorResult & { changed?: boolean } => {
      const delivery = this.statements.deliveries.all(id).find((d) => d.target === target);
      if (!delivery) return { ok: false, problem: 'not-found', detail: `submission ${id} has no delivery to ${target}` };
      if (delivery.state !== 'delivered') return { ok: false, problem: 'wrong-state', detail: `the delivery to ${target} is ${delivery.state}, not delivered` };
      const json = JSON.stringify(receiptRecord(receipt));
      if (delivery.receipt === json) return { ok: true, changed: false };
      const now = new Date().toISOString();
      this.db.prepare('UPDATE deliveries SET receipt = ?, reference = COALESCE(?, reference), updated_at = ? WHERE submission_id = ? AND target = ?')
        .run(json, receipt.fileNumber ?? null, now, id, target);
      this.event(id, { event: 'receipt', target, outcome: undefined, reason: receipt.reason, detail: describeReceipt(receipt, actor) }, now);
      return { ok: true, changed: true };
    })();
  }

  async storedBytes(): Promise<{ payloads: number; attachments: number }> {
    const payloads = this.db.prepare('SELECT coalesce(sum(size), 0) FROM submissions WHERE purged_at IS NULL').pluck().get() as number;
    const attachments = this.db.prepare('SELECT coalesce(sum(size), 0) FROM attachments').pluck().get() as number;
    return { payloads, attachments };
  }

  async recordAudit(entry: AuditEntry): Promise<void> {
    this.auditIn(entry, new Date().toISOString());
  }

  async audit(query: { submissionId?: string; limit: number }): Promise<AuditRecord[]> {
    const limit = Math.max(1, Math.min(1000, query.limit));
    const rows = (query.submissionId
      ? this.db.prepare('SELECT * FROM audit WHERE submission_id = ? ORDER BY id DESC LIMIT ?').all(query.submissionId, limit)
      : this.db.prepare('SELECT * FROM audit ORDER BY id DESC LIMIT ?').all(limit)) as Array<{ id: number; at: string; actor: string; action: string; submission_id: string | null; target: string | null; detail: string | null }>;
    return rows.map((r) => ({ id: String(r.id), at: r.at, actor: r.actor, action: r.action, submissionId: orUndefined(r.submission_id), target: orUndefined(r.target), detail: orUndefined(r.detail) }));
  }

  async check(): Promise<{ ok: boolean; detail: string }> {
    return this.db.open ? { ok: true, detail: 'embedded store open' } : { ok: false, detail: 'embedded store closed' };
  }

  async countByState(): Promise<Record<SubmissionState, number>> {
    const counts = Object.fromEntries(SUBMISSION_STATES.map((state) => [state, 0])) as Record<SubmissionState, number>;
    for (const row of this.statements.countByState.all()) counts[row.state] = row.n;
    return counts;
  }

  async close(): Promise<void> {
    // The database handle is shared with the embedded transport; the composition root closes it.
  }
}
