// The demo back office keeps what it took across a restart, as a real back office would.
import { mkdtempSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startBackOffice } from './back-office';

const deliver = (url: string, key: string, body = '{"a":1}') =>
  fetch(`${url}/lbk`, { method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': key, 'x-submission-id': key }, body })
    .then(async (r) => ({ status: r.status, json: (await r.json()) as { aktenzeichen: string; duplicate?: boolean } }));

test('idempotency keys and file numbers survive a restart when a directory is given', async () => {
  const directory = mkdtempSync(path.join(os.tmpdir(), 'back-office-'));
  const first = await startBackOffice({ directory });
  const a = await deliver(first.url, 'k1');
  await first.close();

  const second = await startBackOffice({ directory });
  try {
    const again = await deliver(second.url, 'k1');
    expect(again).toEqual({ status: 200, json: { aktenzeichen: a.json.aktenzeichen, duplicate: true } });
    const b = await deliver(second.url, 'k2');
    expect(b.status).toBe(201);
    expect(b.json.aktenzeichen).toBe(a.json.aktenzeichen.replace(/1$/, '2'));
    expect(second.duplicates).toBe(1);
    expect(second.received.map((r) => r.idempotencyKey)).toEqual(['k1', 'k2']);
    expect(readdirSync(path.join(directory, 'lbk')).sort()).toEqual([`${a.json.aktenzeichen}.json`, `${b.json.aktenzeichen}.json`]);
  } finally {
    await second.close();
  }
});

test('failure injection answers the given status for a number of requests, then recovers', async () => {
  const backOffice = await startBackOffice();
  try {
    await fetch(`${backOffice.url}/_fail?office=lbk&status=503&count=2`, { method: 'POST' });
    expect((await deliver(backOffice.url, 'x')).status).toBe(503);
    expect((await deliver(backOffice.url, 'x')).status).toBe(503);
    expect((await deliver(backOffice.url, 'x')).status).toBe(201);
    expect(backOffice.failures).toBe(2);
  } finally {
    await backOffice.close();
  }
});
