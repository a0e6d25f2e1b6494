// Prometheus metrics (prom-client), one registry per router. Labels are configuration names and keys only:
// tenant (an AGS the configuration routes; anything else counts as `other`), route, target, reason, source.
// Never an id, never content — label values an outsider could choose would also let them grow the series.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Facts } from './envelope/envelope';
import { toAgs } from './route/keys';
import { tenantOf } from './store/operations';

/** Seconds: from a few milliseconds (intake, routing) to the hours a retried delivery may take. */
const STEP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const END_TO_END_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600];

export type DeliveryMetricOutcome = 'delivered' | 'retried' | 'rejected' | 'dead';

export interface MetricsOptions {
  /** AGS the configuration routes by; other tenants are labelled `other`. */
  tenants: Iterable<string>;
  /** Read at scrape time: messages waiting per queue (transport), submissions per state (store). */
  collect: () => Promise<{ queues: Record<string, number>; submissions: Record<string, number>; storedBytes: { payloads: number; attachments: number } }>;
}

export class Metrics {
  readonly registry = new Registry();
  private readonly tenants: ReadonlySet<string>;
  private readonly received: Counter<'source'>;
  private readonly refused: Counter<'source' | 'reason'>;
  private readonly routed: Counter<'tenant' | 'route'>;
  private readonly parked: Counter<'tenant'>;
  private readonly deliveries: Counter<'tenant' | 'route' | 'target' | 'outcome' | 'reason'>;
  private readonly step: Histogram<'step' | 'target'>;
  private readonly endToEnd: Histogram<'tenant' | 'target'>;

  constructor(options: MetricsOptions) {
    this.tenants = new Set([...options.tenants].map((t) => toAgs(t) ?? t));
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'antragsrouter_process_' });
    this.received = new Counter({ name: 'antragsrouter_submissions_received_total', help: 'Submissions accepted (durable), by intake', labelNames: ['source'], registers });
    this.refused = new Counter({ name: 'antragsrouter_submissions_refused_total', help: 'Submissions refused at intake, by reason code', labelNames: ['source', 'reason'], registers });
    this.routed = new Counter({ name: 'antragsrouter_submissions_routed_total', help: 'Routes matched by submissions (a fan-out counts each route)', labelNames: ['tenant', 'route'], registers });
    this.parked = new Counter({ name: 'antragsrouter_submissions_parked_total', help: 'Submissions no route matched', labelNames: ['tenant'], registers });
    this.deliveries = new Counter({
      name: 'antragsrouter_deliveries_total',
      help: 'Delivery attempts by outcome: delivered, retried (will be tried again), rejected (permanent, dead letter), dead (attempts used up)',
      labelNames: ['tenant', 'route', 'target', 'outcome', 'reason'],
      registers,
    });
    this.step = new Histogram({ name: 'antragsrouter_step_duration_seconds', help: 'Time per pipeline step: intake (check and store), route, deliver (one attempt)', labelNames: ['step', 'target'], buckets: STEP_BUCKETS, registers });
    this.endToEnd = new Histogram({ name: 'antragsrouter_end_to_end_seconds', help: 'From acceptance to the back office confirming the delivery', labelNames: ['tenant', 'target'], buckets: END_TO_END_BUCKETS, registers });
    // One collection per scrape feeds every gauge (prom-client calls each gauge's collect before reading it).
    const collect = () => refresh();
    const queueDepth = new Gauge({ name: 'antragsrouter_queue_depth', help: 'Messages waiting per queue (delayed: waiting for a retry; dead: transport dead letters)', labelNames: ['queue'], registers, collect });
    const submissions = new Gauge({ name: 'antragsrouter_submissions', help: 'Submissions in the store by state', labelNames: ['state'], registers, collect });
    const stored = new Gauge({ name: 'antragsrouter_payload_store_bytes', help: 'Content held: application payloads not yet deleted by retention, and attachments', labelNames: ['kind'], registers, collect });
    const up = new Gauge({ name: 'antragsrouter_backbone_up', help: '1 when the transport and store answered the last scrape', registers, collect });
    let pending: Promise<void> | undefined;
    const refresh = () => (pending ??= (async () => {
      try {
        const state = await options.collect();
        queueDepth.reset();
        for (const [queue, n] of Object.entries(state.queues)) queueDepth.set({ queue }, n);
        for (const [state_, n] of Object.entries(state.submissions)) submissions.set({ state: state_ }, n);
        stored.set({ kind: 'payloads' }, state.storedBytes.payloads);
        stored.set({ kind: 'attachments' }, state.storedBytes.attachments);
        up.set(1);
      } catch {
        up.set(0);
      } finally {
        pending = undefined;
      }
    })());
  }

  /** The tenant label of a submission: its AGS if the configuration routes it, else `other`. */
  tenant(facts: Facts): string {
    const ags = tenantOf(facts);
    if (ags === undefined) return 'unknown';
    return this.tenants.has(ags) ? ags : 'other';
  }

  accepted(source: string, seconds: number): void {
    this.received.inc({ source });
    this.step.observe({ step: 'intake', target: '' }, seconds);
  }

  refusedAtIntake(source: string, reason: string): void {
    this.refused.inc({ source, reason });
  }

  routedTo(facts: Facts, routes: string[], seconds: number): void {
    const tenant = this.tenant(facts);
    if (routes.length === 0) this.parked.inc({ tenant });
    for (const route of routes) this.routed.inc({ tenant, route });
    this.step.observe({ step: 'route', target: '' }, seconds);
  }

  attempted(facts: Facts, route: string, target: string, outcome: DeliveryMetricOutcome, reason: string, seconds: number): void {
    this.deliveries.inc({ tenant: this.tenant(facts), route, target, outcome, reason });
    this.step.observe({ step: 'deliver', target }, seconds);
  }

  deliveredAfter(facts: Facts, target: string, seconds: number): void {
    this.endToEnd.observe({ tenant: this.tenant(facts), target }, seconds);
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }
}
