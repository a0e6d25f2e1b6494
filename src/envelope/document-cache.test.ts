import { DocumentCache } from './document-cache';

const xml = (n: number) => Buffer.from(`<?xml version="1.0"?><a><b>${'x'.repeat(n)}</b></a>`);
const never = async (): Promise<Buffer> => {
  throw new Error('must not load: the entry is cached');
};

describe('DocumentCache', () => {
  test('a kept document is opened without loading and parsed once, whatever the number of opens', async () => {
    const cache = new DocumentCache(1024 ** 2);
    const raw = xml(10);
    cache.put('s1', raw, 2);
    const first = await cache.open('s1', never);
    const second = await cache.open('s1', never);
    expect(first.raw).toBe(raw);
    expect(first.document()).toBe(second.document());
    expect(first.document().documentElement!.localName).toBe('a');
  });

  test('the DOM the intake parsed is the one handed out', async () => {
    const cache = new DocumentCache(1024 ** 2);
    const raw = xml(10);
    const dom = (await cache.open('other', async () => raw)).document();
    cache.put('s1', raw, 1, { text: raw.toString(), dom });
    expect((await cache.open('s1', never)).document()).toBe(dom);
  });

  test('the payloads the intake mapped are handed out by target, and counted against the budget', async () => {
    const raw = xml(10);
    const payload = { body: Buffer.alloc(5000), contentType: 'application/json', extension: 'json' };
    const mapped = new Map([['t', { payload }]]);
    const cache = new DocumentCache(1024 ** 2);
    cache.put('s1', raw, 1, { text: raw.toString(), mapped });
    expect((await cache.open('s1', never)).mapped?.get('t')).toEqual({ payload });
    expect(cache.size().bytes).toBe(raw.length * 3 + 5000);
    // Parsing the DOM later keeps the payloads' share in the estimate.
    (await cache.open('s1', never)).document();
    expect(cache.size().bytes).toBe(raw.length * 25 + 5000);
  });

  test('a miss loads the bytes and parses them, without keeping them', async () => {
    const cache = new DocumentCache(1024 ** 2);
    let loads = 0;
    const load = async () => {
      loads += 1;
      return xml(5);
    };
    expect((await cache.open('s1', load)).document().documentElement!.localName).toBe('a');
    await cache.open('s1', load);
    expect(loads).toBe(2);
    expect(cache.size()).toEqual({ bytes: 0, entries: 0 });
  });

  test('the entry goes after its last delivery is finished', async () => {
    const cache = new DocumentCache(1024 ** 2);
    cache.put('s1', xml(10), 2);
    cache.release('s1');
    expect(cache.size().entries).toBe(1);
    cache.release('s1');
    expect(cache.size()).toEqual({ bytes: 0, entries: 0 });
  });

  test('the estimate stays within the budget: the oldest go first, a parse counts its DOM', async () => {
    const raw = xml(1000);
    const budget = Math.floor(raw.length * 25.5);
    const cache = new DocumentCache(budget);
    cache.put('s1', raw, 1);
    cache.put('s2', raw, 1);
    expect(cache.size()).toEqual({ bytes: raw.length * 2, entries: 2 });
    // Parsing s2 makes it count for its DOM (25× its bytes here): s1, older, goes.
    (await cache.open('s2', never)).document();
    expect(cache.size()).toEqual({ bytes: raw.length * 25, entries: 1 });
    await expect(cache.open('s1', async () => Buffer.from('<loaded/>'))).resolves.toMatchObject({ raw: Buffer.from('<loaded/>') });
    cache.put('s3', raw, 1);
    cache.put('s4', raw, 1);
    cache.put('s5', raw, 1);
    cache.put('s6', raw, 1);
    cache.put('s7', raw, 1);
    const { bytes } = cache.size();
    expect(bytes).toBeLessThanOrEqual(budget);
    // s2 (oldest, largest) made room for the newer ones.
    await expect(cache.open('s2', async () => Buffer.from('<evicted/>'))).resolves.toMatchObject({ raw: Buffer.from('<evicted/>') });
  });

  test('nothing is kept with a budget of 0 or a document larger than the budget', async () => {
    const off = new DocumentCache(0);
    off.put('s1', xml(10), 1);
    expect(off.size().entries).toBe(0);
    const small = new DocumentCache(100);
    small.put('s1', xml(200), 1);
    expect(small.size().entries).toBe(0);
  });
});
