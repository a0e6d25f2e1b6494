// Rules both stores share: a submission's tenant, its state from its deliveries, the events they record.
import type { Facts } from '../envelope/envelope';
import { toAgs } from '../route/keys';
import type { RoutedTarget } from '../route/router';
import type { DeliveryState, HistoryEvent, Receipt, SubmissionState } from './store';

/** The AGS a submission belongs to, from its `ags` or `ars` fact. */
export function tenantOf(facts: Facts): string | undefined {
  for (const key of ['ags', 'ars'] as const) {
    const value = facts[key];
    const ags = typeof value === 'string' ? toAgs(value.trim()) : undefined;
    if (ags) return ags;
  }
  return undefined;
}

/**
 * A routed submission's state from the number of deliveries per state: still `routed` while any is pending,
 * `failed` while any is dead (until an operator replays or discards it), `delivered` once every delivery
 * is delivered or discarded with at least one delivered, `discarded` when an operator gave all of them up.
 */
export function finalState(counts: Partial<Record<DeliveryState, number>>): SubmissionState {
  if (counts.pending) return 'routed';
  if (counts.dead) return 'failed';
  if (counts.delivered) return 'delivered';
  return 'discarded';
}

/** The receipt as stored: only its defined fields, in a fixed order (so an identical one compares equal). */
export const receiptRecord = (receipt: Receipt): Receipt => ({
  status: receipt.status,
  ...(receipt.fileNumber !== undefined ? { fileNumber: receipt.fileNumber } : {}),
  ...(receipt.reason !== undefined ? { reason: receipt.reason } : {}),
});

export const describeReceipt = (receipt: Receipt, actor: string): string =>
  `${receipt.status}${receipt.fileNumber ? `, file number ${receipt.fileNumber}` : ''} (reported by ${actor})`;

/** The history event of a routing decision: `routed` with routes and targets, or `parked` without a route. */
export const routingEvent = (routes: string[], targets: RoutedTarget[]): Omit<HistoryEvent, 'at'> =>
  targets.length === 0
    ? { event: 'parked', reason: 'no-route', detail: 'no route matched' }
    : { event: 'routed', detail: `routes ${routes.join(', ')}; targets ${targets.map((t) => t.target).join(', ')}` };
