// Callback signatures: what the form service checks; tampering, stale and replayed callbacks fail.
import { EVENT_HEADER, SIGNATURE_HEADER, signCallback, TIMESTAMP_HEADER, verifyCallback } from './signature';

const SECRET = 'shared-secret-for-tests';
const body = JSON.stringify({ event: 'delivered', submissionId: 's-1' });
const now = Date.parse('2026-11-26T10:00:00Z');
const t = Math.floor(now / 1000);
const headers = (overrides: Record<string, string> = {}) => ({ [SIGNATURE_HEADER]: signCallback(SECRET, t, body), [TIMESTAMP_HEADER]: String(t), [EVENT_HEADER]: 'e-1', ...overrides });

test('the signature is HMAC-SHA512 over timestamp.body, as hex with a version prefix', () => {
  expect(signCallback(SECRET, t, body)).toMatch(/^v1=[0-9a-f]{128}$/);
  expect(verifyCallback(SECRET, headers(), body, { now })).toEqual({ ok: true, eventId: 'e-1' });
});

test('a changed body, timestamp or secret fails', () => {
  expect(verifyCallback(SECRET, headers(), body.replace('delivered', 'rejected'), { now })).toEqual({ ok: false, reason: 'bad-signature' });
  expect(verifyCallback(SECRET, headers({ [TIMESTAMP_HEADER]: String(t + 1) }), body, { now })).toEqual({ ok: false, reason: 'bad-signature' });
  expect(verifyCallback('other', headers(), body, { now })).toEqual({ ok: false, reason: 'bad-signature' });
  expect(verifyCallback(SECRET, { [SIGNATURE_HEADER]: 'v1=00' }, body, { now })).toEqual({ ok: false, reason: 'missing-headers' });
});

test('a callback recorded and replayed later is stale; replayed in time, its event id is known', () => {
  expect(verifyCallback(SECRET, headers(), body, { now: now + 301_000 })).toEqual({ ok: false, reason: 'stale-timestamp' });
  const seen = new Set<string>();
  expect(verifyCallback(SECRET, headers(), body, { now, seen }).ok).toBe(true);
  expect(verifyCallback(SECRET, headers(), body, { now: now + 5000, seen })).toEqual({ ok: false, reason: 'replayed' });
});
