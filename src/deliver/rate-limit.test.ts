// The token bucket: burst first, then the configured rate.
import { takeToken } from './rate-limit';

const limit = { perSecond: 10, burst: 3 };

test('a full bucket gives its burst at once, then asks to wait 1/rate', () => {
  let tokens = 3;
  for (let i = 0; i < 3; i += 1) {
    const taken = takeToken(tokens, 0, limit);
    expect(taken.waitMs).toBe(0);
    tokens = taken.tokens;
  }
  expect(takeToken(tokens, 0, limit)).toEqual({ tokens: 0, waitMs: 100 });
});

test('refills at the rate, never above the burst', () => {
  expect(takeToken(0, 50, limit)).toEqual({ tokens: 0.5, waitMs: 50 });
  expect(takeToken(0, 100, limit).waitMs).toBe(0);
  expect(takeToken(0, 60_000, limit)).toEqual({ tokens: 2, waitMs: 0 });
});

test('a clock going backwards refills nothing', () => {
  expect(takeToken(0.5, -1000, limit)).toEqual({ tokens: 0.5, waitMs: 50 });
});
