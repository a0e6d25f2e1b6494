// The whole flow of a submission, stage by stage:
//   receive (intake: check, store durably, enqueue) → route (facts, ordered routes, deliveries)
//   → deliver (map, adapter, outcome: delivered | retry with backoff | dead letter) → status in the store.
// Each stage is idempotent: a message handed out twice (after a crash) changes nothing twice.
import type { Logger } from 'pino';
import type { LoadedConfig, TargetPlan } from './config/load';
import { checkAndValidate, type Facts } from './envelope/envelope';
import type { SchemaValidator } from './envelope/schema-validation';
import { lazyDom } from './envelope/dom';
import { DocumentCache, type Mapped } from './envelope/document-cache';
import { MappingError, type MappingInput } from './map/mapping';
import { InputError } from './errors';
import type { Metrics } from './metrics';
import type { Callbacks } from './callbacks/callbacks';
import { childSpan, formatTraceparent, parseTraceparent } from './trace';
import { authorizeSubmission, type Client } from './auth/auth';
import type { Adapter, DeliveryAttachment, DeliveryOutcome, Payload } from './deliver/adapter';
import { backoffDelay } from './deliver/backoff';
import type { PayloadStore } from './store/payload-store';
import type { AttachmentRecord, AttemptOutcome, Claim, ClaimContext, NewSubmission, OperatorResult, Receipt, Store, SubmissionState } from './store/store';
import type { RoutedTarget } from './route/router';
import { TransportUnavailableError, type Disposition, type ReceivedMessage, type Slot, type Transport } from './transport/transport';

export const ROUTE_QUEUE = 'route';
export const deliveryQueue = (target: string) => `deliver.${target}`;

export interface ReceiveResult {
  submissionId: string;
  status: SubmissionState;
  /** True when a submission with the same nachrichtenUUID was already accepted. */
  duplicate: boolean;
}

export interface ReceiveOptions {
  /** The sender's own id for a document without XÖV header (see `envelope.requireXoevHeader`). */
  idempotencyKey?: string;
  /** The authenticated caller; its tenants and services are enforced. */
  client?: Client;
  /** The sender's W3C `traceparent`, continued through the queues to the adapters. */
  traceparent?: string;
  /** The submission's idempotency key when the intake knows a better one than the document's (intelliForm: the deposit id). */
  submissionKey?: string;
  /** Facts the intake knows (e.g. a deposit's `formId` and custom parameters); the document's facts win. */
  facts?: Facts;
  /**
   * Attachments already streamed into the payload store. Whenever the submission is not stored with them
   * (refused, a resend of a known one, a failure), they are deleted again: nothing stays half-accepted.
   */
  attachments?: readonly AttachmentRecord[];
}

/** A delivery slot of this instance taken at intake for a delivery stored claimed for its first attempt. */
interface ReservedSlot {
  target: string;
  route: string;
  slot: Slot;
}

/** A place in line for a busy target's next free slot, taken at intake: the delivery is stored claimed, the answer does not wait for the slot. */
interface WaitingSlot {
  target: string;
  route: string;
  later: Promise<Slot | undefined>;
}

export interface PipelineDependencies {
  config: LoadedConfig;
  store: Store;
  /** Where attachment bytes are (claim check); the store holds their references. */
  payloads: PayloadStore;
  transport: Transport;
  /** A connected adapter per target name. */
  adapters: ReadonlyMap<string, Adapter>;
  log: Logger;
  metrics: Metrics;
  /** Status callbacks to the sending client (delivered, rejected, dead-lettered, receipts). */
  callbacks?: Callbacks;
  /** XSD validation at intake, when `validation.schemas` is configured. */
  validator?: SchemaValidator;
  /** How long `routed` marks are collected (default ROUTED_MARK_DELAY_MS; tests set it). */
  routedMarkDelayMs?: number;
}

const secondsSince = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e9;

/** Pause before a throttled delivery (target at `maxInFlight`) asks again. */
const THROTTLE_WAIT_MS = 200;

/**
 * How long `routed` marks are collected before they are written in one go. Most deliveries finish sooner:
 * their outcome sets the submission's state, and their marks are dropped unwritten (one update of the
 * submission row less each). Far below the sweep's age, so the sweep never sees a submission still waiting.
 */
const ROUTED_MARK_DELAY_MS = 1000;

/** How often, and after how long, submissions stuck in `received` are queued for routing again. */
const SWEEP_INTERVAL_MS = 30_000;
/** Accepted submissions whose queueing may be unconfirmed at once before the intake waits for it. */
const MAX_UNCONFIRMED = 256;

export class Pipeline {
  private sweep: NodeJS.Timeout | undefined;
  /** Documents from intake to delivery in this process, so that each is parsed once. */
  private readonly documents: DocumentCache;
  /** Submissions routed at intake whose deliveries are queued, to be marked `routed` in one write. */
  private readonly routedMarks = new Set<string>();
  private marking: NodeJS.Timeout | undefined;
  private settled = false;
  private markWrite: Promise<void> | undefined;
  /** Deliveries stored claimed at intake, each to be run at once in the slot reserved for it (`<id>/<target>`). */
  private readonly claimedAtIntake = new Map<string, Claim>();
  /** Deliveries of accepted submissions being queued (the intake answered before the broker confirmed), or waiting for their slot. */
  private readonly queueing = new Set<Promise<void>>();

  /**
   * Whether the intake maps: its strict pass builds the element tree too, and the mappings that read one
   * run on it at once (the payloads are kept for the delivery). When a target's mapping reads a tree and
   * documents are kept from intake to delivery at all.
   */
  private readonly mapAtIntake: boolean;

  constructor(private readonly deps: PipelineDependencies) {
    this.documents = new DocumentCache(deps.config.raw.delivery.documentCache);
    this.mapAtIntake = deps.config.raw.delivery.documentCache > 0 && [...deps.config.targets.values()].some((plan) => plan.mapping.readsTree);
  }

  /** Starts the stages' consumers and re-enqueues what was accepted but not yet routed. */
  async start(): Promise<void> {
    const { transport, config } = this.deps;
    transport.consume(ROUTE_QUEUE, 4, (message) => this.route(message));
    for (const plan of config.targets.values()) {
      transport.consume(deliveryQueue(plan.name), plan.concurrency, (message) => this.deliver(plan, message));
    }
    await this.requeueReceived();
    // A submission stored while its queue message was lost (the broker failed between the two steps) is
    // queued again by this sweep; routing is idempotent, so a second message for it changes nothing.
    this.sweep = setInterval(() => {
      this.requeueReceived(new Date(Date.now() - SWEEP_INTERVAL_MS)).catch((error: unknown) => {
        this.deps.log.warn({ err: error }, 'sweep of received submissions failed; next try in a while');
      });
    }, SWEEP_INTERVAL_MS);
    this.sweep.unref();
  }

  /** Stops the periodic sweep (the transport's consumers are stopped by the transport). */
  stop(): void {
    clearInterval(this.sweep);
  }

  /** Writes what is still buffered (the `routed` marks); call after the transport stopped. */
  async settle(): Promise<void> {
    await this.queued();
    await this.writeRoutedMarks();
    this.settled = true;
  }

  /** Waits until the deliveries of every accepted submission are queued (or their queueing failed). */
  async queued(): Promise<void> {
    await Promise.all(this.queueing);
  }

  /**
   * Marks a submission routed at intake as `routed`, together with others of the next moments in one
   * write. Until then (and should the write be lost) the submission is `received` with its deliveries,
   * which the sweep would queue again: harmless, as a delivery is claimed once whatever the copies.
   */
  private markRouted(submissionId: string): void {
    // After settle(), the store may be closed: an unwritten mark only lets the sweep queue the deliveries again.
    if (this.settled) return;
    this.routedMarks.add(submissionId);
    this.marking ??= setTimeout(() => void this.writeRoutedMarks(), this.deps.routedMarkDelayMs ?? ROUTED_MARK_DELAY_MS);
  }

  /** Writes the marks collected so far (and waits for a write already under way). */
  private async writeRoutedMarks(): Promise<void> {
    clearTimeout(this.marking);
    this.marking = undefined;
    const ids = [...this.routedMarks];
    this.routedMarks.clear();
    const previous = this.markWrite;
    const write = (async () => {
      await previous;
      if (!ids.length) return;
      await this.deps.store.markRouted(ids).catch((error: unknown) => {
        this.deps.log.warn({ err: error, submissions: ids.length }, 'marking routed submissions failed; the sweep queues their deliveries again');
      });
    })();
    this.markWrite = write;
    await write;
  }

  private async requeueReceived(before?: Date): Promise<void> {
    // At start every one (copies of an attempt still running elsewhere wait for its lease); later only those
    // without a running attempt, which queues what it leaves open itself.
    for (const submissionId of await this.deps.store.listReceived(before, { skipLeased: before !== undefined })) {
      await this.deps.transport.publish(ROUTE_QUEUE, { key: submissionId, body: { submissionId } });
    }
  }

  /**
   * Intake: checks the message (throws InputError, nothing stored) and stores it durably. Resolves only
   * when the submission is on disk (with its deliveries, or queued for routing); then the caller may
   * answer "accepted".
   */
  async receive(body: Buffer, source: string, options: ReceiveOptions = {}): Promise<ReceiveResult> {
    const start = process.hrtime.bigint();
    const attachments = options.attachments ?? [];
    const discard = () => this.deps.payloads.delete(attachments.map((a) => a.key)).catch((error: unknown) => {
      this.deps.log.warn({ err: error, attachments: attachments.length }, 'attachments of a submission not stored could not be deleted');
    });
    let result: ReceiveResult;
    const progress = { stored: false };
    try {
      result = await this.accept(body, source, options, progress);
      this.deps.metrics.accepted(source, secondsSince(start));
    } catch (error) {
      const reason = error instanceof InputError ? error.code : error instanceof TransportUnavailableError ? 'transport-unavailable' : 'internal-error';
      this.deps.metrics.refusedAtIntake(source, reason);
      // Stored before the failure (e.g. queueing failed): the submission holds its attachments, and the
      // sweep delivers it; only what was never stored is deleted.
      if (!progress.stored) await discard();
      throw error;
    }
    if (result.duplicate) await discard();
    return result;
  }

  private async accept(body: Buffer, source: string, { idempotencyKey, client, traceparent, submissionKey, facts: intakeFacts, attachments = [] }: ReceiveOptions, progress: { stored: boolean }): Promise<ReceiveResult> {
    const { config, store, transport, metrics } = this.deps;
    const checked = await checkAndValidate(body, config.raw.xml, { requireXoevHeader: config.raw.envelope.requireXoevHeader, idempotencyKey }, {
      validator: this.deps.validator, paths: config.extractFacts.paths, tree: this.mapAtIntake,
    });
    const known: Facts = { ...intakeFacts, ...checked.extraFacts, ...checked.facts };
    // Routing happens here, on the document the intake has in hand, and is stored with the submission: no
    // second read and parse, no routing queue hop. Should it fail unexpectedly, the routing stage does it.
    const start = process.hrtime.bigint();
    const document = lazyDom(checked.text);
    let facts: Facts = known;
    let routing: NewSubmission['routing'];
    let mapped: Map<string, Mapped> | undefined;
    try {
      // Facts by plain element path were read on the strict pass; the DOM is parsed only if something needs it.
      facts = { ...known, ...config.extractFacts(document, known, checked.pathValues) };
      const decision = config.router.decide({ facts, document });
      routing = { facts, routes: decision.routes, targets: decision.targets };
      if (checked.tree) mapped = this.mapNow(routing, { raw: body, text: checked.text, tree: checked.tree, facts, get document() { return document(); } });
    } catch (error) {
      if (error instanceof InputError) throw error;
      this.deps.log.warn({ err: error, event: 'route' }, 'routing at intake failed; the routing stage will route the submission');
    } finally {
      // Not held across the awaits below: thousands of small objects outliving the young generation cost more GC than the parse saves.
      checked.tree = undefined;
    }
    if (client && (client.tenants || client.services)) await this.authorize(client, facts);
    // Refuse before storing when the transport is down: a sender told 503 sends again, and nothing waits
    // half-accepted. (Should it fail between store and queue anyway, the sweep below queues it later.)
    const refuseWhenDown = () => {
      const health = transport.health();
      if (!health.ok) throw new TransportUnavailableError(health.detail);
    };
    refuseWhenDown();
    const slots: ReservedSlot[] = [];
    let waiting: WaitingSlot | undefined;
    try {
      // Delivery slots of this instance for the targets: those deliveries start at once after the commit.
      waiting = await this.reserveSlots(routing?.targets ?? [], slots);
      // The transport may have gone while the intake waited for a slot.
      refuseWhenDown();
      const { submission, created } = await store.accept({
        messageUuid: submissionKey ?? checked.facts.messageUuid, facts: known, payload: body, source, client: client?.name, attachments, routing,
        // (A delivery waiting for its slot is the only one claimed then: its lease also covers the wait.)
        claimed: {
          targets: [...slots, ...(waiting ? [waiting] : [])].map((s) => s.target),
          leaseMs: config.raw.delivery.leaseTime + (waiting ? config.raw.delivery.immediateWait : 0),
        },
      });
      progress.stored = created;
      const trace = childSpan(parseTraceparent(traceparent));
      const log = this.deps.log.child({ submissionId: submission.id, traceId: trace.traceId });
      if (created && routing) {
        metrics.routedTo(facts, routing.routes, secondsSince(start));
        if (routing.targets.length) {
          this.documents.put(submission.id, body, routing.targets.length, { text: checked.text, dom: document.parsed(), mapped });
          const context = { facts: routing.facts, receivedAt: new Date().toISOString(), client: client?.name, attachments: attachments.length, deliveries: routing.targets.length };
          const queued = this.handOn(submission.id, routing.targets, { slots, waiting }, context, formatTraceparent(trace), log);
          waiting = undefined;
          if (queued && this.queueing.size > MAX_UNCONFIRMED) await queued;
        }
      } else if (created || submission.state === 'received') {
        await transport.publish(ROUTE_QUEUE, { key: submission.id, body: { submissionId: submission.id, traceparent: formatTraceparent(trace) } });
      }
      log.info({
        event: created ? 'received' : 'resent', source, messageType: checked.facts.messageType, standard: checked.facts.standard,
        bytes: body.length, attachments: attachments.length, elements: checked.elementCount,
      }, created ? 'submission accepted' : 'resend of an accepted submission');
      if (created && routing) this.logRouting(log, routing.routes, routing.targets.map((t) => t.target));
      // The answer to a new submission says `received` (what the sender learns is that it is held), also when it was routed at once.
      return { submissionId: submission.id, status: created ? 'received' : submission.state, duplicate: !created };
    } finally {
      // Each slot was run by handOn, or is given back here (a resend, a failure; releasing a run one changes nothing).
      for (const { slot } of slots) slot.release();
      // A place in line handOn did not take: its slot is given back when it comes.
      void waiting?.later.then((slot) => slot?.release());
    }
  }

  /**
   * Maps the submission for its targets whose mapping reads the element tree, on the tree the strict pass
   * built: while it is at hand, so that it is not kept (nor parsed again) until the delivery. A mapping's
   * refusal is kept too — the delivery reports it as its outcome, as if it had mapped then; anything else
   * it throws is left for the delivery to meet again.
   */
  private mapNow(routing: NonNullable<NewSubmission['routing']>, input: MappingInput): Map<string, Mapped> {
    const mapped = new Map<string, Mapped>();
    for (const { target } of routing.targets) {
      const mapping = this.deps.config.targets.get(target)?.mapping;
      if (!mapping?.readsTree) continue;
      try {
        mapped.set(target, { payload: mapping.run(input) });
      } catch (error) {
        if (error instanceof MappingError) mapped.set(target, { error });
        else this.deps.log.debug({ err: error, target }, 'mapping at intake failed unexpectedly; the delivery maps again');
      }
    }
    return mapped;
  }

  /**
   * With `delivery.immediate`, a slot of this instance per target, taken before the submission is stored
   * (into `slots`, which the caller releases), whose delivery is stored claimed: the attempt runs at once
   * after the commit, without a queue hop or a claim of its own. Only for targets without `rateLimit` and
   * `maxInFlight`: their attempts wait for what is shared across instances, and go through the queue. A
   * submission for one such target takes a place in line for a busy one, when one is expected within
   * `delivery.immediateWait` (see `SlotLine`): while the line is short (a burst), the sender is answered
   * at once and the delivery, stored claimed, runs when its slot comes (returned as the `WaitingSlot`);
   * in a long line (senders outpace the back office) the answer waits for the slot too: back-pressure.
   * With several targets it takes the free slots only (holding one while waiting for another could make
   * intakes wait for each other).
   */
  private async reserveSlots(targets: readonly RoutedTarget[], slots: ReservedSlot[]): Promise<WaitingSlot | undefined> {
    const { transport, config } = this.deps;
    const { immediate, immediateWait } = config.raw.delivery;
    if (!immediate) return undefined;
    const eligible = targets.filter(({ target }) => {
      const plan = config.targets.get(target);
      return plan && !plan.rateLimit && plan.maxInFlight === undefined;
    });
    const waitMs = eligible.length === 1 ? immediateWait : 0;
    for (const { target, route } of eligible) {
      const booking = transport.book(deliveryQueue(target), waitMs);
      if (booking?.slot) slots.push({ target, route, slot: booking.slot });
      if (!booking?.later) continue;
      if (booking.detached) return { target, route, later: booking.later };
      const slot = await booking.later;
      if (slot) slots.push({ target, route, slot });
    }
    return undefined;
  }

  /**
   * Hands the deliveries of a submission routed at intake on, without holding the answer: those with a
   * reserved slot run at once (no queue hop), one with a place in line runs when its slot comes, the
   * others are published. Until every one of them is queued or finished, the submission stays `received`
   * (an outcome does not move it on), so the sweep would queue what a stopped process left; then it is
   * marked `routed` — unless all finished, and the last outcome set the final state. Returns the
   * publishing, if any, so that many unconfirmed at once (a slow broker) can hold the intake.
   */
  private handOn(id: string, targets: readonly RoutedTarget[], { slots, waiting }: { slots: readonly ReservedSlot[]; waiting?: WaitingSlot }, context: Omit<ClaimContext, 'route'>, traceparent: string, log: Logger): Promise<void> | undefined {
    const message = { key: id, body: { submissionId: id, traceparent } };
    const run = (target: string, route: string, slot: Slot) => {
      this.claimedAtIntake.set(`${id}/${target}`, { kind: 'claimed', attempt: 1, context: { ...context, route } });
      return slot.run(message);
    };
    const runs: Array<Promise<Disposition | 'queued'>> = slots.map(({ target, route, slot }) => run(target, route, slot));
    if (waiting) {
      // The answer does not wait for this slot. When none comes in time (a back office hangs) or the line
      // is dismissed (the consumer stops), the claim stored with the submission is given back and the
      // delivery queued. (`started` holds the run in a box: a promise in a promise would be awaited.)
      const { target, route, later } = waiting;
      const started = later.then(async (slot) => {
        if (slot) return { run: run(target, route, slot) };
        await this.deps.store.releaseClaim(id, target, 1);
        await this.deps.transport.publish(deliveryQueue(target), message);
        return undefined;
      });
      this.track(started);
      runs.push(started.then<Disposition | 'queued'>((box) => box?.run ?? 'queued'));
    }
    const slotted = new Set([...slots, ...(waiting ? [waiting] : [])].map((s) => s.target));
    const toQueue = targets.filter((t) => !slotted.has(t.target)).map((t) => t.target);
    const queued = toQueue.length ? this.queueDeliveries(id, toQueue, traceparent) : undefined;
    void Promise.allSettled([...runs, ...(queued ? [queued] : [])]).then((results) => {
      const failed = results.find((r) => r.status === 'rejected');
      if (failed) {
        log.warn({ err: failed.reason, event: 'queue' }, 'queueing deliveries of an accepted submission failed; the sweep queues them');
        return;
      }
      // Queued, or a run's retry queued: mark. Every delivery run and finished (delivered, dead): the state is final.
      if (toQueue.length || results.some((r) => r.status === 'fulfilled' && (r.value === 'queued' || r.value?.kind === 'retry'))) this.markRouted(id);
    });
    return queued && this.track(queued);
  }

  /** Keeps `work` (queueing, or waiting for a slot) among what `queued()` waits for; resolves when it settled, never rejects. */
  private track(work: Promise<unknown>): Promise<void> {
    const settled = work.then(() => undefined, () => undefined);
    this.queueing.add(settled);
    void settled.finally(() => this.queueing.delete(settled));
    return settled;
  }

  private async queueDeliveries(submissionId: string, targets: string[], traceparent: string): Promise<void> {
    await Promise.all(targets.map((target) => this.deps.transport.publish(deliveryQueue(target), { key: submissionId, body: { submissionId, traceparent } })));
  }

  private logRouting(log: Logger, routes: string[], targets: string[]): void {
    if (targets.length) log.info({ event: 'routed', routes, targets }, 'submission routed');
    else log.warn({ event: 'parked', reason: 'no-route' }, 'no route matched; submission parked');
  }

  /**
   * Operator action: a dead delivery gets a fresh attempt budget, at the same or another target (after a
   * fix of configuration, mapping or back office), and is queued again. Audited by the store.
   */
  async replay(id: string, target: string, options: { toTarget?: string; actor: string; note?: string }): Promise<OperatorResult> {
    const to = options.toTarget && options.toTarget !== target ? { target: options.toTarget, route: 'replay' } : undefined;
    const result = await this.deps.store.replay(id, target, {
      toTarget: to,
      audit: { actor: options.actor, action: 'replay', submissionId: id, target: to ? `${target} → ${to.target}` : target, detail: options.note },
    });
    if (result.ok) await this.deps.transport.publish(deliveryQueue(to?.target ?? target), { key: id, body: { submissionId: id } });
    this.deps.log.info({ event: 'replayed', submissionId: id, target, toTarget: to?.target, actor: options.actor, ok: result.ok }, 'operator replay');
    return result;
  }

  /** Operator action: a parked submission is routed again with the current configuration. */
  async reroute(id: string, options: { actor: string; note?: string }): Promise<OperatorResult> {
    const result = await this.deps.store.reroute(id, { actor: options.actor, action: 'reroute', submissionId: id, detail: options.note });
    if (result.ok) await this.deps.transport.publish(ROUTE_QUEUE, { key: id, body: { submissionId: id } });
    this.deps.log.info({ event: 'rerouted', submissionId: id, actor: options.actor, ok: result.ok }, 'operator re-route');
    return result;
  }

  /** Queues the status callback for a delivery's final outcome (delivered, or dead: rejected / dead-lettered). */
  private async notifyOutcome(submissionId: string, target: string): Promise<void> {
    const { callbacks, store } = this.deps;
    if (!callbacks) return;
    const status = await store.get(submissionId);
    const delivery = status?.deliveries.find((d) => d.target === target);
    if (!status || !delivery || (delivery.state !== 'delivered' && delivery.state !== 'dead')) return;
    const event = delivery.state === 'delivered' ? 'delivered' : delivery.reason === 'max-attempts-exceeded' ? 'dead-lettered' : 'rejected';
    const attempts = status.history.filter((h) => h.event === 'attempt' && h.target === target).length;
    await callbacks.notify(submissionId, status.client, event, target, `attempt-${attempts}`);
  }

  /**
   * A back office reports its receipt (file number, or rejection after its own check) for a delivery it
   * received; recorded once and passed on to the sending client as a callback.
   */
  async receipt(id: string, target: string, receipt: Receipt, actor: string): Promise<OperatorResult> {
    const result = await this.deps.store.recordReceipt(id, target, receipt, actor);
    if (result.ok && result.changed) {
      const status = await this.deps.store.get(id);
      await this.deps.callbacks?.notify(id, status?.client, 'receipt', target, JSON.stringify(receipt));
      this.deps.log.info({ event: 'receipt', submissionId: id, target, status: receipt.status, client: actor }, 'back office receipt recorded');
    }
    return result;
  }

  /** Refuses (403, audited without content) a submission for a tenant or service the client may not serve. */
  private async authorize(client: Client, facts: Facts): Promise<void> {
    try {
      authorizeSubmission(client, facts);
    } catch (error) {
      if (error instanceof InputError) await this.deps.store.recordAudit({ actor: client.name, action: 'submission-refused', detail: `${error.code}: ${error.detail}` });
      throw error;
    }
  }

  /** Routing stage: configured facts, ordered routes; records the deliveries (or parks) and enqueues them. */
  async route(message: ReceivedMessage): Promise<Disposition> {
    const { store, config } = this.deps;
    const submissionId = message.body.submissionId!;
    const trace = childSpan(parseTraceparent(message.body.traceparent));
    const log = this.deps.log.child({ submissionId, traceId: trace.traceId });
    const status = await store.get(submissionId);
    if (!status) {
      log.warn({ event: 'route' }, 'routing message for an unknown submission dropped');
      return { kind: 'ack' };
    }
    let deliveries = await store.deliveries(submissionId);
    if (status.state === 'received' && deliveries.length === 0) {
      const start = process.hrtime.bigint();
      const raw = (await store.payload(submissionId))!;
      const document = lazyDom(raw);
      const extracted = config.extractFacts(document, status.facts);
      const facts: Facts = { ...status.facts, ...extracted };
      const decision = config.router.decide({ facts, document });
      if (await store.recordRouting(submissionId, facts, decision.routes, decision.targets)) {
        this.deps.metrics.routedTo(facts, decision.routes, secondsSince(start));
        this.logRouting(log, decision.routes, decision.targets.map((t) => t.target));
      }
      deliveries = await store.deliveries(submissionId);
    }
    // (Also a submission routed at intake whose deliveries may not have been queued: the sweep found it still `received`.)
    const pending = deliveries.filter((d) => d.state === 'pending').map((d) => d.target);
    await this.queueDeliveries(submissionId, pending, formatTraceparent(trace));
    if (status.state === 'received' && deliveries.length) this.markRouted(submissionId);
    return { kind: 'ack' };
  }

  /** Delivery stage: map for the target, hand to its adapter, record the outcome, retry or dead-letter. */
  async deliver(plan: TargetPlan, message: ReceivedMessage): Promise<Disposition> {
    const submissionId = message.body.submissionId!;
    const target = plan.name;
    const trace = childSpan(parseTraceparent(message.body.traceparent));
    const log = this.deps.log.child({ submissionId, target, traceId: trace.traceId });
    // Claimed when it was stored (a slot reserved at intake): taken once, by the run in that slot.
    const key = `${submissionId}/${target}`;
    const claimedAtIntake = message.deliveryCount === 1 ? this.claimedAtIntake.get(key) : undefined;
    this.claimedAtIntake.delete(key);
    const claim = claimedAtIntake ?? await this.claimWithinLimits(plan, submissionId);
    if (claim.kind === 'done') {
      // Finished before — perhaps by a process that died before it queued the status callback: queue it
      // (again); its event id is the same, so a receiver that got it already recognises it.
      await this.notifyOutcome(submissionId, target);
      return { kind: 'ack' };
    }
    if (claim.kind === 'throttled') return { kind: 'retry', delayMs: THROTTLE_WAIT_MS };
    if (claim.kind === 'busy') {
      // Another copy of this message is being delivered (here or on another instance): look again when its lease ends.
      return { kind: 'retry', delayMs: Math.max(0, claim.until.getTime() - Date.now()) + 1000 };
    }
    const { attempt, context } = claim;
    if (attempt > plan.retry.maxAttempts) {
      // Attempts were counted but never finished (the process died during them): do not try forever.
      const detail = `${attempt - 1} attempts started, none finished`;
      const dead: AttemptOutcome = { kind: 'dead', reason: 'max-attempts-exceeded', detail };
      await this.recordOutcome(submissionId, target, attempt, dead, context);
      this.documents.release(submissionId);
      this.countAttempt(context, target, { status: 'retryable', reason: dead.reason, detail }, dead, 0);
      await this.notifyOutcome(submissionId, target);
      log.error({ event: 'dead-lettered', reason: 'max-attempts-exceeded', attempts: attempt - 1 }, 'delivery dead-lettered');
      return { kind: 'dead', reason: 'max-attempts-exceeded' };
    }
    const start = process.hrtime.bigint();
    const outcome = await this.attempt(plan, submissionId, context, attempt, log, formatTraceparent(trace));
    // The back office answered: its slot may serve the next delivery while this outcome is recorded (the
    // delivery's lease, and its queue message, are held until then). Not with `maxInFlight`: the lease
    // still counts there, so the next would only find the target full and wait, holding the slot.
    if (plan.maxInFlight === undefined) message.freeSlot?.();
    const recorded = this.classify(plan, attempt, outcome);
    await this.recordOutcome(submissionId, target, attempt, recorded, context);
    if (recorded.kind !== 'retry') this.documents.release(submissionId);
    this.countAttempt(context, target, outcome, recorded, secondsSince(start));
    if (recorded.kind !== 'retry') await this.notifyOutcome(submissionId, target);
    switch (recorded.kind) {
      case 'delivered':
        log.info({ event: 'delivered', attempt, reference: recorded.reference }, 'delivered');
        return { kind: 'ack' };
      case 'retry': {
        const delayMs = Math.max(0, recorded.nextAttemptAt.getTime() - Date.now());
        log.warn({ event: 'retry', attempt, reason: recorded.reason, detail: recorded.detail, delayMs }, 'delivery failed; will retry');
        return { kind: 'retry', delayMs };
      }
      case 'dead':
        log.error({ event: 'dead-lettered', attempt, reason: recorded.reason, detail: recorded.detail }, 'delivery dead-lettered');
        return { kind: 'dead', reason: recorded.reason };
    }
  }

  /** Records an attempt's outcome (the store sets the submission's state; see Store.recordOutcome). */
  private async recordOutcome(submissionId: string, target: string, attempt: number, outcome: AttemptOutcome, context: ClaimContext): Promise<void> {
    await this.deps.store.recordOutcome(submissionId, target, attempt, outcome, { onlyDelivery: context.deliveries === 1 });
    // The only delivery finished: the submission's state is final, a mark still buffered would change nothing.
    if (context.deliveries === 1 && outcome.kind !== 'retry') this.routedMarks.delete(submissionId);
  }

  /**
   * Waits for the target's rate budget and its in-flight limit (both shared by all instances), then claims.
   * The waiting happens here, holding the queue message, so a backlog drains at the configured pace
   * without cycling through the delay queues; gives up as `throttled` after about a lease time.
   */
  private async claimWithinLimits(plan: TargetPlan, submissionId: string): Promise<Claim> {
    const { store, config } = this.deps;
    const leaseTime = config.raw.delivery.leaseTime;
    const deadline = Date.now() + leaseTime;
    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    for (;;) {
      // A reserved start: wait for it, then start without asking again (one bucket write per attempt).
      const wait = plan.rateLimit ? await store.takeRateToken(plan.name, plan.rateLimit) : 0;
      if (wait > 0) await sleep(wait);
      const claim = await store.claimAttempt(submissionId, plan.name, leaseTime, plan.maxInFlight);
      if (claim.kind !== 'throttled' || Date.now() > deadline) return claim;
      await sleep(THROTTLE_WAIT_MS * (0.5 + Math.random()));
    }
  }

  /** Maps and delivers once. Never throws: every failure becomes an outcome. */
  private async attempt(plan: TargetPlan, submissionId: string, context: ClaimContext, attempt: number, log: Logger, traceparent: string): Promise<DeliveryOutcome> {
    const adapter = this.deps.adapters.get(plan.name)!;
    const { facts } = context;
    let payload: Payload;
    try {
      const source = await this.documents.open(submissionId, async () => (await this.deps.store.payload(submissionId))!);
      const mapped = source.mapped?.get(plan.name);
      if (mapped && 'error' in mapped) throw mapped.error;
      payload = mapped?.payload ?? plan.mapping.run({ raw: source.raw, text: source.text, facts, get document() { return source.document(); } });
    } catch (error) {
      if (error instanceof MappingError) return { status: 'rejected', reason: error.code, detail: `mapping ${plan.mapping.name}: ${error.detail}` };
      return { status: 'retryable', reason: 'mapping-failed', detail: `mapping ${plan.mapping.name} failed unexpectedly` };
    }
    try {
      const attachments = context.attachments ? await this.deliveryAttachments(submissionId) : [];
      return await adapter.deliver({ submissionId, target: plan.name, idempotencyKey: `${submissionId}/${plan.name}`, attempt, payload, attachments, facts, log, traceparent });
    } catch (error) {
      log.error({ err: error }, 'adapter threw instead of returning an outcome');
      return { status: 'retryable', reason: 'adapter-error', detail: `adapter ${plan.adapter.name} threw ${(error as Error).name}` };
    }
  }

  /** The submission's attachments as the adapter contract has them: references whose bytes open as streams. */
  private async deliveryAttachments(submissionId: string): Promise<DeliveryAttachment[]> {
    const { payloads } = this.deps;
    return (await this.deps.store.attachments(submissionId)).map(({ key, role: _role, ...reference }) => ({ ...reference, open: () => payloads.open(key) }));
  }

  private countAttempt(context: ClaimContext, target: string, outcome: DeliveryOutcome, recorded: AttemptOutcome, seconds: number): void {
    const { metrics } = this.deps;
    const kind = recorded.kind === 'delivered' ? 'delivered' : recorded.kind === 'retry' ? 'retried' : outcome.status === 'rejected' ? 'rejected' : 'dead';
    metrics.attempted(context.facts, context.route, target, kind, recorded.kind === 'delivered' ? '' : recorded.reason, seconds);
    if (recorded.kind === 'delivered') metrics.deliveredAfter(context.facts, target, (Date.now() - Date.parse(context.receivedAt)) / 1000);
  }

  /** Turns an adapter outcome into what is recorded: retryable becomes dead once the attempts are used up. */
  private classify(plan: TargetPlan, attempt: number, outcome: DeliveryOutcome): AttemptOutcome {
    if (outcome.status === 'delivered') return { kind: 'delivered', reference: outcome.reference, detail: outcome.detail };
    if (outcome.status === 'rejected') return { kind: 'dead', reason: outcome.reason, detail: outcome.detail };
    if (attempt >= plan.retry.maxAttempts) {
      return { kind: 'dead', reason: 'max-attempts-exceeded', detail: `${attempt} attempts; last: ${outcome.reason} (${outcome.detail})` };
    }
    const delay = Math.min(plan.retry.maxDelay, Math.max(backoffDelay(plan.retry, attempt), outcome.retryAfterMs ?? 0));
    return { kind: 'retry', reason: outcome.reason, detail: outcome.detail, nextAttemptAt: new Date(Date.now() + delay) };
  }
}
