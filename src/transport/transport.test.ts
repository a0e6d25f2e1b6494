import { heldSlot, SLOT_WAITERS_PER_SLOT, SlotLine, Slots, type Slot } from './transport';

const slot = (name: string): Slot & { name: string } => ({ name, run: async () => ({ kind: 'ack' }), release: () => undefined });

/** A caller that waits whatever the line (never detached): its slot, or undefined at once where it does not join. */
const waitIn = (line: SlotLine, ms: number, make: () => Slot | undefined): Promise<Slot | undefined> =>
  line.join(ms, make, false)?.later ?? Promise.resolve(undefined);

describe('SlotLine', () => {
  test('first come first served: hand-overs and callers in the order they joined, one per freed slot', async () => {
    const line = new SlotLine(2);
    const started: string[] = [];
    line.enqueue(() => started.push('hand-over'));
    const caller = waitIn(line, 1_000, () => slot('caller'));
    expect(line.size).toBe(2);
    expect(line.next()).toBe(true);
    expect(started).toEqual(['hand-over']);
    expect(line.next()).toBe(true);
    await expect(caller).resolves.toMatchObject({ name: 'caller' });
    expect(line.next()).toBe(false);
  });

  test('a caller whose slot is declined (the consumer cannot run it now) leaves without one, and the next in line starts', async () => {
    const line = new SlotLine(1);
    const started: string[] = [];
    const declined = waitIn(line, 1_000, () => undefined);
    line.enqueue(() => started.push('hand-over'));
    line.next();
    await expect(declined).resolves.toBeUndefined();
    expect(started).toEqual(['hand-over']);
  });

  test('a caller leaves after its wait when no slot came, and the line forgets it', async () => {
    const line = new SlotLine(1);
    const before = Date.now();
    await expect(waitIn(line, 60, () => slot('late'))).resolves.toBeUndefined();
    expect(Date.now() - before).toBeGreaterThanOrEqual(55);
    expect(line.size).toBe(0);
  });

  test('after a caller waited in vain, none joins until a slot is freed (a hanging back office holds one round of callers, not all)', async () => {
    const line = new SlotLine(1);
    line.held(5);
    await expect(waitIn(line, 30, () => slot('first'))).resolves.toBeUndefined();
    const before = Date.now();
    await expect(waitIn(line, 1_000, () => slot('second'))).resolves.toBeUndefined();
    expect(Date.now() - before).toBeLessThan(20);
    expect(line.size).toBe(0);
    line.held(5);
    const third = waitIn(line, 1_000, () => slot('third'));
    expect(line.size).toBe(1);
    line.next();
    await expect(third).resolves.toMatchObject({ name: 'third' });
  });

  test('no wait when a slot is not expected in time: from how long slots were held, the line ahead and the slots', async () => {
    const line = new SlotLine(4);
    line.held(100); // a slot frees every 25 ms on average
    const first = waitIn(line, 30, () => slot('first')); // expected 25 ms: waits
    expect(line.size).toBe(1);
    await expect(waitIn(line, 30, () => slot('second'))).resolves.toBeUndefined(); // expected 50 ms: at once
    expect(line.size).toBe(1);
    line.next();
    await expect(first).resolves.toMatchObject({ name: 'first' });
    // The average follows what slots are held now.
    for (let i = 0; i < 64; i += 1) line.held(4);
    const quick = waitIn(line, 30, () => slot('quick'));
    const another = waitIn(line, 30, () => slot('another'));
    expect(line.size).toBe(2);
    line.next();
    line.next();
    await expect(Promise.all([quick, another])).resolves.toMatchObject([{ name: 'quick' }, { name: 'another' }]);
    await expect(waitIn(line, 0, () => slot('never'))).resolves.toBeUndefined();
    expect(line.join(0, () => slot('never'))).toBeUndefined();
    expect(line.join(30, () => slot('joins'))?.later).toBeInstanceOf(Promise);
    line.dismiss();
  });

  test(`at most ${SLOT_WAITERS_PER_SLOT} per slot wait, besides the places taken while the line was short; dismiss lets callers go without a slot and drops hand-overs`, async () => {
    const line = new SlotLine(2);
    const started: string[] = [];
    line.enqueue(() => started.push('hand-over'));
    // One more waits than there are slots (2) only with its caller going on while it waits; the rest hold theirs.
    const places = Array.from({ length: SLOT_WAITERS_PER_SLOT * 2 }, (_, i) => line.join(60_000, () => slot(String(i)))!);
    expect(places.map((p) => p.detached)).toEqual([true, ...Array.from({ length: SLOT_WAITERS_PER_SLOT * 2 - 1 }, () => false)]);
    await expect(waitIn(line, 60_000, () => slot('one too many'))).resolves.toBeUndefined();
    // join tells at once whether it joined (the caller may answer its sender meanwhile).
    expect(line.join(60_000, () => slot('one too many'))).toBeUndefined();
    line.dismiss();
    await expect(Promise.all(places.map((p) => p.later))).resolves.toEqual(places.map(() => undefined));
    expect(line.next()).toBe(false);
    expect(started).toEqual([]);
  });

  test('a place is detached while fewer wait than there are slots, never more of them than slots; they leave the count when started, timed out or dismissed', async () => {
    const line = new SlotLine(2);
    const first = line.join(60_000, () => slot('first'))!;
    const second = line.join(60_000, () => slot('second'))!;
    const third = line.join(60_000, () => slot('third'))!;
    expect([first.detached, second.detached, third.detached]).toEqual([true, true, false]);
    line.next();
    await expect(first.later).resolves.toMatchObject({ name: 'first' });
    // Two wait (second, third): not short.
    expect(line.join(60_000, () => slot('fourth'))!.detached).toBe(false);
    line.next();
    line.next();
    line.next();
    expect(line.size).toBe(0);
    const short = line.join(30, () => slot('short'))!;
    expect(short.detached).toBe(true);
    await expect(short.later).resolves.toBeUndefined();
    // A caller of `wait` holds its own: never detached.
    line.held(1);
    void waitIn(line, 60_000, () => slot('waits'));
    expect(line.join(60_000, () => slot('next'))!.detached).toBe(true);
    line.dismiss();
  });

  test('the bound counts places that are not detached: those that left (started, timed out, dismissed) free their count', async () => {
    const line = new SlotLine(2);
    /** Fills the line: two detached places, then as many more as the bound allows; the next is refused. */
    const fill = () => {
      const places = Array.from({ length: 2 + SLOT_WAITERS_PER_SLOT * 2 }, () => line.join(60_000, () => slot('x')));
      expect(places.map((p) => p?.detached)).toEqual([true, true, ...Array.from({ length: SLOT_WAITERS_PER_SLOT * 2 }, () => false)]);
      expect(line.join(60_000, () => slot('too many'))).toBeUndefined();
      return places;
    };
    const started = line.join(60_000, () => slot('started'))!;
    const timedOut = line.join(20, () => slot('timed out'))!;
    line.next();
    await expect(started.later).resolves.toMatchObject({ name: 'started' });
    await expect(timedOut.later).resolves.toBeUndefined();
    line.held(1);
    expect(line.size).toBe(0);
    fill();
    line.dismiss();
    fill();
    line.dismiss();
  });
});

describe('Slots', () => {
  /** A run that ends when its `end` is called; `free` gives its slot back early. */
  const controlled = (slots: Slots) => {
    let free!: () => void;
    let end!: () => void;
    const done = slots.run((freeSlot) => {
      free = freeSlot;
      return new Promise<void>((resolve) => { end = resolve; });
    });
    return { free: () => free(), end: () => end(), done };
  };

  test('a run holds its slot until it ends or gives it back early; it stays in flight until it ends; at most `concurrency` give theirs back at once', async () => {
    const freed: number[] = [];
    const slots = new Slots(2, (ms) => freed.push(ms));
    const a = controlled(slots);
    const b = controlled(slots);
    expect(slots.free).toBe(0);
    a.free();
    a.free(); // twice: once
    expect([slots.free, freed.length, slots.inFlight.size]).toEqual([1, 1, 2]);
    b.free();
    expect([slots.free, freed.length]).toEqual([2, 2]);
    // Two gave theirs back already: the next two keep their slots to the end.
    const c = controlled(slots);
    const d = controlled(slots);
    c.free();
    d.free();
    expect([slots.free, freed.length, slots.inFlight.size]).toEqual([0, 2, 4]);
    // `a` ends: no slot frees (it had given its own back), but one more may give its slot back now.
    a.end();
    await a.done;
    expect([slots.free, freed.length, slots.inFlight.size]).toEqual([0, 2, 3]);
    c.free();
    expect([slots.free, freed.length]).toEqual([1, 3]);
    // `d` ends holding its slot: that frees it.
    d.end();
    await d.done;
    expect([slots.free, freed.length, slots.inFlight.size]).toEqual([2, 4, 2]);
    b.end();
    c.end();
    await Promise.all([b.done, c.done]);
    expect([slots.free, freed.length, slots.inFlight.size]).toEqual([2, 4, 0]);
  });

  test('a run that throws at once gives its slot back', async () => {
    const slots = new Slots(1, () => undefined);
    await expect(slots.run(() => { throw new Error('boom'); })).rejects.toThrow('boom');
    expect([slots.free, slots.inFlight.size]).toEqual([1, 0]);
  });

  test('heldSlot: the placeholder holds a slot until released, or until the message run in it ends or gives it back', async () => {
    const slots = new Slots(1, () => undefined);
    const released = heldSlot((placeholder) => slots.run(placeholder), async () => ({ kind: 'ack' }));
    expect(slots.free).toBe(0);
    released.release();
    await new Promise((resolve) => setImmediate(resolve));
    expect([slots.free, slots.inFlight.size]).toEqual([1, 0]);
    let end!: () => void;
    const early = heldSlot((placeholder) => slots.run(placeholder), (_message, freeSlot) => {
      freeSlot();
      return new Promise((resolve) => { end = () => resolve({ kind: 'ack' }); });
    });
    const run = early.run({ key: 'k', body: {} });
    expect([slots.free, slots.inFlight.size]).toEqual([1, 1]);
    end();
    await expect(run).resolves.toEqual({ kind: 'ack' });
    expect([slots.free, slots.inFlight.size]).toEqual([1, 0]);
  });
});
