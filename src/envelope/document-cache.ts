// Keeps what the intake already has of a submission — its bytes and, once parsed, its DOM — for the
// delivery stage, which usually runs in the same process moments later: parse each document once, not
// once per stage. Bounded by an estimate of the memory held; the oldest entries go first. A miss (another
// instance delivers, the entry was evicted, the process restarted) just reads and parses again.
import type { Document } from '@xmldom/xmldom';
import { decodeXml } from './decode';
import { lazyDom } from './dom';
import { parseElementTree, TREE_BYTES_PER_TEXT_BYTE, type TreeNode } from './element-tree';

/** xmldom's tree of an XÖV message takes about this many times the bytes of its text (heap measured on the XBau fixtures: 20–24×). */
const DOM_BYTES_PER_TEXT_BYTE = 24;

/** Estimated heap of an entry: the bytes, the decoded text (up to two bytes per character), the DOM and the element tree. */
function cost(entry: Entry): number {
  const { length } = entry.raw;
  return length * (1 + (entry.text !== undefined ? 2 : 0) + (entry.dom ? DOM_BYTES_PER_TEXT_BYTE : 0) + (entry.tree ? TREE_BYTES_PER_TEXT_BYTE : 0));
}

export interface CachedDocument {
  readonly raw: Buffer;
  /** The DOM, parsed on first use (and then kept). */
  document(): Document;
  /** The element tree (mappings of plain paths), parsed on first use (and then kept). */
  tree(): TreeNode;
}

interface Entry {
  raw: Buffer;
  text?: string;
  dom?: Document;
  tree?: TreeNode;
  /** Deliveries that still need it; the entry goes when the last one is done. */
  uses: number;
  cost: number;
}

export class DocumentCache {
  private readonly entries = new Map<string, Entry>();
  private held = 0;

  constructor(private readonly maxBytes: number) {}

  /**
   * Keeps a submission's bytes (and its text and DOM, if the intake had them) for `uses` deliveries.
   * Nothing is kept when the budget is 0 or the one document alone would exceed it.
   */
  put(id: string, raw: Buffer, uses: number, parsed?: { text: string; dom?: Document; tree?: TreeNode }): void {
    this.delete(id);
    const entry: Entry = { raw, text: parsed?.text, dom: parsed?.dom, tree: parsed?.tree, uses, cost: 0 };
    entry.cost = cost(entry);
    if (uses <= 0 || entry.cost > this.maxBytes) return;
    this.entries.set(id, entry);
    this.held += entry.cost;
    this.evict();
  }

  /** The submission's bytes and lazily its DOM or element tree, from the cache or else from `load` (not cached then). */
  async open(id: string, load: () => Promise<Buffer>): Promise<CachedDocument> {
    const cached = this.entries.get(id);
    // A miss is served from a transient entry: parsed at most once for this delivery, not kept.
    const entry: Entry = cached ?? { raw: await load(), uses: 1, cost: 0 };
    const parsed = () => {
      if (this.entries.get(id) !== entry) return;
      const updated = cost(entry);
      this.held += updated - entry.cost;
      entry.cost = updated;
      this.evict(id);
    };
    return {
      raw: entry.raw,
      document: () => {
        if (!entry.dom) {
          entry.dom = lazyDom(entry.text ?? entry.raw)();
          parsed();
        }
        return entry.dom;
      },
      tree: () => {
        if (!entry.tree) {
          entry.tree = parseElementTree(entry.text ?? decodeXml(entry.raw));
          parsed();
        }
        return entry.tree;
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
