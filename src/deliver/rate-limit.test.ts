// The token bucket: burst first, then the configured rate; every caller reserves its slot.
import { takeToken } from './rate-limit';

const limit = { perSecond: 10, burst: 3 };

test('a full bucket gives its burst at once, then asks to wait 1/rate', () => {
  let tokens = 3;
  for (let i = 0; i < 3; i += 1) {
    const taken = takeToken(tokens, 0, limit);
    expect(taken.waitMs).toBe(0);
    tokens = taken.tokens;
  }
  expect(takeToken(tokens, 0, limit)).toEqual({ tokens: -1, waitMs: 100 });
});

test('callers arriving at once reserve consecutive slots, 1/rate apart, and each is told its own wait', () => {
  let tokens = 1;
  const waits: number[] = [];
  for (let i = 0; i < 4; i += 1) {
    const taken = takeToken(tokens, 0, { perSecond: 10, burst: 1 });
    waits.push(taken.waitMs);
    tokens = taken.tokens;
  }
  expect(waits).toEqual([0, 100, 200, 300]);
  // 250 ms later two slots have been used up by their holders; the next caller comes after the reserved ones.
  expect(takeToken(tokens, 250, { perSecond: 10, burst: 1 }).waitMs).toBe(150);
});

test('refills at the rate, never above the burst', () => {
  expect(takeToken(0, 50, limit)).toEqual({ tokens: -0.5, waitMs: 50 });
  expect(takeToken(0, 100, limit).waitMs).toBe(0);
  expect(takeToken(0, 60_000, limit)).toEqual({ tokens: 2, waitMs: 0 });
});

test('a clock going backwards refills nothing', () => {
  expect(takeToken(0.5, -1000, limit)).toEqual({ tokens: -0.5, waitMs: 50 });
});
