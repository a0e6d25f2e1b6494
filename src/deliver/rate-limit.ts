// Token bucket arithmetic for a target's rate limit, shared by the stores that keep the bucket (in memory
// for the embedded mode, in PostgreSQL across instances).

export interface RateLimit {
  /** Attempts started per second, on average. */
  perSecond: number;
  /** Attempts that may start at once after a quiet period. */
  burst: number;
}

/**
 * Refills `tokens` for `elapsedMs` and reserves the next start: one token is always taken, the bucket may
 * go below zero, and the caller is told how long until its token is there (0: at once). Reserving, rather
 * than answering "try again later", gives every waiting caller its own slot 1/rate after the previous
 * one: no slot is lost to a caller that wakes up late (with burst 1 the bucket cannot hold a token for
 * it), and each attempt costs one write to the bucket however long it waits.
 */
export function takeToken(tokens: number, elapsedMs: number, limit: RateLimit): { tokens: number; waitMs: number } {
  const available = Math.min(limit.burst, tokens + (Math.max(0, elapsedMs) / 1000) * limit.perSecond);
  const left = available - 1;
  return { tokens: left, waitMs: reservationWait(left, limit) };
}

/** How long until a reserved token is there, given what the bucket holds after taking it (below zero: reserved ahead). */
export function reservationWait(left: number, limit: RateLimit): number {
  return left >= 0 ? 0 : Math.ceil((-left / limit.perSecond) * 1000);
}
