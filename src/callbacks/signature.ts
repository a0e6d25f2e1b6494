// Signing of status callbacks: HMAC-SHA512 over `<timestamp>.<body>` with the client's shared secret.
// The receiver checks the signature, refuses timestamps outside a tolerance (so a recorded callback
// cannot be replayed later) and drops event ids it has seen (so one replayed in time changes nothing).
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'x-antragsrouter-signature';
export const TIMESTAMP_HEADER = 'x-antragsrouter-timestamp';
export const EVENT_HEADER = 'x-antragsrouter-event-id';

/** `v1=<hex>`: HMAC-SHA512 of `${timestamp}.${body}`. */
export function signCallback(secret: string | Buffer, timestamp: number, body: string | Buffer): string {
  return `v1=${createHmac('sha512', secret).update(`${timestamp}.`).update(body).digest('hex')}`;
}

export type VerifyResult = { ok: true; eventId: string } | { ok: false; reason: 'missing-headers' | 'bad-signature' | 'stale-timestamp' | 'replayed' };

/**
 * Verifies a callback as the form service should: signature, timestamp within `toleranceSeconds` of
 * `now`, event id not seen before (pass a store of seen ids that outlives the tolerance window).
 */
export function verifyCallback(
  secret: string | Buffer,
  headers: Record<string, string | undefined>,
  body: string | Buffer,
  options: { toleranceSeconds?: number; now?: number; seen?: Set<string> } = {},
): VerifyResult {
  const signature = headers[SIGNATURE_HEADER];
  const timestamp = Number(headers[TIMESTAMP_HEADER]);
  const eventId = headers[EVENT_HEADER];
  if (!signature || !eventId || !Number.isInteger(timestamp)) return { ok: false, reason: 'missing-headers' };
  const expected = Buffer.from(signCallback(secret, timestamp, body));
  const given = Buffer.from(signature);
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) return { ok: false, reason: 'bad-signature' };
  const now = Math.floor((options.now ?? Date.now()) / 1000);
  if (Math.abs(now - timestamp) > (options.toleranceSeconds ?? 300)) return { ok: false, reason: 'stale-timestamp' };
  if (options.seen) {
    if (options.seen.has(eventId)) return { ok: false, reason: 'replayed' };
    options.seen.add(eventId);
  }
  return { ok: true, eventId };
}
