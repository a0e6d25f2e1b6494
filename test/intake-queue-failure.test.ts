// A submission whose queueing fails after it was stored keeps its attachments: it is accepted durably
// (the sweep queues its deliveries later), so its attachment bytes must not be deleted with the refusal.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import pino from 'pino';
import { compileConfig } from '../src/config/load';
import { Metrics } from '../src/metrics';
import { Pipeline } from '../src/pipeline';
import { DirectoryPayloadStore } from '../src/store/directory-payload-store';
import { openSqlite } from '../src/store/sqlite';
import { SqliteStore } from '../src/store/sqlite-store';
import { EmbeddedTransport } from '../src/transport/embedded-transport';
import type { Transport } from '../src/transport/transport';
import { cityConfig, FIXTURES, tempDir, variant } from './support/harness';

const MUENCHEN = readFileSync(path.join(FIXTURES, 'valid/xbau-0200-antrag-muenchen.xml'), 'utf8');
const log = pino({ level: 'silent' });

test('queueing fails after the commit: the stored submission keeps its attachment, a resend finds it, the refusal deletes nothing stored', async () => {
  const dir = tempDir();
  const db = openSqlite(path.join(dir, 'store.db'));
  const payloads = await DirectoryPayloadStore.open(path.join(dir, 'payloads'));
  const store = new SqliteStore(db);
  const real = new EmbeddedTransport(db, log);
  let failPublish = true;
  const transport: Transport = Object.assign(Object.create(real) as Transport, {
    publish: (queue: string, message: Parameters<Transport['publish']>[1]) => (failPublish ? Promise.reject(new Error('broker went away')) : real.publish(queue, message)),
  });
  const config = compileConfig(cityConfig(dir, 'http://127.0.0.1:9'), 'test');
  const metrics = new Metrics({ tenants: [], collect: async () => ({ queues: {}, submissions: {}, storedBytes: { payloads: 0, attachments: 0 } }) });
  const pipeline = new Pipeline({ config, store, payloads, transport, adapters: new Map(), log, metrics });
  try {
    const key = await payloads.write(Readable.from([Buffer.from('%PDF-1.7 plan')]));
    const attachment = { id: 'a1', name: 'plan.pdf', mediaType: 'application/pdf', size: 13, sha256: '0'.repeat(64), key, role: 'attachment' as const };
    const xml = Buffer.from(variant(MUENCHEN));
    await expect(pipeline.receive(xml, 'http', { attachments: [attachment] })).rejects.toThrow('broker went away');

    const [id] = await store.listReceived();
    expect(id).toBeDefined();
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
    pipeline.stop();
    await real.stop(0);
    await payloads.close();
    db.close();
  }
});
