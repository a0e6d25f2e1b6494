// Facts the intake reads on its one streaming pass, without building a DOM: XPath expressions that are a
// plain absolute path of element names — `/*/xbau:bauvorhaben/xbau:verortung/code` or the same inside
// `string(...)` — are answered by the strict gate as it streams (the string value of the first matching
// element, as XPath's string() gives it). Anything else (predicates, axes, functions, attributes, `//`)
// is not recognised here and is evaluated on the DOM as before.
import type { Namespaces } from './xpath';

/** One step of a plain path: an element name (namespace URI '' for unprefixed names), or `*`. */
export interface PathStep {
  namespace: string | undefined;
  localName: string | undefined;
  /** `[1]`: only the first such child of each parent. */
  first?: boolean;
}

/** A plain absolute element path, as the gate matches it. */
export type ElementPath = readonly PathStep[];

// A name: an NCName (letters, digits, '.', '-', '_'; not starting with a digit, '.' or '-').
const NCNAME = '[A-Za-z_][\\w.-]*';
const STEP = new RegExp(`^(?:\\*|(?:(${NCNAME}):)?(${NCNAME}))(\\[1\\])?$`);

/** A plain location path: child steps of element names, optionally ending in one attribute step. */
export interface PlainPath {
  /** Starts at the root (`/…`); otherwise relative to the context node. */
  absolute: boolean;
  steps: ElementPath;
  /** A final `@name` / `@prefix:name` step. */
  attribute?: { namespace: string; localName: string };
  /** Inside `string(…)` or `local-name(…)`: a string, not a node-set. */
  fn?: 'string' | 'local-name';
}

/**
 * The plain path `expression` consists of, or undefined when it is anything more than `step/step/…`
 * (absolute with a leading `/` or relative), steps `*`, `name` or `prefix:name`, each optionally `[1]`,
 * optionally a final `@name`, the whole optionally inside `string(…)` or `local-name(…)`.
 */
export function plainPath(expression: string, namespaces: Namespaces): PlainPath | undefined {
  let path = expression.trim();
  const wrapped = /^(string|local-name)\s*\(\s*([^()]*?)\s*\)$/.exec(path);
  if (wrapped) path = wrapped[2]!;
  if (path.startsWith('//')) return undefined;
  const absolute = path.startsWith('/');
  const parts = (absolute ? path.slice(1) : path).split('/');
  let attribute: PlainPath['attribute'];
  const last = parts[parts.length - 1]!;
  if (last.startsWith('@')) {
    const match = STEP.exec(last.slice(1));
    if (!match || last === '@*' || match[3]) return undefined;
    const [, prefix, localName] = match;
    const namespace = prefix === undefined ? '' : namespaces[prefix];
    if (namespace === undefined) return undefined;
    attribute = { namespace, localName: localName! };
    parts.pop();
    if (!parts.length && absolute) return undefined;
  }
  const steps: PathStep[] = [];
  for (const step of parts) {
    const match = STEP.exec(step);
    if (!match) return undefined;
    const [, prefix, localName, first] = match;
    const namespace = localName === undefined ? undefined : prefix === undefined ? '' : namespaces[prefix];
    if (localName !== undefined && namespace === undefined) return undefined;
    steps.push({ namespace, localName, ...(first ? { first: true } : {}) });
  }
  if (!steps.length && !attribute) return undefined;
  return { absolute, steps, ...(attribute ? { attribute } : {}), ...(wrapped ? { fn: wrapped[1] as PlainPath['fn'] } : {}) };
}

/**
 * The element path `expression` consists of, or undefined when it is anything more than
 * `/step/step/...` or `string(/step/...)` with steps `*`, `name` or `prefix:name`.
 */
export function elementPath(expression: string, namespaces: Namespaces): ElementPath | undefined {
  const path = plainPath(expression, namespaces);
  if (!path?.absolute || path.attribute || (path.fn && path.fn !== 'string') || path.steps.some((step) => step.first)) return undefined;
  return path.steps;
}

/** Whether the open elements (root first) are exactly what `path` selects. */
export function matchesPath(path: ElementPath, open: ReadonlyArray<{ namespace: string; localName: string }>): boolean {
  if (path.length !== open.length) return false;
  for (let i = 0; i < path.length; i += 1) {
    const step = path[i]!;
    const element = open[i]!;
    if (step.localName !== undefined && (step.localName !== element.localName || step.namespace !== element.namespace)) return false;
  }
  return true;
}
