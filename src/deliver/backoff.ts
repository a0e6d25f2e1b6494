// Exponential backoff with jitter for delivery retries. Computing the delay is all there is to it: the
// durable queue does the waiting, so no in-process retry library fits (the README's design notes say why).
import type { RetryPolicy } from '../config/schema';

/**
 * Delay before attempt `attempt + 1` after `attempt` failed: initialDelay · multiplier^(attempt-1),
 * capped at maxDelay, then "equal jitter" (half fixed, half random) so that a recovering back office is
 * not hit by every waiting delivery at the same instant.
 */
export function backoffDelay(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const exponential = policy.initialDelay * policy.multiplier ** Math.max(0, attempt - 1);
  const capped = Math.min(policy.maxDelay, exponential);
  return Math.round(capped / 2 + (random() * capped) / 2);
}
