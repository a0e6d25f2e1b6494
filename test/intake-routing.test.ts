// Routing at intake, in both modes: the intake routes the document it has in hand and stores submission and
// deliveries in one step, queueing the deliveries directly (no routing-queue hop). What may go wrong on
// that path ends up delivered anyway: an unexpected routing failure is left to the routing stage, and
// deliveries stored but never queued (the process died in between) are queued by the sweep.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import pino from 'pino';
import { compileConfig } from '../src/config/load';
import { startBackOffice, type BackOffice } from '../src/demo/back-office';
import { startRouter } from '../src/main';
import { Topology } from '../src/transport/rabbitmq-topology';
import { cityConfig, eventually, FIXTURES, getStatus, MODES, post, productionConfig, tempDir, variant } from './support/harness';
import { amqpUrl, databaseUrl, deleteTopology, dropSchema, stopServices } from './support/services';

const MUENCHEN = readFileSync(path.join(FIXTURES, 'valid/xbau-0200-antrag-muenchen.xml'), 'utf8');
const silent = pino({ level: 'silent' });

afterAll(() => stopServices());

describe.each(MODES)('%s mode', (mode) => {
  let backOffice: BackOffice;
  let config: Record<string, unknown>;
  const cleanups: Array<() => Promise<void>> = [];
  /** Drops the schema and queues of the test's production router (once per test, whatever else is cleaned up). */
  let dropServices: () => Promise<void> = async () => undefined;

  beforeEach(async () => {
    backOffice = await startBackOffice();
    config = cityConfig(tempDir(), backOffice.url);
    if (mode === 'production') config = productionConfig(config);
  });

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    await backOffice.close();
  });

  /** Starts a router on `config` (same store and queues on every start); `decide` may wrap the routing. */
  async function start(wrapDecide?: (decide: ReturnType<typeof compileConfig>['router']['decide']) => ReturnType<typeof compileConfig>['router']['decide']) {
    const compiled = compileConfig(config, 'test');
    if (wrapDecide) compiled.router.decide = wrapDecide(compiled.router.decide.bind(compiled.router));
    const production = mode === 'production' ? { amqpUrl: await amqpUrl(), databaseUrl: await databaseUrl() } : false as const;
    const router = await startRouter(compiled, { log: silent, production });
    if (!cleanups.includes(dropServices) && mode === 'production') {
      dropServices = async () => {
        const queues = ['route', ...[...compiled.targets.keys()].map((t) => `deliver.${t}`)];
        await Promise.all([
          dropSchema(await databaseUrl(), compiled.raw.store.postgres.schema),
          deleteTopology(await amqpUrl(), new Topology(compiled.raw.transport.amqp.prefix, 0).names(queues)),
        ]);
      };
      cleanups.push(dropServices);
    }
    const stop = router.close.bind(router);
    let closed = false;
    const close = async () => {
      if (!closed) await stop();
      closed = true;
    };
    cleanups.push(close);
    return Object.assign(router, { close });
  }

  const settled = (url: string, id: string) => eventually(async () => {
    const status = await getStatus(url, id);
    return ['delivered', 'failed', 'parked'].includes(status.state) && status;
  }, 15_000, `submission ${id} to settle`);

  test('the intake routes: one step stores submission, facts and deliveries; delivered once', async () => {
    const router = await start();
    const answer = await post(router.url, variant(MUENCHEN));
    expect(answer.status).toBe(202);
    const id = answer.json.submissionId as string;
    const status = await settled(router.url, id);
    expect(status.state).toBe('delivered');
    expect(status.facts).toMatchObject({ ags: '09162000', messageType: '0200' });
    expect(status.routes).toEqual(['muenchen']);
    expect(status.history.map((h) => h.outcome ? `${h.event}:${h.outcome as string}` : h.event)).toEqual(['received', 'routed', 'attempt:delivered']);
    expect(backOffice.received.filter((r) => r.submissionId === id)).toHaveLength(1);
  });

  test('an unexpected routing failure at intake leaves the routing to the routing stage; still delivered once', async () => {
    let failures = 0;
    const router = await start((decide) => (input) => {
      if (failures === 0) {
        failures += 1;
        throw new Error('routing bug');
      }
      return decide(input);
    });
    const answer = await post(router.url, variant(MUENCHEN));
    expect(answer.status).toBe(202);
    const id = answer.json.submissionId as string;
    const status = await settled(router.url, id);
    expect(failures).toBe(1);
    expect(status.state).toBe('delivered');
    expect(status.history.map((h) => h.event)).toEqual(['received', 'routed', 'attempt']);
    expect(backOffice.received.filter((r) => r.submissionId === id)).toHaveLength(1);
  });

  test('with the one slot busy, the next submission is answered at once and waits for the slot; when none comes in time its claim is given back and it is queued, then delivered once, as attempt 1', async () => {
    // A back office that holds the requests until released, then answers every later one at once.
    const arrivals: string[] = [];
    const held: Array<() => void> = [];
    let holding = true;
    const office = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        arrivals.push(String(req.headers['x-submission-id']));
        const answer = () => res.writeHead(201, { 'content-type': 'application/json' }).end('{"aktenzeichen":"AZ"}');
        if (holding) held.push(answer);
        else answer();
      });
    });
    await new Promise<void>((resolve) => office.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => office.close(() => resolve())));
    const targets = config.targets as Record<string, { concurrency?: number; config: Record<string, unknown> }>;
    targets['muenchen-lbk']!.concurrency = 1;
    targets['muenchen-lbk']!.config.url = `http://127.0.0.1:${(office.address() as AddressInfo).port}/lbk`;
    (config.delivery as Record<string, unknown>).immediateWait = '500ms';
    const router = await start();

    const first = (await post(router.url, variant(MUENCHEN))).json.submissionId as string;
    await eventually(() => held.length === 1);
    // The slot is busy: answered all the same, stored with its delivery claimed, not at the back office.
    const answer = await post(router.url, variant(MUENCHEN));
    expect(answer.status).toBe(202);
    const second = answer.json.submissionId as string;
    expect((await getStatus(router.url, second)).deliveries).toMatchObject([{ state: 'pending', attempts: 1 }]);
    // No slot within 500 ms: the claim is given back, the delivery queued (it waits for the slot there).
    await eventually(async () => (await getStatus(router.url, second)).deliveries[0]!.attempts === 0, 5_000, 'the claim given back');
    expect(arrivals).toEqual([first]);
    holding = false;
    held[0]!();
    for (const id of [first, second]) expect((await settled(router.url, id)).state).toBe('delivered');
    const status = await getStatus(router.url, second);
    expect(status.history.filter((h) => h.event === 'attempt').map((h) => [h.attempt, h.outcome])).toEqual([[1, 'delivered']]);
    expect(arrivals).toEqual([first, second]);
  });

  test('deliveries stored at intake but never queued (the process died in between) are queued at the next start', async () => {
    const first = await start();
    // The facts a real intake records for this document (from one accepted normally).
    const model = await settled(first.url, (await post(first.url, variant(MUENCHEN))).json.submissionId as string);
    const messageUuid = '5f0e8b7c-1d2a-4e3b-9c4d-000000000b01';
    const facts = { ...(model.facts as Record<string, string>), messageUuid };
    const { submission } = await first.store.accept({
      messageUuid, facts, payload: Buffer.from(variant(MUENCHEN, { uuid: messageUuid })), source: 'http',
      routing: { facts, routes: ['muenchen'], targets: [{ target: 'muenchen-lbk', route: 'muenchen' }] },
    });
    expect((await getStatus(first.url, submission.id)).state).toBe('received');
    await first.close();
    expect(backOffice.received.filter((r) => r.submissionId === submission.id)).toHaveLength(0);

    const second = await start();
    const status = await settled(second.url, submission.id);
    expect(status.state).toBe('delivered');
    expect(status.history.map((h) => h.event)).toEqual(['received', 'routed', 'attempt']);
    expect(backOffice.received.filter((r) => r.submissionId === submission.id)).toHaveLength(1);
  });
});
