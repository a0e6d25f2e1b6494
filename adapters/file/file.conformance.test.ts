// The file adapter against the conformance suite; its counterpart is a real directory. 'fail' and 'down'
// both take the directory away; a directory cannot refuse a file for good, so there is no 'reject'.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describeAdapterConformance, type ConformanceCounterpart, type ReceivedDelivery } from '../../src/testkit/conformance';
import fileAdapter from './index';

let root: string;
const directory = () => path.join(root, 'eingang');

const counterpart: ConformanceCounterpart = {
  async start() {
    root = mkdtempSync(path.join(os.tmpdir(), 'file-conformance-'));
  },
  async stop() {
    rmSync(root, { recursive: true, force: true });
  },
  behave(mode) {
    if (mode === 'accept') mkdirSync(directory(), { recursive: true });
    else rmSync(directory(), { recursive: true, force: true });
  },
  async received(): Promise<ReceivedDelivery[]> {
    const entries = readdirSync(directory()).filter((entry) => !entry.startsWith('.') && !entry.endsWith('.attachments'));
    return entries.map((name) => {
      const attachmentsDir = path.join(directory(), `${name.replace(/\.[^.]*$/, '')}.attachments`);
      const attachments = !existsSync(attachmentsDir) ? [] : readdirSync(attachmentsDir, { withFileTypes: true }).filter((e) => e.isFile()).map((e) => {
        const file = path.join(attachmentsDir, e.name);
        return { name: e.name, size: statSync(file).size, sha256: createHash('sha256').update(readFileSync(file)).digest('hex') };
      });
      return { key: name, payload: readFileSync(path.join(directory(), name)), attachments };
    });
  },
  reset() {
    rmSync(directory(), { recursive: true, force: true });
    mkdirSync(directory(), { recursive: true });
  },
  canReject: false,
};

describeAdapterConformance({ definition: fileAdapter, config: () => ({ directory: directory(), createDirectory: false }), counterpart });
