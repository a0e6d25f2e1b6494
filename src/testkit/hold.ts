// For counterparts' holdAfter (see ConformanceCounterpart): a back office that stops reading a delivery
// after some bytes until released, so the suite can see whether the adapter reads ahead of what it sends.
import type { Readable } from 'node:stream';

export interface Hold {
  limit: number;
  reached: () => void;
  waiting: (() => void)[];
  released: boolean;
}

/** A hold after `bytes` and the handle the suite gets; `onRelease` runs on release (e.g. to forget it). */
export function createHold(bytes: number, onRelease: (hold: Hold) => void = () => undefined): { hold: Hold; handle: { reached: Promise<void>; release: () => void } } {
  let reached!: () => void;
  const promise = new Promise<void>((resolve) => (reached = resolve));
  const hold: Hold = { limit: bytes, reached, waiting: [], released: false };
  return {
    hold,
    handle: {
      reached: promise,
      release: () => {
        hold.released = true;
        onRelease(hold);
        hold.waiting.splice(0).forEach((resume) => resume());
      },
    },
  };
}

/** Counts what `stream` delivers; pauses it once the hold's limit is reached, until release. Call before 'data' listeners run. */
export function pauseAtHold(hold: Hold | undefined, stream: Readable): void {
  if (!hold) return;
  let read = 0;
  stream.on('data', (chunk: Buffer) => {
    read += chunk.length;
    if (!hold.released && read >= hold.limit && !hold.waiting.length) {
      stream.pause();
      hold.waiting.push(() => stream.resume());
      hold.reached();
    }
  });
}
