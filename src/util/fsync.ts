// fsync of a file or directory by path, for write-temp-then-rename sequences that must survive a crash.
import { constants, promises as fs } from 'node:fs';

/**
 * Flushes `target` (a file, or a directory after a rename in it) through a descriptor of its own: on Linux
 * fsync flushes the file whichever descriptor asks, and a write stream that must keep its own FileHandle
 * open would otherwise make `close()` wait for ever.
 */
export async function syncPath(target: string): Promise<void> {
  const handle = await fs.open(target, constants.O_RDONLY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
