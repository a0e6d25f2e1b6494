// Builds the DOM (@xmldom/xmldom) for XPath, only for documents that already passed the strict gate.
import { DOMParser, type Document } from '@xmldom/xmldom';
import { InputError } from '../errors';
import { decodeXml } from './decode';

/**
 * xmldom 0.9's parser builds a new Unicode RegExp from the grammar for every end tag (`g.reg(...)` in
 * lib/sax.js) — a tenth of the router's CPU in the benchmark profile (xmldom issue #950, parser slower
 * since 0.9). `reg` is a pure function of its arguments and its expressions have no `g`/`y` flag (no
 * state between matches), so the same expression can serve every call: memoise it by the parts' sources.
 * Should a later xmldom no longer have it, parsing works as before, only slower.
 */
function memoiseGrammarRegExps(): void {
  let grammar: { reg?: (...parts: Array<RegExp | string>) => RegExp; memoised?: boolean };
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- an internal module without types or export map
    grammar = require('@xmldom/xmldom/lib/grammar') as typeof grammar;
  } catch {
    return; // (a later xmldom may close its internals with an export map)
  }
  const reg = grammar.reg;
  if (typeof reg !== 'function' || grammar.memoised) return;
  // xmldom passes the same grammar objects every time: a few entries, compared part by part (strings by value, expressions by identity).
  const compiled: Array<{ parts: Array<RegExp | string>; expression: RegExp }> = [];
  // `arguments` rather than a rest parameter: read by index only, V8 allocates no array for it (the lookup
  // runs once per end tag).
  grammar.reg = function memoisedReg(this: unknown): RegExp {
    // eslint-disable-next-line prefer-rest-params
    const args = arguments as unknown as ArrayLike<RegExp | string>;
    lookup: for (const entry of compiled) {
      if (entry.parts.length !== args.length) continue;
      for (let i = 0; i < args.length; i += 1) if (entry.parts[i] !== args[i]) continue lookup;
      return entry.expression;
    }
    const parts = Array.from(args);
    const expression = reg.apply(this, parts);
    if (!expression.global && !expression.sticky && compiled.length < 16) compiled.push({ parts, expression });
    return expression;
  };
  grammar.memoised = true;
}
memoiseGrammarRegExps();

/**
 * Parses text that passed `inspectXml`. Any warning or error from xmldom is still fatal: defence in depth,
 * so that a document the gate let through can never be half-parsed.
 */
export function parseDom(text: string): Document {
  const parser = new DOMParser({
    onError: (level, message) => {
      throw new InputError('xml-not-well-formed', `${level}: ${message.split('\n')[0]}`);
    },
  });
  try {
    return parser.parseFromString(text, 'application/xml');
  } catch (error) {
    // xmldom wraps what onError throws in a ParseError; surface our own error.
    const cause = (error as { cause?: unknown }).cause;
    if (cause instanceof InputError) throw cause;
    if (error instanceof InputError) throw error;
    throw new InputError('xml-not-well-formed', (error as Error).message.split('\n')[0] ?? 'unparseable');
  }
}

/** Parses a document (bytes or decoded text) at most once, and only when asked; `parsed()` tells whether it was. */
export function lazyDom(source: Buffer | string): (() => Document) & { parsed: () => Document | undefined } {
  let document: Document | undefined;
  return Object.assign(() => (document ??= parseDom(typeof source === 'string' ? source : decodeXml(source))), { parsed: () => document });
}
