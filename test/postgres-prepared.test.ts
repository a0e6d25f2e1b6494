// Hot statements marked `/* prepared:<name> */` reach PostgreSQL as named prepared statements (parsed and
// planned once per connection); everything else stays unnamed.
import { Pool } from 'pg';
import { preparingPool } from '../src/store/postgres-store';
import { databaseUrl, stopServices } from './support/services';

afterAll(() => stopServices());

test('a marked statement is prepared once per connection under its name and answers as before; others are not prepared', async () => {
  const pool = new Pool({ connectionString: await databaseUrl(), max: 1 });
  const wrapped = preparingPool(pool);
  const client = await wrapped.connect();
  try {
    const marked = '/* prepared:answer-test */ SELECT $1::int + 1 AS n';
    expect((await client.query<{ n: number }>(marked, [1])).rows).toEqual([{ n: 2 }]);
    expect((await client.query<{ n: number }>(marked, [41])).rows).toEqual([{ n: 42 }]);
    expect((await client.query<{ n: number }>('SELECT $1::int * 2 AS n', [21])).rows).toEqual([{ n: 42 }]);
    const prepared = await client.query<{ name: string; statement: string }>('SELECT name, statement FROM pg_prepared_statements', []);
    expect(prepared.rows).toEqual([{ name: 'answer-test', statement: marked }]);
  } finally {
    client.release();
    await wrapped.end();
  }
});
