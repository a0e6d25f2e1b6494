// backoffDelay with an injected random source: exponential growth, the cap, equal-jitter bounds.
import type { RetryPolicy } from '../config/schema';
import { backoffDelay } from './backoff';

const policy: RetryPolicy = { maxAttempts: 10, initialDelay: 1000, maxDelay: 30_000, multiplier: 2 };
const full = () => 1;
const half = () => 0;

describe('backoffDelay', () => {
  it('grows exponentially from initialDelay (random 1: the full delay)', () => {
    expect([1, 2, 3, 4, 5].map((attempt) => backoffDelay(policy, attempt, full))).toEqual([1000, 2000, 4000, 8000, 16_000]);
  });

  it('uses the multiplier', () => {
    const triple = { ...policy, multiplier: 3 };
    expect([1, 2, 3].map((attempt) => backoffDelay(triple, attempt, full))).toEqual([1000, 3000, 9000]);
    const flat = { ...policy, multiplier: 1 };
    expect([1, 5, 9].map((attempt) => backoffDelay(flat, attempt, full))).toEqual([1000, 1000, 1000]);
  });

  it('is capped at maxDelay', () => {
    expect(backoffDelay(policy, 6, full)).toBe(30_000); // 32 000 uncapped
    expect(backoffDelay(policy, 40, full)).toBe(30_000);
    expect(backoffDelay(policy, 6, half)).toBe(15_000);
  });

  it('random 0 gives half the delay, random 1 the full delay', () => {
    expect(backoffDelay(policy, 3, half)).toBe(2000);
    expect(backoffDelay(policy, 3, full)).toBe(4000);
    expect(backoffDelay(policy, 1, half)).toBe(500);
  });

  it('random values in between lie between the bounds, linearly', () => {
    expect(backoffDelay(policy, 3, () => 0.5)).toBe(3000);
    expect(backoffDelay(policy, 3, () => 0.25)).toBe(2500);
    for (const r of [0.01, 0.3, 0.77, 0.999]) {
      const delay = backoffDelay(policy, 4, () => r);
      expect(delay).toBeGreaterThanOrEqual(4000);
      expect(delay).toBeLessThanOrEqual(8000);
    }
  });

  it('rounds to whole milliseconds', () => {
    expect(backoffDelay({ ...policy, initialDelay: 333 }, 1, () => 0.5)).toBe(250); // 166.5 + 83.25
    expect(backoffDelay({ ...policy, initialDelay: 3 }, 1, half)).toBe(2); // 1.5
  });

  it('treats attempt 0 like attempt 1', () => {
    expect(backoffDelay(policy, 0, full)).toBe(1000);
  });

  it('uses Math.random by default and stays within the bounds', () => {
    for (let i = 0; i < 50; i++) {
      const delay = backoffDelay(policy, 2);
      expect(delay).toBeGreaterThanOrEqual(1000);
      expect(delay).toBeLessThanOrEqual(2000);
    }
  });
});
