// The adapter conformance suite: one jest `describe` that every adapter's test runs against the adapter's
// real counterpart (a back office on loopback: HTTP server, directory, SMTP server, SFTP server, broker).
//
// Usage, in `adapters/<name>/<name>.test.ts`:
//
//   import { describeAdapterConformance, type ConformanceCounterpart } from '../../src/testkit/conformance';
//   import myAdapter from './index';
//
//   const counterpart: ConformanceCounterpart = {
//     async start() { /* start the back office */ },
//     async stop() { /* stop it */ },
//     async behave(mode) { /* 'accept' | 'fail' | 'reject' | 'down': how it answers from now on */ },
//     async received() { /* what it got since reset(), as ReceivedDelivery[] */ },
//     async reset() { /* forget what it got */ },
//     canReject: true,              // false if this back office has no permanent refusal (e.g. a directory)
//     secrets: ['s3cret'],          // credential values that must never appear in any log line
//   };
//   describeAdapterConformance({ definition: myAdapter, config: () => ({ url: server.url }), counterpart });
//
// `config` is the raw `targets.<t>.config` (before the adapter's schema), or a function giving it, called
// after `counterpart.start()` (so it can name a port chosen then). The suite parses it with the adapter's
// configSchema, creates a fresh adapter per test with a capturing logger, and checks:
//   lifecycle        connect → deliver → check → close; close twice does not throw
//   outcomes         accept → delivered; fail → retryable; reject → rejected; each with a reason code and
//                    detail; recovery after a failure without reconnecting
//   idempotency      the same request twice reaches the back office with one recognisable key; another
//                    submission's key differs (ReceivedDelivery.key: the Idempotency-Key header, a file
//                    name, a message id, ...: whatever the back office would use to spot a repeat)
//   attachments      a file, a small binary and a generated 20 MiB stream arrive with the same names,
//                    sizes and SHA-256 (computed by the counterpart while receiving); no attachments → none;
//                    an attachment whose open() fails → retryable, and the back office has no delivery;
//                    with the optional counterpart.holdAfter: while the back office holds after 256 KiB,
//                    the adapter has read less than half of the large attachment (streaming, not buffering)
//   check            ok while the back office is up, not ok (and no throw) while it is down, ok again after
//   logs             no payload content and no secret value in any log line the adapter wrote
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import type { Adapter, AdapterDefinition, DeliveryAttachment, DeliveryOutcome, DeliveryRequest } from '../deliver/adapter';
import { bufferAttachment, fileAttachment, generatedAttachment } from './attachments';

/** How the back office answers from now on: take it, fail for now (e.g. 503, disk full), refuse for good, or be unreachable. */
export type CounterpartMode = 'accept' | 'fail' | 'reject' | 'down';

/** One attachment as the back office received it; `sha256` (lower-case hex) computed from the received bytes. */
export interface ReceivedAttachment {
  name: string;
  size: number;
  sha256: string;
}

/** One delivery as the back office received it. */
export interface ReceivedDelivery {
  /** What the back office would recognise a repeat by (idempotency key, file name, message id); undefined if nothing. */
  key: string | undefined;
  /** The payload bytes as received. */
  payload: Buffer;
  attachments: ReceivedAttachment[];
}

/** The adapter's real back office, driven by the suite. */
export interface ConformanceCounterpart {
  /** Starts the back office (once, before all tests). */
  start(): Promise<void>;
  /** Stops it (once, after all tests). */
  stop(): Promise<void>;
  behave(mode: CounterpartMode): Promise<void> | void;
  /** Everything received since the last reset(), in arrival order (or any order: the suite does not rely on it). */
  received(): Promise<ReceivedDelivery[]>;
  /** Forgets what was received and goes back to 'accept'. Called before each test. */
  reset(): Promise<void> | void;
  /** False when the back office cannot refuse permanently (then the 'reject' test is skipped). Default true. */
  canReject?: boolean;
  /** Credential values (passwords, tokens) that must not appear in any log line. */
  secrets?: readonly string[];
  /**
   * Optional, for the read-ahead test: stop reading the next delivery after about `bytes` until release();
   * `reached` resolves once it holds. Without it that test is skipped (e.g. for a directory).
   */
  holdAfter?(bytes: number): Promise<{ reached: Promise<void>; release: () => void }>;
}

export interface ConformanceOptions {
  /** The adapter under test. */
  definition: AdapterDefinition<never> | AdapterDefinition<unknown>;
  /** Raw adapter configuration, or a function giving it (called after the counterpart started). */
  config: unknown;
  counterpart: ConformanceCounterpart;
  /** Told apart in test names when one adapter runs the suite in several configurations, e.g. `mTLS + OAuth2`. */
  label?: string;
  /** Size of the large generated attachment; default 20 MiB. */
  largeAttachmentBytes?: number;
}

/** Personal content in the test payload: it must never reach a log line. */
const PERSONAL = 'Erika Mustermann, Heidestraße 17, 51147 Köln';
const REASON = /^[a-z0-9]+(-[a-z0-9]+)*$/;

/** Declares the conformance tests for one adapter (call at the top level of a jest test file). */
export function describeAdapterConformance(options: ConformanceOptions): void {
  const { definition, counterpart } = options;
  const definitionUnknown = definition as AdapterDefinition<unknown>;
  const logLines: string[] = [];
  const log = pino({ level: 'debug' }, new Writable({
    write(chunk: Buffer, _encoding, callback) {
      logLines.push(chunk.toString('utf8'));
      callback();
    },
  }));
  let config: unknown;
  let scratch: string;
  const open: Adapter[] = [];

  async function connected(): Promise<Adapter> {
    const adapter = definitionUnknown.create(config, { target: 'conformance', log: log.child({ target: 'conformance' }) });
    open.push(adapter);
    await adapter.connect();
    return adapter;
  }

  let serial = 0;
  function request(overrides: Partial<DeliveryRequest> = {}): DeliveryRequest {
    serial += 1;
    const submissionId = `0193a7c2-8e1f-7d3a-b5c4-${String(serial).padStart(12, '0')}`;
    const body = Buffer.from(`<?xml version="1.0" encoding="UTF-8"?><antrag nr="${serial}"><name>${PERSONAL}</name></antrag>`, 'utf8');
    return {
      submissionId,
      target: 'conformance',
      idempotencyKey: `${submissionId}/conformance`,
      attempt: 1,
      payload: { body, contentType: 'application/xml; charset=utf-8', extension: 'xml' },
      attachments: [],
      facts: { messageType: '0200', messageUuid: `bd3e54e9-3338-413b-8b42-${String(serial).padStart(12, '0')}` },
      log: log.child({ submissionId, target: 'conformance' }),
      ...overrides,
    };
  }

  const expectWellFormed = (outcome: DeliveryOutcome) => {
    expect(['delivered', 'retryable', 'rejected']).toContain(outcome.status);
    if (outcome.status === 'delivered') {
      if (outcome.reference !== undefined) expect(typeof outcome.reference).toBe('string');
    } else {
      expect(outcome.reason).toMatch(REASON);
      expect(typeof outcome.detail).toBe('string');
      expect(outcome.detail.length).toBeGreaterThan(0);
    }
  };

  /** Asserts the outcome's status, showing the whole outcome (reason, detail) when it differs. */
  const expectStatus = (outcome: DeliveryOutcome, status: DeliveryOutcome['status']) => {
    if (outcome.status !== status) throw new Error(`expected ${status}, the adapter returned ${JSON.stringify(outcome)}`);
  };

  const sameBytes = (a: Buffer, b: Buffer) => a.length === b.length && a.equals(b);
  const byName = (items: readonly { name: string }[]) => [...items].sort((a, b) => a.name.localeCompare(b.name));

  describe(`adapter conformance: ${definition.name}${options.label ? ` (${options.label})` : ''}`, () => {
    beforeAll(async () => {
      scratch = mkdtempSync(path.join(os.tmpdir(), 'conformance-'));
      await counterpart.start();
      const raw = typeof options.config === 'function' ? await (options.config as () => unknown)() : options.config;
      const parsed = definitionUnknown.configSchema.safeParse(raw);
      if (!parsed.success) throw new Error(`the adapter's configSchema refuses the test configuration: ${parsed.error.message}`);
      config = parsed.data;
    });
    afterAll(async () => {
      await counterpart.stop();
      rmSync(scratch, { recursive: true, force: true });
    });
    beforeEach(async () => {
      await counterpart.reset();
    });
    afterEach(async () => {
      await Promise.allSettled(open.splice(0).map((adapter) => adapter.close()));
    });

    it('definition: name, summary, configSchema, defaultConcurrency', () => {
      expect(definition.name).toMatch(/^[a-z0-9][a-z0-9_-]*$/);
      expect(definition.summary.length).toBeGreaterThan(0);
      expect(typeof definition.configSchema.safeParse).toBe('function');
      expect(Number.isInteger(definition.defaultConcurrency) && definition.defaultConcurrency >= 1).toBe(true);
    });

    describe('lifecycle', () => {
      it('connect → deliver → check → close, and close again', async () => {
        const adapter = await connected();
        const sent = request();
        const outcome = await adapter.deliver(sent);
        expectWellFormed(outcome);
        expectStatus(outcome, 'delivered');
        expect(await adapter.check()).toMatchObject({ ok: true });
        await adapter.close();
        await expect(adapter.close()).resolves.toBeUndefined();
        const received = await counterpart.received();
        expect(received).toHaveLength(1);
        expect(sameBytes(received[0]!.payload, sent.payload.body)).toBe(true);
      });

      it('connect then close without any delivery', async () => {
        const adapter = await connected();
        await expect(adapter.close()).resolves.toBeUndefined();
        expect(await counterpart.received()).toEqual([]);
      });

      it('several deliveries at once on one adapter', async () => {
        const adapter = await connected();
        const requests = Array.from({ length: Math.min(4, definition.defaultConcurrency + 1) }, () => request());
        const outcomes = await Promise.all(requests.map((r) => adapter.deliver(r)));
        expect(outcomes.map((o) => o.status)).toEqual(requests.map(() => 'delivered'));
        const received = await counterpart.received();
        expect(received).toHaveLength(requests.length);
        for (const sent of requests) expect(received.some((r) => sameBytes(r.payload, sent.payload.body))).toBe(true);
      });
    });

    describe('outcomes', () => {
      it('accept → delivered', async () => {
        const adapter = await connected();
        const outcome = await adapter.deliver(request());
        expectWellFormed(outcome);
        expectStatus(outcome, 'delivered');
      });

      it('fail → retryable with a reason code, then delivered once the back office recovers (no reconnect)', async () => {
        const adapter = await connected();
        await counterpart.behave('fail');
        const sent = request();
        const failed = await adapter.deliver(sent);
        expectWellFormed(failed);
        expectStatus(failed, 'retryable');
        await counterpart.behave('accept');
        const retried = await adapter.deliver({ ...sent, attempt: 2 });
        expectStatus(retried, 'delivered');
        const received = await counterpart.received();
        expect(received.filter((r) => sameBytes(r.payload, sent.payload.body)).length).toBeGreaterThanOrEqual(1);
      });

      (counterpart.canReject === false ? it.skip : it)('reject → rejected with a reason code', async () => {
        const adapter = await connected();
        await counterpart.behave('reject');
        const outcome = await adapter.deliver(request());
        expectWellFormed(outcome);
        expectStatus(outcome, 'rejected');
      });

      it('down → retryable', async () => {
        const adapter = await connected();
        await counterpart.behave('down');
        const outcome = await adapter.deliver(request());
        expectWellFormed(outcome);
        expectStatus(outcome, 'retryable');
        await counterpart.behave('accept');
      });
    });

    describe('idempotency', () => {
      it('the same request twice carries one key the back office can recognise; another submission another key', async () => {
        const adapter = await connected();
        const first = request();
        const other = request();
        expectStatus(await adapter.deliver(first), 'delivered');
        expectStatus(await adapter.deliver({ ...first, attempt: 2 }), 'delivered');
        expectStatus(await adapter.deliver(other), 'delivered');
        const received = await counterpart.received();
        const keysOf = (sent: DeliveryRequest) => new Set(received.filter((r) => sameBytes(r.payload, sent.payload.body)).map((r) => r.key));
        const firstKeys = keysOf(first);
        const otherKeys = keysOf(other);
        expect(firstKeys.size).toBe(1);
        expect(otherKeys.size).toBe(1);
        const [firstKey] = firstKeys;
        const [otherKey] = otherKeys;
        expect(typeof firstKey).toBe('string');
        expect(typeof otherKey).toBe('string');
        expect(firstKey).not.toBe(otherKey);
      });
    });

    describe('attachments', () => {
      it('a file, a small binary and a large generated stream arrive with the same names, sizes and SHA-256', async () => {
        const pdf = path.join(scratch, 'lageplan.pdf');
        writeFileSync(pdf, Buffer.concat([Buffer.from('%PDF-1.7\n'), Buffer.alloc(3000, 0xe2), Buffer.from('\n%%EOF\n')]));
        const large = generatedAttachment('a3', 'bauzeichnung.tif', options.largeAttachmentBytes ?? 20 * 1024 * 1024, 'image/tiff');
        const attachments: DeliveryAttachment[] = [
          fileAttachment('a1', 'lageplan.pdf', 'application/pdf', pdf),
          bufferAttachment('a2', 'vollmacht.bin', 'application/octet-stream', Buffer.from([0, 1, 2, 0xff, 0xfe, 13, 10, 45, 45])),
          large,
        ];
        const adapter = await connected();
        const sent = request({ attachments });
        const outcome = await adapter.deliver(sent);
        expectWellFormed(outcome);
        expectStatus(outcome, 'delivered');
        expect(large.opened()).toBeGreaterThanOrEqual(1);
        const received = (await counterpart.received()).filter((r) => sameBytes(r.payload, sent.payload.body));
        expect(received).toHaveLength(1);
        expect(byName(received[0]!.attachments)).toEqual(byName(attachments.map(({ name, size, sha256 }) => ({ name, size, sha256 }))));
      });

      (counterpart.holdAfter ? it : it.skip)('streams: while the back office holds, the adapter does not read the large attachment ahead', async () => {
        const size = options.largeAttachmentBytes ?? 20 * 1024 * 1024;
        const large = generatedAttachment('a1', 'scan.tif', size, 'image/tiff');
        const adapter = await connected();
        const hold = await counterpart.holdAfter!(256 * 1024);
        const outcome = adapter.deliver(request({ attachments: [large] }));
        let timer: NodeJS.Timeout | undefined;
        try {
          await Promise.race([hold.reached, new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error('the back office never received 256 KiB')), 15_000);
          })]);
          await new Promise((resolve) => setTimeout(resolve, 500));
          // What the adapter may read ahead is bounded by socket and stream buffers (a few MiB on loopback, as
          // kernels tune them), not by the attachment; a buffering adapter has read all of it.
          expect(large.produced()).toBeLessThan(size / 2);
        } finally {
          clearTimeout(timer);
          hold.release();
        }
        expectStatus(await outcome, 'delivered');
        expect(large.produced()).toBe(size);
      });

      it('an attachment that cannot be opened: retryable (or a throw), and nothing arrives as a complete delivery', async () => {
        const broken: DeliveryAttachment = {
          ...bufferAttachment('a2', 'fehlt.pdf', 'application/pdf', Buffer.from('%PDF')),
          open: () => Promise.reject(Object.assign(new Error('attachment store unreachable'), { code: 'ECONNREFUSED' })),
        };
        const adapter = await connected();
        const sent = request({ attachments: [bufferAttachment('a1', 'ok.txt', 'text/plain', Buffer.from('ok')), broken] });
        const outcome = await adapter.deliver(sent).catch(() => undefined);
        if (outcome) {
          expectWellFormed(outcome);
          expectStatus(outcome, 'retryable');
        }
        expect((await counterpart.received()).filter((r) => sameBytes(r.payload, sent.payload.body))).toEqual([]);
      });

      it('a submission without attachments arrives without any', async () => {
        const adapter = await connected();
        const sent = request();
        expectStatus(await adapter.deliver(sent), 'delivered');
        const received = await counterpart.received();
        expect(received).toHaveLength(1);
        expect(received[0]!.attachments).toEqual([]);
      });
    });

    describe('check', () => {
      it('ok while up, not ok while down (without throwing), ok again after', async () => {
        const adapter = await connected();
        expect(await adapter.check()).toMatchObject({ ok: true });
        await counterpart.behave('down');
        const down = await adapter.check();
        expect(down.ok).toBe(false);
        await counterpart.behave('accept');
        expect(await adapter.check()).toMatchObject({ ok: true });
      });
    });

    describe('logs', () => {
      it('no payload content and no secret in any log line written during the tests above', async () => {
        const adapter = await connected();
        await adapter.deliver(request());
        await counterpart.behave('fail');
        await adapter.deliver(request());
        await counterpart.behave('accept');
        const text = logLines.join('');
        expect(text.includes('Mustermann')).toBe(false);
        expect(text.includes('Heidestra')).toBe(false);
        for (const secret of counterpart.secrets ?? []) expect(text.includes(secret)).toBe(false);
      });
    });
  });
}
