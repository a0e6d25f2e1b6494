// Per-target limits at pipeline level: `maxInFlight` and `rateLimit` hold for the whole deployment. In
// production mode two router instances share one PostgreSQL schema and one RabbitMQ prefix as competing
// consumers, and the back office must never see more than the configured concurrency or rate in total.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { RunningRouter } from '../src/main';
import { cityConfig, eventually, FIXTURES, getStatus, MODES, post, productionConfig, startTestRouter, tempDir, variant } from './support/harness';
import { stopServices } from './support/services';

const MUENCHEN = readFileSync(path.join(FIXTURES, 'valid/xbau-0200-antrag-muenchen.xml'), 'utf8');

/** A back office that answers after `delayMs` and records how many requests it had open at once and when each arrived. */
async function slowBackOffice(delayMs: number) {
  const state = { open: 0, maxOpen: 0, arrivals: [] as number[], keys: [] as string[] };
  const server = http.createServer((req, res) => {
    state.open += 1;
    state.maxOpen = Math.max(state.maxOpen, state.open);
    state.arrivals.push(Date.now());
    state.keys.push(String(req.headers['idempotency-key']));
    req.resume();
    setTimeout(() => {
      state.open -= 1;
      res.writeHead(201, { 'content-type': 'application/json' }).end('{"aktenzeichen":"AZ-1"}');
    }, delayMs);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { state, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise((resolve) => server.close(resolve)) };
}

/** The largest number of arrivals inside any window of `windowMs`. */
const densest = (arrivals: number[], windowMs: number) =>
  Math.max(...arrivals.map((t) => arrivals.filter((u) => u >= t && u < t + windowMs).length));

afterAll(() => stopServices());

describe.each(MODES)('%s mode', (mode) => {
  const routers: RunningRouter[] = [];
  afterEach(async () => {
    await Promise.all(routers.splice(0).map((r) => r.close()));
  });

  /** One instance in embedded mode (its SQLite file is its own); two sharing schema and prefix in production. */
  async function start(target: Record<string, unknown>, officeUrl: string): Promise<RunningRouter[]> {
    const base = cityConfig(tempDir(), officeUrl);
    const targets = base.targets as Record<string, Record<string, unknown>>;
    const config = { ...base, targets: { ...targets, 'muenchen-lbk': { ...targets['muenchen-lbk'], ...target, config: { url: `${officeUrl}/muenchen-lbk`, timeoutMs: 5000 } } } };
    if (mode === 'embedded') {
      routers.push(await startTestRouter(config, undefined, mode));
      return routers;
    }
    const shared = productionConfig(config);
    routers.push(await startTestRouter(shared, undefined, mode, true));
    routers.push(await startTestRouter(shared, undefined, mode));
    return routers;
  }

  async function sendAll(instances: RunningRouter[], count: number): Promise<string[]> {
    const ids = await Promise.all(Array.from({ length: count }, async (_, i) => {
      const { status, json } = await post(instances[i % instances.length]!.url, variant(MUENCHEN));
      expect(status).toBe(202);
      return json.submissionId as string;
    }));
    await eventually(async () => {
      const states = await Promise.all(ids.map(async (id) => (await getStatus(instances[0]!.url, id)).state));
      return states.every((s) => s === 'delivered');
    }, 60_000, `${count} deliveries`);
    return ids;
  }

  test('maxInFlight bounds the deliveries open at the back office at once, across instances', async () => {
    const office = await slowBackOffice(150);
    try {
      const instances = await start({ concurrency: 8, maxInFlight: 2 }, office.url);
      const ids = await sendAll(instances, 24);
      expect(office.state.maxOpen).toBeGreaterThanOrEqual(1);
      expect(office.state.maxOpen).toBeLessThanOrEqual(2);
      expect(new Set(office.state.keys).size).toBe(ids.length);
    } finally {
      await office.close();
    }
  }, 90_000);

  test('rateLimit bounds the deliveries per second, across instances', async () => {
    const office = await slowBackOffice(0);
    try {
      const instances = await start({ concurrency: 8, rateLimit: { perSecond: 8, burst: 2 } }, office.url);
      const ids = await sendAll(instances, 30);
      expect(office.state.arrivals).toHaveLength(ids.length);
      // A token bucket lets at most burst + perSecond × T attempts start in any window T. Requests reach the
      // back office some milliseconds after their token was taken, and that delay varies (mapping, two
      // instances, a loaded machine): allow 250 ms of it. A bucket refilled twice (a clock running backwards
      // between instances) showed 17 here.
      const { perSecond, burst } = { perSecond: 8, burst: 2 };
      expect(densest(office.state.arrivals, 1000)).toBeLessThanOrEqual(burst + perSecond * 1.25);
      const span = Math.max(...office.state.arrivals) - Math.min(...office.state.arrivals);
      expect(span).toBeGreaterThanOrEqual(((ids.length - burst) / perSecond) * 1000 - 250);
    } finally {
      await office.close();
    }
  }, 90_000);
});
