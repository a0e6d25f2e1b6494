// Keeps what the intake already has of a submission — its bytes, the payloads it mapped and, once parsed, its DOM — for the
// delivery stage, which usually runs in the same process moments later: parse each document once, not
// once per stage. Bounded by an estimate of the memory held; the oldest entries go first. A miss (another
// instance delivers, the entry was evicted, the process restarted) just reads and parses again.
import type { Document } from '@xmldom/xmldom';
import { lazyDom } from './dom';
import type { Payload } from '../deliver/adapter';
import type { MappingError } from '../map/mapping';

/** xmldom's tree of an XÖV message takes about this many times the bytes of its text (heap measured on the XBau fixtures: 20–24×). */
const DOM_BYTES_PER_TEXT_BYTE = 24;
/** A target's payload as its mapping gave it at intake — or the mapping's refusal, which the delivery reports as its own. */
export type Mapped = { payload: Payload } | { error: MappingError };

export interface CachedDocument {
  readonly raw: Buffer;
  /** The decoded text, when the intake kept it (it is not decoded again). */
  readonly text?: string;
  /** Payloads the intake mapped, by target. */
  readonly mapped?: ReadonlyMap<string, Mapped>;
  /** The DOM, parsed on first use (and then kept). */
  document(): Document;
}

interface Entry {
  raw: Buffer;
  text?: string;
  dom?: Document;
  mapped?: ReadonlyMap<string, Mapped>;
  /** Deliveries that still need it; the entry goes when the last one is done. */
  uses: number;
  cost: number;
}

/** The estimated memory of an entry: the bytes, plus the DOM or else the decoded text (up to two bytes per character), plus the payloads. */
function costOf({ raw, text, dom, mapped }: Pick<Entry, 'raw' | 'text' | 'dom' | 'mapped'>): number {
  let payloads = 0;
  for (const result of mapped?.values() ?? []) payloads += 'payload' in result ? result.payload.body.length : 0;
  return raw.length * (dom ? DOM_BYTES_PER_TEXT_BYTE + 1 : text !== undefined ? 3 : 1) + payloads;
}

export class DocumentCache {
  private readonly entries = new Map<string, Entry>();
  private held = 0;

  constructor(private readonly maxBytes: number) {}

  /**
   * Keeps a submission's bytes (and its text, DOM and mapped payloads, if the intake had them) for `uses` deliveries.
   * Nothing is kept when the budget is 0 or the one document alone would exceed it.
   */
  put(id: string, raw: Buffer, uses: number, parsed?: { text: string; dom?: Document; mapped?: ReadonlyMap<string, Mapped> }): void {
    this.delete(id);
    const entry = { raw, text: parsed?.text, dom: parsed?.dom, mapped: parsed?.mapped, uses, cost: 0 };
    entry.cost = costOf(entry);
    if (uses <= 0 || entry.cost > this.maxBytes) return;
    this.entries.set(id, entry);
    this.held += entry.cost;
    this.evict();
  }

  /** The submission's bytes and lazily its DOM, from the cache or else from `load` (not cached then). */
  async open(id: string, load: () => Promise<Buffer>): Promise<CachedDocument> {
    const entry = this.entries.get(id);
    if (!entry) {
      const raw = await load();
      return { raw, document: lazyDom(raw) };
    }
    return {
      raw: entry.raw,
      text: entry.text,
      mapped: entry.mapped,
      document: () => {
        if (!entry.dom) {
          entry.dom = lazyDom(entry.text ?? entry.raw)();
          entry.text = undefined;
          if (this.entries.get(id) === entry) {
            const cost = costOf(entry);
            this.held += cost - entry.cost;
            entry.cost = cost;
            this.evict(id);
          }
        }
        return entry.dom;
      },
    };
  }

  /** One delivery of the submission is finished (delivered or dead): the entry goes after its last one. */
  release(id: string): void {
    const entry = this.entries.get(id);
    if (entry && --entry.uses <= 0) this.delete(id);
  }

  delete(id: string): void {
    const entry = this.entries.get(id);
    if (!entry) return;
    this.entries.delete(id);
    this.held -= entry.cost;
  }

  /** Estimated bytes held and number of entries (for tests and metrics). */
  size(): { bytes: number; entries: number } {
    return { bytes: this.held, entries: this.entries.size };
  }

  /** Drops the oldest entries (other than `keep`) until the estimate fits the budget. */
  private evict(keep?: string): void {
    for (const [id] of this.entries) {
      if (this.held <= this.maxBytes) return;
      if (id !== keep) this.delete(id);
    }
    if (this.held > this.maxBytes && keep) this.delete(keep);
  }
}
