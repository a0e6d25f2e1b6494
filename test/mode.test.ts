// Mode selection: production mode from AMQP_URL/DATABASE_URL or from the configuration's URL references;
// embedded mode when neither; an error naming the missing one when only one is given.
import pino from 'pino';
import { compileConfig } from '../src/config/load';
import { startRouter } from '../src/main';
import { Topology } from '../src/transport/rabbitmq-topology';
import { cityConfig, productionConfig, tempDir } from './support/harness';
import { amqpUrl, databaseUrl, deleteTopology, dropSchema, stopServices } from './support/services';

const log = pino({ level: 'silent' });
const saved = { AMQP_URL: process.env.AMQP_URL, DATABASE_URL: process.env.DATABASE_URL };

afterEach(() => {
  Object.assign(process.env, saved);
  for (const [key, value] of Object.entries(saved)) if (value === undefined) delete process.env[key];
  delete process.env.TEST_CITY_AMQP;
  delete process.env.TEST_CITY_DB;
});
afterAll(() => stopServices());

const withoutEnv = () => {
  delete process.env.AMQP_URL;
  delete process.env.DATABASE_URL;
};

test('production mode from URL references in the configuration', async () => {
  const [amqp, database] = await Promise.all([amqpUrl(), databaseUrl()]);
  withoutEnv();
  process.env.TEST_CITY_AMQP = amqp;
  process.env.TEST_CITY_DB = database;
  const raw = productionConfig(cityConfig(tempDir(), 'http://127.0.0.1:9'));
  const store = raw.store as { postgres: Record<string, unknown> };
  const transport = raw.transport as { amqp: Record<string, unknown> };
  store.postgres.url = { env: 'TEST_CITY_DB' };
  transport.amqp.url = { env: 'TEST_CITY_AMQP' };
  const config = compileConfig(raw, 'test');
  const router = await startRouter(config, { log, port: 0 });
  try {
    const ready = (await (await fetch(`${router.url}/readyz`)).json()) as { mode: string };
    expect(ready.mode).toBe('production');
  } finally {
    await router.close();
    await dropSchema(database, config.raw.store.postgres.schema);
    await deleteTopology(amqp, new Topology(config.raw.transport.amqp.prefix, 0).names(['route', 'deliver.muenchen-lbk', 'deliver.augsburg-boa', 'deliver.nuernberg-bob']));
  }
});

test('embedded mode without any URL; an error naming the other when only one is given', async () => {
  withoutEnv();
  const router = await startRouter(compileConfig(cityConfig(tempDir(), 'http://127.0.0.1:9'), 'test'), { log, port: 0 });
  try {
    expect(((await (await fetch(`${router.url}/readyz`)).json()) as { mode: string }).mode).toBe('embedded');
  } finally {
    await router.close();
  }
  process.env.AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672';
  await expect(startRouter(compileConfig(cityConfig(tempDir(), 'http://127.0.0.1:9'), 'test'), { log, port: 0 })).rejects.toThrow('production mode needs both AMQP_URL and DATABASE_URL; only AMQP_URL is set');
});
