// Embedded mode's payload store: one file per blob in a local directory, written atomically (temp file,
// fsync, rename, fsync of the directory), so that a stored key always has all of its bytes.
import { createWriteStream, promises as fs } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { newBlobKey, type PayloadStore } from './payload-store';
import { syncPath } from '../util/fsync';

const KEY = /^[0-9a-f-]{36}$/;
const TEMP_DIR = '.incoming';

export class DirectoryPayloadStore implements PayloadStore {
  private constructor(private readonly directory: string) {}

  /** Creates the directory if needed and removes temp files a killed process left behind. */
  static async open(directory: string): Promise<DirectoryPayloadStore> {
    const root = path.resolve(directory);
    await fs.rm(path.join(root, TEMP_DIR), { recursive: true, force: true });
    await fs.mkdir(path.join(root, TEMP_DIR), { recursive: true });
    return new DirectoryPayloadStore(root);
  }

  private file(key: string): string {
    if (!KEY.test(key)) throw new Error('invalid payload key');
    // Two levels of fan-out keep directories small with many blobs.
    return path.join(this.directory, key.slice(0, 2), key);
  }

  async write(source: Readable): Promise<string> {
    const key = newBlobKey();
    const temp = path.join(this.directory, TEMP_DIR, key);
    const final = this.file(key);
    try {
      await pipeline(source, createWriteStream(temp, { flags: 'wx', mode: 0o600 }));
      await syncPath(temp);
      await fs.mkdir(path.dirname(final), { recursive: true });
      await fs.rename(temp, final);
      await syncPath(path.dirname(final));
      return key;
    } catch (error) {
      await fs.rm(temp, { force: true });
      throw error;
    }
  }

  async open(key: string): Promise<Readable> {
    const file = this.file(key);
    // Opened here so that a missing blob fails open(), not the first read.
    const handle = await fs.open(file, 'r');
    return handle.createReadStream();
  }

  async delete(keys: readonly string[]): Promise<void> {
    await Promise.all(keys.map((key) => fs.rm(this.file(key), { force: true })));
  }

  async list(before: Date, limit: number): Promise<string[]> {
    const keys: string[] = [];
    for (const fan of await fs.readdir(this.directory)) {
      if (fan === TEMP_DIR) continue;
      for (const key of await fs.readdir(path.join(this.directory, fan)).catch(() => [] as string[])) {
        if (!KEY.test(key)) continue;
        const stat = await fs.stat(path.join(this.directory, fan, key)).catch(() => undefined);
        if (stat && stat.mtime < before) keys.push(key);
        if (keys.length >= limit) return keys;
      }
    }
    return keys;
  }

  async close(): Promise<void> {}
}

