// Token bucket arithmetic for a target's rate limit, shared by the stores that keep the bucket (in memory
// for the embedded mode, in PostgreSQL across instances).

export interface RateLimit {
  /** Attempts started per second, on average. */
  perSecond: number;
  /** Attempts that may start at once after a quiet period. */
  burst: number;
}

/**
 * Refills `tokens` for `elapsedMs` and tries to take one. Returns the tokens left and, when none could be
 * taken, how long until one is there.
 */
export function takeToken(tokens: number, elapsedMs: number, limit: RateLimit): { tokens: number; waitMs: number } {
  const available = Math.min(limit.burst, tokens + (Math.max(0, elapsedMs) / 1000) * limit.perSecond);
  if (available >= 1) return { tokens: available - 1, waitMs: 0 };
  return { tokens: available, waitMs: Math.max(1, Math.ceil(((1 - available) / limit.perSecond) * 1000)) };
}
