// The benchmark's back-office sink and load generator against each other on loopback (no timing asserted).
import { runLoad } from '../bench/load';
import { startSink, type Sink } from '../bench/sink';

let sink: Sink;
beforeEach(async () => {
  sink = await startSink();
});
afterEach(() => sink.close());

const deliver = (id: string | undefined, body = 'payload') => fetch(`${sink.url}/target`, {
  method: 'POST', body, headers: id ? { 'x-submission-id': id } : {},
});

test('records the first receipt of each submission, counts repeats, bytes and requests without an id', async () => {
  expect((await deliver('a')).status).toBe(200);
  await deliver('b', 'xx');
  await deliver('a');
  await deliver(undefined);
  expect([...sink.arrivals.keys()].sort()).toEqual(['a', 'b']);
  expect(sink.duplicates()).toBe(1);
  expect(sink.anonymous()).toBe(1);
  expect(sink.bytes()).toBe(7 + 2 + 7 + 7);
  sink.reset();
  expect(sink.arrivals.size).toBe(0);
  expect(sink.duplicates()).toBe(0);
});

test('a stalled sink records the receipt but answers only after resume', async () => {
  sink.stall();
  let answered = false;
  const pending = deliver('held').then((response) => {
    answered = true;
    return response.status;
  });
  for (let i = 0; i < 100 && !sink.arrivals.has('held'); i += 1) await new Promise((resolve) => setTimeout(resolve, 20));
  expect(sink.arrivals.has('held')).toBe(true);
  expect(answered).toBe(false);
  sink.resume();
  expect(await pending).toBe(200);
});

test('the load generator sends the count asked for and records status and latency of each answer', async () => {
  // The sink answers 200 (not 202): every request counts as sent, none as accepted.
  const open = await runLoad({ targets: [sink.url], count: 20, rate: 1000, make: (i) => ({ body: `n${i}`, contentType: 'text/plain' }) });
  const closed = await runLoad({ targets: [sink.url, sink.url], count: 15, concurrency: 4, make: (i) => ({ body: `m${i}`, contentType: 'text/plain' }) });
  for (const result of [open, closed]) {
    expect(result.sent.every((s) => s.status === 200 && s.latency >= 0 && s.submissionId === undefined)).toBe(true);
    expect(result.lastAnswer).toBeGreaterThanOrEqual(result.firstStart);
  }
  expect(open.sent).toHaveLength(20);
  expect(closed.sent).toHaveLength(15);
  expect(sink.anonymous()).toBe(35);
});
