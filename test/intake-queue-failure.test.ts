// A submission whose queueing fails after it was stored is accepted durably (the sweep queues its
// deliveries later) and keeps its attachments.
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import pino from 'pino';
import { compileConfig } from '../src/config/load';
import { Metrics } from '../src/metrics';
import type { Adapter, DeliveryOutcome, DeliveryRequest } from '../src/deliver/adapter';
import * as elementTree from '../src/envelope/element-tree';
import { Pipeline } from '../src/pipeline';
import { DirectoryPayloadStore } from '../src/store/directory-payload-store';
import { openSqlite } from '../src/store/sqlite';
import { SqliteStore } from '../src/store/sqlite-store';
import { EmbeddedTransport } from '../src/transport/embedded-transport';
import type { Transport } from '../src/transport/transport';
import { cityConfig, eventually, FIXTURES, REPO, tempDir, variant } from './support/harness';

const MUENCHEN = readFileSync(path.join(FIXTURES, 'valid/xbau-0200-antrag-muenchen.xml'), 'utf8');
const log = pino({ level: 'silent' });

type EditableConfig = Record<string, unknown> & { delivery: Record<string, unknown>; targets: Record<string, Record<string, unknown>> };

interface SetupOptions {
  adapters?: ReadonlyMap<string, Adapter>;
  routedMarkDelayMs?: number;
  /** Changes to the configuration (e.g. `delivery.immediate`, a target's `concurrency`). */
  edit?: (raw: EditableConfig) => void;
}

/** An adapter that answers every delivery with `deliver`. */
function office(deliver: (request: DeliveryRequest) => Promise<DeliveryOutcome>): Adapter {
  return { connect: async () => undefined, check: async () => ({ ok: true, detail: 'test' }), close: async () => undefined, deliver };
}

/** A back office that takes every delivery at once; `delivered` lists their submissions in order. */
function deliveringOffice(): { delivered: string[]; backOffice: Adapter } {
  const delivered: string[] = [];
  const backOffice = office(async (request) => {
    delivered.push(request.submissionId);
    return { status: 'delivered', detail: 'test' };
  });
  return { delivered, backOffice };
}

/** Counts the store's claim statements. */
function countClaims(store: SqliteStore): { readonly count: number } {
  const counted = { count: 0 };
  const claimAttempt = store.claimAttempt.bind(store);
  store.claimAttempt = async (...args) => {
    counted.count += 1;
    return claimAttempt(...args);
  };
  return counted;
}

/** Holds every outcome the store is to record until `release` (after which they go through at once). */
function holdOutcomes(store: SqliteStore): { readonly waiting: number; release(): void } {
  const waiting: Array<() => void> = [];
  let hold = true;
  const recordOutcome = store.recordOutcome.bind(store);
  store.recordOutcome = async (...args) => {
    if (hold) await new Promise<void>((resolve) => waiting.push(resolve));
    return recordOutcome(...args);
  };
  return {
    get waiting() { return waiting.length; },
    release() {
      hold = false;
      waiting.splice(0).forEach((resume) => resume());
    },
  };
}

/** A pipeline on an embedded store whose transport publishes through `publish` (given the real one). */
async function setup(publish: (real: Transport, queue: string, message: Parameters<Transport['publish']>[1]) => Promise<void>, { adapters = new Map(), routedMarkDelayMs, edit }: SetupOptions = {}) {
  const dir = tempDir();
  const db = openSqlite(path.join(dir, 'store.db'));
  const payloads = await DirectoryPayloadStore.open(path.join(dir, 'payloads'));
  const store = new SqliteStore(db);
  const real = new EmbeddedTransport(db, log);
  const transport: Transport = Object.assign(Object.create(real) as Transport, {
    publish: (queue: string, message: Parameters<Transport['publish']>[1]) => publish(real, queue, message),
  });
  const raw = cityConfig(dir, 'http://127.0.0.1:9') as EditableConfig;
  edit?.(raw);
  const config = compileConfig(raw, 'test');
  const metrics = new Metrics({ tenants: [], collect: async () => ({ queues: {}, submissions: {}, storedBytes: { payloads: 0, attachments: 0 } }) });
  const pipeline = new Pipeline({ config, store, payloads, transport, adapters, log, metrics, routedMarkDelayMs });
  const close = async () => {
    pipeline.stop();
    await real.stop(0);
    await payloads.close();
    db.close();
  };
  return { store, payloads, pipeline, db, real, close };
}

test('queueing fails after the commit: the submission is accepted all the same, stays received for the sweep with its attachment, a resend finds it', async () => {
  let failPublish = true;
  const { store, payloads, pipeline, close } = await setup((real, queue, message) => (failPublish ? Promise.reject(new Error('broker went away')) : real.publish(queue, message)));
  try {
    const key = await payloads.write(Readable.from([Buffer.from('%PDF-1.7 plan')]));
    const attachment = { id: 'a1', name: 'plan.pdf', mediaType: 'application/pdf', size: 13, sha256: '0'.repeat(64), key, role: 'attachment' as const };
    const xml = Buffer.from(variant(MUENCHEN));
    // Stored, the submission is accepted: the answer does not wait for the broker; the queueing fails after it.
    const first = await pipeline.receive(xml, 'http', { attachments: [attachment] });
    expect(first).toMatchObject({ status: 'received', duplicate: false });
    await pipeline.settle();

    const [id] = await store.listReceived();
    expect(id).toBe(first.submissionId);
    expect(await store.attachments(id!)).toMatchObject([{ id: 'a1', key }]);
    expect(Buffer.concat(await (await payloads.open(key)).toArray())).toEqual(Buffer.from('%PDF-1.7 plan'));

    // The sender resends: the same submission; the resend's own upload is deleted, the stored one stays.
    failPublish = false;
    const again = await payloads.write(Readable.from([Buffer.from('%PDF-1.7 plan')]));
    const resent = await pipeline.receive(xml, 'http', { attachments: [{ ...attachment, key: again }] });
    expect(resent).toMatchObject({ submissionId: id, duplicate: true });
    await expect(payloads.open(again)).rejects.toThrow();
    expect(Buffer.concat(await (await payloads.open(key)).toArray())).toEqual(Buffer.from('%PDF-1.7 plan'));
  } finally {
    await close();
  }
});

test('the answer does not wait for the broker; the submission is routed once its deliveries are confirmed', async () => {
  const held: Array<() => void> = [];
  const { store, pipeline, close } = await setup((real, queue, message) => new Promise<void>((resolve, reject) => {
    held.push(() => real.publish(queue, message).then(resolve, reject));
  }));
  try {
    const accepted = await pipeline.receive(Buffer.from(variant(MUENCHEN)), 'http');
    expect(accepted).toMatchObject({ status: 'received', duplicate: false });
    expect(held.length).toBeGreaterThan(0);
    let settled = false;
    const settling = pipeline.settle().then(() => { settled = true; });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(settled).toBe(false);
    expect((await store.get(accepted.submissionId))!.state).toBe('received');
    held.forEach((release) => release());
    await settling;
    expect((await store.get(accepted.submissionId))!.state).toBe('routed');
    expect(await store.listReceived()).toEqual([]);
  } finally {
    await close();
  }
});

test('with 256 accepted submissions unconfirmed, the next answer waits for its own confirm (back-pressure)', async () => {
  const held: Array<() => void> = [];
  const { pipeline, close } = await setup((real, queue, message) => new Promise<void>((resolve, reject) => {
    held.push(() => real.publish(queue, message).then(resolve, reject));
  }));
  try {
    for (let i = 0; i < 256; i += 1) await pipeline.receive(Buffer.from(variant(MUENCHEN)), 'http');
    let answered = false;
    const next = pipeline.receive(Buffer.from(variant(MUENCHEN)), 'http').then((result) => { answered = true; return result; });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(answered).toBe(false);
    held.forEach((release) => release());
    await expect(next).resolves.toMatchObject({ duplicate: false });
    await pipeline.settle();
  } finally {
    await close();
  }
});

test('a queued delivery finished before the routed marks are written leaves its submission row alone; one still waiting is marked routed', async () => {
  const delivered: string[] = [];
  let hold = false;
  const backOffice = office(async (request) => {
    if (hold) return new Promise(() => undefined);
    delivered.push(request.submissionId);
    return { status: 'delivered', detail: 'test' };
  });
  // Marks are written only by settle() here: however slow the machine, the quick delivery finishes first.
  const { store, pipeline, close } = await setup((real, queue, message) => real.publish(queue, message), {
    adapters: new Map([['muenchen-lbk', backOffice]]), routedMarkDelayMs: 600_000, edit: (raw) => { raw.delivery.immediate = false; },
  });
  const marked: string[] = [];
  const markRouted = store.markRouted.bind(store);
  store.markRouted = async (ids) => {
    marked.push(...ids);
    return markRouted(ids);
  };
  try {
    await pipeline.start();
    const quick = await pipeline.receive(Buffer.from(variant(MUENCHEN)), 'http');
    for (let i = 0; i < 100 && (await store.get(quick.submissionId))!.state !== 'delivered'; i += 1) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(delivered).toEqual([quick.submissionId]);
    hold = true;
    const waiting = await pipeline.receive(Buffer.from(variant(MUENCHEN)), 'http');
    await pipeline.settle();
    expect(marked).toEqual([waiting.submissionId]);
    expect((await store.get(quick.submissionId))!.state).toBe('delivered');
    expect((await store.get(waiting.submissionId))!.state).toBe('routed');
  } finally {
    await close();
  }
});

test('delivery.immediate: a free slot delivers at once (stored claimed: no claim, nothing queued, nothing marked); a failed attempt retries through the queue; a resend gives its slot back; with every slot taken the next is queued', async () => {
  const attempts: Array<{ submissionId: string; attempt: number }> = [];
  let mode: 'deliver' | 'fail-once' | 'hold' = 'deliver';
  const backOffice = office(async (request) => {
    attempts.push({ submissionId: request.submissionId, attempt: request.attempt });
    if (mode === 'hold') return new Promise(() => undefined);
    if (mode === 'fail-once' && request.attempt === 1) return { status: 'retryable', reason: 'http-status', detail: 'HTTP 503' };
    return { status: 'delivered', detail: 'test' };
  });
  const published: string[] = [];
  const { store, pipeline, db, close } = await setup((real, queue, message) => {
    published.push(`${queue} ${message.key}`);
    return real.publish(queue, message);
  }, {
    adapters: new Map([['muenchen-lbk', backOffice]]), routedMarkDelayMs: 600_000,
    edit: (raw) => { raw.targets['muenchen-lbk']!.concurrency = 1; },
  });
  const marked: string[] = [];
  const markRouted = store.markRouted.bind(store);
  store.markRouted = async (ids) => {
    marked.push(...ids);
    return markRouted(ids);
  };
  const claims = countClaims(store);
  const stateOf = async (id: string) => (await store.get(id))!.state;
  const until = async (id: string, state: string) => {
    for (let i = 0; i < 250 && (await stateOf(id)) !== state; i += 1) await new Promise((resolve) => setTimeout(resolve, 20));
    return stateOf(id);
  };
  try {
    await pipeline.start();
    // A free slot: delivered at once, without a queue message, and its row is never marked.
    const quickXml = Buffer.from(variant(MUENCHEN));
    const quick = await pipeline.receive(quickXml, 'http');
    expect(await until(quick.submissionId, 'delivered')).toBe('delivered');
    expect(attempts).toEqual([{ submissionId: quick.submissionId, attempt: 1 }]);
    expect(published).toEqual([]);
    expect(claims.count).toBe(0);
    expect((await store.get(quick.submissionId))!.history.filter((h) => h.event === 'attempt')).toMatchObject([{ attempt: 1, outcome: 'delivered' }]);
    // A resend takes a slot before it learns it is one; it gives it back (else the next would be queued below).
    expect(await pipeline.receive(quickXml, 'http')).toMatchObject({ duplicate: true });

    // The attempt run at once fails: its retry is a queue message (handed out once already), the second attempt comes from the queue.
    mode = 'fail-once';
    const retried = await pipeline.receive(Buffer.from(variant(MUENCHEN)), 'http');
    expect(await until(retried.submissionId, 'delivered')).toBe('delivered');
    expect(attempts.slice(1)).toEqual([{ submissionId: retried.submissionId, attempt: 1 }, { submissionId: retried.submissionId, attempt: 2 }]);
    expect(published).toEqual([]);
    expect(claims.count).toBe(1); // the retry's
    expect(db.prepare('SELECT count(*) FROM jobs').pluck().get()).toBe(0);

    // The one slot is taken by a delivery that hangs: the next submission's delivery is queued, not run.
    mode = 'hold';
    const holding = await pipeline.receive(Buffer.from(variant(MUENCHEN)), 'http');
    for (let i = 0; i < 100 && attempts.length < 4; i += 1) await new Promise((resolve) => setTimeout(resolve, 20));
    const queued = await pipeline.receive(Buffer.from(variant(MUENCHEN)), 'http');
    await pipeline.settle();
    expect(attempts.slice(3)).toEqual([{ submissionId: holding.submissionId, attempt: 1 }]);
    expect(published).toEqual([`deliver.muenchen-lbk ${queued.submissionId}`]);
    // (The retried one's mark was dropped: its outcome came first and set the state.)
    expect(marked).toEqual([queued.submissionId]);
    expect(await stateOf(holding.submissionId)).toBe('received');
    expect(await stateOf(queued.submissionId)).toBe('routed');
    expect(db.prepare('SELECT key, deliveries FROM jobs').all()).toEqual([{ key: queued.submissionId, deliveries: 0 }]);
  } finally {
    await close();
  }
});

/** A pipeline whose target muenchen-lbk has one slot, `immediateWait` and `backOffice`; `published` lists what was queued. */
async function oneSlot(immediateWait: string, backOffice: Adapter) {
  const published: string[] = [];
  const harness = await setup((real, queue, message) => {
    published.push(`${queue} ${message.key}`);
    return real.publish(queue, message);
  }, {
    adapters: new Map([['muenchen-lbk', backOffice]]),
    edit: (raw) => {
      raw.targets['muenchen-lbk']!.concurrency = 1;
      raw.delivery.immediateWait = immediateWait;
    },
  });
  return { ...harness, published };
}

test('delivery.immediateWait: with every slot busy, the sender is answered at once while the line is short (fewer wait than there are slots), beyond that the answer waits too; each delivery runs when a slot frees (no queue message, no claim)', async () => {
  const held: Array<() => void> = [];
  const delivered: string[] = [];
  const backOffice = office(async (request) => {
    if (!delivered.length && !held.length) await new Promise<void>((resolve) => held.push(resolve));
    delivered.push(request.submissionId);
    return { status: 'delivered', detail: 'test' };
  });
  const { store, pipeline, db, close, published } = await oneSlot('10s', backOffice);
  const claims = countClaims(store);
  try {
    await pipeline.start();
    const first = await pipeline.receive(Buffer.from(variant(MUENCHEN)), 'http');
    await eventually(() => held.length === 1);
    // The one slot is busy: the second takes a place in line and is answered at once, stored with its delivery claimed.
    const second = await pipeline.receive(Buffer.from(variant(MUENCHEN)), 'http');
    expect((await store.deliveries(second.submissionId)).map((d) => [d.state, d.attempts])).toEqual([['pending', 1]]);
    // Its lease covers the wait for the slot as well as the attempt: leaseTime (2 min) + immediateWait (10 s).
    const leaseUntil = db.prepare('SELECT lease_until FROM deliveries WHERE submission_id = ?').pluck().get(second.submissionId) as number;
    expect(leaseUntil - Date.now()).toBeGreaterThan(125_000);
    // One waits so already (concurrency 1): the third intake waits for a slot before it answers (nothing stored yet).
    let answered = false;
    const third = pipeline.receive(Buffer.from(variant(MUENCHEN)), 'http').then((result) => {
      answered = true;
      return result;
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(answered).toBe(false);
    expect((await store.listReceived()).sort()).toEqual([first.submissionId, second.submissionId].sort());
    expect(delivered).toEqual([]);
    held[0]!();
    const { submissionId } = await third;
    await eventually(async () => (await store.get(submissionId))?.state === 'delivered');
    expect(delivered).toEqual([first.submissionId, second.submissionId, submissionId]);
    expect((await store.get(second.submissionId))!).toMatchObject({ state: 'delivered', deliveries: [{ state: 'delivered', attempts: 1 }] });
    expect(published).toEqual([]);
    expect(claims.count).toBe(0);
  } finally {
    await close();
  }
});

test('delivery.immediateWait: a delivery stored claimed whose slot does not come in time gives its claim back and is queued; it is delivered once, as attempt 1', async () => {
  let hang: (() => void) | undefined;
  const delivered: Array<[string, number]> = [];
  const backOffice = office(async (request) => {
    if (!hang && !delivered.length) await new Promise<void>((resolve) => { hang = resolve; });
    delivered.push([request.submissionId, request.attempt]);
    return { status: 'delivered', detail: 'test' };
  });
  const { store, pipeline, close, published } = await oneSlot('300ms', backOffice);
  try {
    await pipeline.start();
    const first = await pipeline.receive(Buffer.from(variant(MUENCHEN)), 'http');
    await eventually(() => hang !== undefined);
    const second = await pipeline.receive(Buffer.from(variant(MUENCHEN)), 'http');
    // Waiting in line, claimed; after 300 ms without a slot the claim is given back and the delivery queued.
    expect((await store.deliveries(second.submissionId)).map((d) => d.attempts)).toEqual([1]);
    await eventually(() => published.length === 1);
    expect(published).toEqual([`deliver.muenchen-lbk ${second.submissionId}`]);
    await eventually(async () => (await store.deliveries(second.submissionId))[0]!.attempts === 0);
    hang!();
    await eventually(async () => (await store.get(second.submissionId))?.state === 'delivered');
    expect(delivered).toEqual([[first.submissionId, 1], [second.submissionId, 1]]);
    await eventually(async () => (await store.get(second.submissionId))?.history.some((h) => h.event === 'attempt') === true);
    expect((await store.get(second.submissionId))!.history.filter((h) => h.event === 'attempt').map((h) => h.attempt)).toEqual([1]);
  } finally {
    await close();
  }
});

test('delivery.immediateWait: a delivery waiting for its slot when the consumer stops gives its claim back and is queued, before the store closes', async () => {
  let hang: (() => void) | undefined;
  const backOffice = office(async () => {
    await new Promise<void>((resolve) => { hang = resolve; });
    return { status: 'delivered', detail: 'test' };
  });
  const { store, pipeline, real, db, close, published } = await oneSlot('10s', backOffice);
  try {
    await pipeline.start();
    await pipeline.receive(Buffer.from(variant(MUENCHEN)), 'http');
    await eventually(() => hang !== undefined);
    const waiting = await pipeline.receive(Buffer.from(variant(MUENCHEN)), 'http');
    expect((await store.deliveries(waiting.submissionId)).map((d) => d.attempts)).toEqual([1]);
    pipeline.stop();
    await real.stop(0);
    await pipeline.settle();
    expect((await store.deliveries(waiting.submissionId)).map((d) => [d.state, d.attempts])).toEqual([['pending', 0]]);
    expect(published).toEqual([`deliver.muenchen-lbk ${waiting.submissionId}`]);
    expect(db.prepare('SELECT key FROM jobs').pluck().all()).toEqual([waiting.submissionId]);
    hang!();
  } finally {
    await close();
  }
});

test('delivery.immediateWait: a resend that took a place in line gives its slot back when it comes; the line goes on', async () => {
  const delivered: string[] = [];
  let hang: (() => void) | undefined;
  const backOffice = office(async (request) => {
    if (delivered.length === 1 && !hang) await new Promise<void>((resolve) => { hang = resolve; });
    delivered.push(request.submissionId);
    return { status: 'delivered', detail: 'test' };
  });
  const { store, pipeline, close, published } = await oneSlot('10s', backOffice);
  try {
    await pipeline.start();
    const original = Buffer.from(variant(MUENCHEN));
    const a = await pipeline.receive(original, 'http');
    await eventually(async () => (await store.get(a.submissionId))?.state === 'delivered');
    const b = await pipeline.receive(Buffer.from(variant(MUENCHEN)), 'http');
    await eventually(() => hang !== undefined);
    // The slot is busy: the resend takes the short line's place, finds its submission, answers `duplicate`.
    expect(await pipeline.receive(original, 'http')).toMatchObject({ submissionId: a.submissionId, duplicate: true });
    // The next waits behind that place (no longer a short line); when the slot frees, the resend's place gives it on.
    const c = pipeline.receive(Buffer.from(variant(MUENCHEN)), 'http');
    hang!();
    const { submissionId } = await c;
    await eventually(async () => (await store.get(submissionId))?.state === 'delivered');
    expect(delivered).toEqual([a.submissionId, b.submissionId, submissionId]);
    expect(published).toEqual([]);
  } finally {
    await close();
  }
});

test('a delivery gives its slot back once the back office answered: the next runs while the outcome is recorded; at most as many as there are slots do so', async () => {
  const { delivered, backOffice } = deliveringOffice();
  const { store, pipeline, close, published } = await oneSlot('0ms', backOffice);
  const outcomes = holdOutcomes(store);
  const stateOf = async (id: string) => (await store.get(id))!.state;
  try {
    await pipeline.start();
    const first = await pipeline.receive(Buffer.from(variant(MUENCHEN)), 'http');
    await eventually(() => outcomes.waiting === 1);
    // Its outcome not recorded yet, the one slot is free again: the next is delivered at once, not queued.
    const second = await pipeline.receive(Buffer.from(variant(MUENCHEN)), 'http');
    await eventually(() => outcomes.waiting === 2);
    expect(delivered).toEqual([first.submissionId, second.submissionId]);
    expect(published).toEqual([]);
    // One slot: only one delivery may have given it back; the second keeps it, so the third is queued.
    const third = await pipeline.receive(Buffer.from(variant(MUENCHEN)), 'http');
    await pipeline.settle();
    expect(published).toEqual([`deliver.muenchen-lbk ${third.submissionId}`]);
    expect(delivered).toHaveLength(2);
    expect(await stateOf(first.submissionId)).toBe('received');
    outcomes.release();
    for (const { submissionId } of [first, second, third]) expect(await eventually(async () => (await stateOf(submissionId)) === 'delivered' && 'delivered')).toBe('delivered');
    expect(delivered.sort()).toEqual([first, second, third].map((s) => s.submissionId).sort());
  } finally {
    outcomes.release();
    await close();
  }
});

test('a target with maxInFlight: a delivery keeps its slot until its outcome is recorded (its lease counts until then), so the next is not claimed meanwhile', async () => {
  const { delivered, backOffice } = deliveringOffice();
  const { store, pipeline, close } = await setup((real, queue, message) => real.publish(queue, message), {
    adapters: new Map([['muenchen-lbk', backOffice]]),
    edit: (raw) => {
      raw.targets['muenchen-lbk']!.concurrency = 1;
      raw.targets['muenchen-lbk']!.maxInFlight = 1;
    },
  });
  const outcomes = holdOutcomes(store);
  const claims = countClaims(store);
  try {
    await pipeline.start();
    const first = await pipeline.receive(Buffer.from(variant(MUENCHEN)), 'http');
    await eventually(() => outcomes.waiting === 1);
    const second = await pipeline.receive(Buffer.from(variant(MUENCHEN)), 'http');
    await pipeline.settle();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(claims.count).toBe(1);
    expect(delivered).toEqual([first.submissionId]);
    outcomes.release();
    await eventually(async () => (await store.get(second.submissionId))!.state === 'delivered');
    expect(delivered).toEqual([first.submissionId, second.submissionId]);
  } finally {
    outcomes.release();
    await close();
  }
});

test('parse once: the intake maps on the element tree its strict pass built, and the delivery sends that payload; a document cache of 0 parses at delivery', async () => {
  for (const documentCache of ['64MB', 0]) {
    const bodies: unknown[] = [];
    const backOffice = office(async (request) => {
      bodies.push(JSON.parse(request.payload.body.toString()));
      return { status: 'delivered', detail: 'test' };
    });
    const parses = jest.spyOn(elementTree, 'parseElementTree');
    const { store, pipeline, close } = await setup((real, queue, message) => real.publish(queue, message), {
      adapters: new Map([['muenchen-lbk', backOffice]]),
      edit: (raw) => { raw.delivery.documentCache = documentCache; },
    });
    try {
      await pipeline.start();
      const { submissionId } = await pipeline.receive(Buffer.from(variant(MUENCHEN)), 'http');
      await eventually(async () => (await store.get(submissionId))?.state === 'delivered');
      expect(parses).toHaveBeenCalledTimes(documentCache ? 0 : 1);
      expect(bodies).toHaveLength(1);
      expect(bodies[0]).toMatchObject({ nachricht: { uuid: expect.any(String) }, vorhaben: expect.anything(), antragsteller: expect.anything() });
    } finally {
      parses.mockRestore();
      await close();
    }
  }
});

test('a mapping that refuses the submission at intake makes the delivery\'s outcome, the same as mapping at delivery: dead with its reason, the back office never asked', async () => {
  const mappings = tempDir();
  for (const file of ['xbau-bauantrag-json.yaml', 'xml-passthrough.yaml']) copyFileSync(path.join(REPO, 'mappings', file), path.join(mappings, file));
  writeFileSync(path.join(mappings, 'strict.yaml'), 'name: strict\noutput: json\nfields:\n  missing: { xpath: "/*/nothing", required: true }\n');
  const asked: string[] = [];
  const backOffice = office(async (request) => {
    asked.push(request.submissionId);
    return { status: 'delivered', detail: 'test' };
  });
  const attempts: unknown[] = [];
  // Mapped at intake (document cache on: the delivery parses nothing), and at delivery (off): the same outcome.
  for (const documentCache of ['64MB', 0]) {
    const parses = jest.spyOn(elementTree, 'parseElementTree');
    const { store, pipeline, close } = await setup((real, queue, message) => real.publish(queue, message), {
      adapters: new Map([['muenchen-lbk', backOffice]]),
      edit: (raw) => {
        raw.mappingsDir = mappings;
        raw.targets['muenchen-lbk']!.mapping = 'strict';
        raw.delivery.documentCache = documentCache;
      },
    });
    try {
      await pipeline.start();
      const { submissionId } = await pipeline.receive(Buffer.from(variant(MUENCHEN)), 'http');
      await eventually(async () => (await store.get(submissionId))?.state === 'failed');
      const status = (await store.get(submissionId))!;
      expect(status.deliveries).toMatchObject([{ target: 'muenchen-lbk', state: 'dead', attempts: 1 }]);
      attempts.push(status.history.filter((h) => h.event === 'attempt').map(({ at: _at, ...entry }) => entry));
      expect(parses).toHaveBeenCalledTimes(documentCache ? 0 : 1);
    } finally {
      parses.mockRestore();
      await close();
    }
  }
  expect(attempts[0]).toEqual([{ event: 'attempt', target: 'muenchen-lbk', attempt: 1, outcome: 'dead', reason: 'mapping-required-field', detail: 'mapping strict: missing is required but empty' }]);
  expect(attempts[1]).toEqual(attempts[0]);
  expect(asked).toEqual([]);
});

/** A back office per target whose answers the test sets: delivered, retryable, or never (hangs). */
function scriptedOffices(targets: string[]) {
  const behaviour = new Map<string, 'deliver' | 'retry' | 'hang'>(targets.map((t) => [t, 'deliver']));
  const adapters = new Map<string, Adapter>(targets.map((target) => [target, office(async () => {
    const how = behaviour.get(target);
    if (how === 'hang') return new Promise(() => undefined);
    return how === 'retry' ? { status: 'retryable', reason: 'http-status', detail: 'HTTP 503' } : { status: 'delivered', detail: 'test' };
  })]));
  return { behaviour, adapters };
}

test('two deliveries run at once: the submission stays received until both are queued or finished; the sweep leaves it alone while one is leased and finds it when the lease ends', async () => {
  const { behaviour, adapters } = scriptedOffices(['muenchen-lbk', 'augsburg-boa']);
  behaviour.set('augsburg-boa', 'hang');
  const { store, pipeline, close } = await setup((real, queue, message) => real.publish(queue, message), {
    adapters,
    edit: (raw) => {
      raw.delivery.leaseTime = '400ms';
      (raw.routes as Array<{ deliver: string[] }>)[0]!.deliver = ['muenchen-lbk', 'augsburg-boa'];
    },
  });
  try {
    await pipeline.start();
    const { submissionId } = await pipeline.receive(Buffer.from(variant(MUENCHEN)), 'http');
    await eventually(async () => (await store.get(submissionId))!.deliveries.find((d) => d.target === 'muenchen-lbk')!.state === 'delivered');
    // One delivered, the other still running (only in this process): not `routed`, or a crash would lose it.
    expect(await store.get(submissionId)).toMatchObject({ state: 'received', deliveries: [{ target: 'muenchen-lbk', state: 'delivered' }, { target: 'augsburg-boa', state: 'pending', attempts: 1 }] });
    expect(await store.listReceived(undefined, { skipLeased: true })).toEqual([]);
    // Its holder stopped answering: once the lease ends, the sweep finds the submission.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await store.listReceived(undefined, { skipLeased: true })).toEqual([submissionId]);
  } finally {
    await close();
  }
});

test('delivery.immediateWait: a submission for several targets does not wait for busy slots (it could hold one while waiting for another); it takes the free ones and queues the rest', async () => {
  const { behaviour, adapters } = scriptedOffices(['muenchen-lbk', 'augsburg-boa']);
  behaviour.set('augsburg-boa', 'hang');
  const published: string[] = [];
  const { pipeline, close } = await setup((real, queue, message) => {
    published.push(queue);
    return real.publish(queue, message);
  }, {
    adapters,
    edit: (raw) => {
      raw.delivery.immediateWait = '10s';
      raw.targets['muenchen-lbk']!.concurrency = 1;
      raw.targets['augsburg-boa']!.concurrency = 1;
      (raw.routes as Array<{ deliver: string[] }>)[0]!.deliver = ['muenchen-lbk', 'augsburg-boa'];
    },
  });
  try {
    await pipeline.start();
    await pipeline.receive(Buffer.from(variant(MUENCHEN)), 'http');
    expect(published).toEqual([]);
    // augsburg-boa's one slot hangs; muenchen-lbk's is free (once its first delivery is done).
    await new Promise((resolve) => setTimeout(resolve, 100));
    const before = Date.now();
    await pipeline.receive(Buffer.from(variant(MUENCHEN)), 'http');
    expect(Date.now() - before).toBeLessThan(5_000);
    await pipeline.settle();
    expect(published).toEqual(['deliver.augsburg-boa']);
  } finally {
    await close();
  }
});

test('a delivery run at once whose retry cannot be queued leaves its submission received for the sweep', async () => {
  const { behaviour, adapters } = scriptedOffices(['muenchen-lbk']);
  behaviour.set('muenchen-lbk', 'retry');
  const { store, pipeline, real, close } = await setup((transport, queue, message) => transport.publish(queue, message), { adapters, routedMarkDelayMs: 10 });
  real.settleReserved = () => {
    throw new Error('queue write failed');
  };
  try {
    await pipeline.start();
    const { submissionId } = await pipeline.receive(Buffer.from(variant(MUENCHEN)), 'http');
    await eventually(async () => (await store.get(submissionId))!.deliveries[0]!.reason === 'http-status');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await store.get(submissionId)).toMatchObject({ state: 'received', deliveries: [{ state: 'pending', attempts: 1 }] });
    expect(await store.listReceived(undefined, { skipLeased: true })).toEqual([submissionId]);
  } finally {
    await close();
  }
});
