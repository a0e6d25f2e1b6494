// Durability: the router is killed with SIGKILL in the middle of a burst of 200 submissions and restarted
// on the same store. Every submission answered 202 must be delivered, and none stored twice by the back office.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { startBackOffice, type BackOffice } from '../src/demo/back-office';
import { cityConfig, eventually, FIXTURES, REPO, tempDir, variant, writeConfig } from './support/harness';

const TOTAL = 200;
const PORT = 18_000 + (process.pid % 1000);
const URL_ = `http://127.0.0.1:${PORT}`;

function startChild(configFile: string): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', path.join(REPO, 'src/cli.ts'), 'start', '--config', configFile, '--port', String(PORT)], {
    cwd: REPO,
    stdio: ['ignore', 'ignore', 'inherit'],
    // Embedded mode whatever the environment says (CI sets AMQP_URL/DATABASE_URL for the production tests).
    env: { ...process.env, LOG_LEVEL: 'warn', AMQP_URL: '', DATABASE_URL: '' },
  });
}

async function waitReady(): Promise<void> {
  await eventually(async () => (await fetch(`${URL_}/healthz`).catch(() => undefined))?.ok, 30_000, 'router to start');
}

let backOffice: BackOffice;
let child: ChildProcess | undefined;

afterAll(async () => {
  child?.kill('SIGKILL');
  await backOffice?.close();
});

test('kill -9 during a burst of 200 loses none and duplicates none', async () => {
  // A slow back office keeps deliveries in flight when the process dies.
  backOffice = await startBackOffice({ behaviour: () => 201 });
  const slow = backOffice;
  const dir = tempDir();
  const config = cityConfig(dir, slow.url);
  const configFile = writeConfig(dir, config);
  const template = readFileSync(path.join(FIXTURES, 'valid/xbau-0200-antrag-muenchen.xml'), 'utf8');
  // Half München (http), half Augsburg (file drop).
  const messages = Array.from({ length: TOTAL }, (_, i) => variant(template, { ags: i % 2 ? '09761000' : '09162000' }));

  child = startChild(configFile);
  await waitReady();

  const accepted = new Map<number, string>();
  let killed = false;
  const send = async (i: number) => {
    try {
      const response = await fetch(`${URL_}/api/v1/submissions`, { method: 'POST', headers: { 'content-type': 'application/xml' }, body: messages[i] });
      if (response.status === 202) accepted.set(i, ((await response.json()) as { submissionId: string }).submissionId);
    } catch {
      // Connection refused or reset by the kill: not accepted, the sender will send it again.
    }
  };
  for (let start = 0; start < TOTAL; start += 10) {
    await Promise.all(Array.from({ length: 10 }, (_, k) => send(start + k)));
    if (!killed && accepted.size >= 100) {
      child.kill('SIGKILL');
      killed = true;
      await new Promise((resolve) => child!.once('exit', resolve));
      break;
    }
  }
  expect(killed).toBe(true);
  const acceptedBeforeKill = new Map(accepted);
  const deliveredBeforeKill = slow.received.length;

  // Restart on the same store; the sender sends again whatever was not answered 202 (and, to prove
  // idempotency, also resends everything that was).
  child = startChild(configFile);
  await waitReady();
  for (let start = 0; start < TOTAL; start += 10) {
    await Promise.all(Array.from({ length: 10 }, (_, k) => start + k).map((i) => send(i)));
  }
  expect(accepted.size).toBe(TOTAL);
  for (const [i, id] of acceptedBeforeKill) expect(accepted.get(i)).toBe(id);

  const muenchenIds = [...accepted].filter(([i]) => i % 2 === 0).map(([, id]) => id).sort();
  const augsburgIds = [...accepted].filter(([i]) => i % 2 === 1).map(([, id]) => id).sort();
  const augsburgDir = path.join(dir, 'out/augsburg');
  await eventually(() => slow.received.length >= TOTAL / 2 && readdirSync(augsburgDir).filter((f) => f.endsWith('.json')).length >= TOTAL / 2, 60_000, 'all deliveries');
  // Let anything still running settle, then look for duplicates.
  await new Promise((resolve) => setTimeout(resolve, 500));

  // Every accepted München submission reached the back office exactly once (by idempotency key and by id) ...
  expect(slow.received.map((r) => r.submissionId).sort()).toEqual(muenchenIds);
  // ... and every Augsburg submission is one file, no temp files left.
  expect(readdirSync(augsburgDir).sort()).toEqual(augsburgIds.map((id) => `0200-${id}.json`).sort());
  // The router agrees: all delivered.
  for (const id of [...muenchenIds.slice(0, 20), ...augsburgIds.slice(0, 20)]) {
    const status = (await (await fetch(`${URL_}/api/v1/submissions/${id}`)).json()) as { state: string };
    expect(status.state).toBe('delivered');
  }
  // For the record (not an assertion): repeated attempts that the idempotency key caught.
  console.log(`crash test: ${acceptedBeforeKill.size} accepted and ${deliveredBeforeKill} delivered before the kill; back office saw ${slow.duplicates} repeated idempotency keys`);
}, 120_000);
