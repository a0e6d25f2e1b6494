// Compiles XPath 1.0 expressions once, against an explicit namespace map (XPath 1.0 has no default namespace).
import xpath from 'xpath';

export type Namespaces = Record<string, string>;
export type XPathVariables = Readonly<Record<string, string | boolean | undefined>>;

/** A compiled expression bound to its namespace map. */
export interface CompiledXPath {
  readonly source: string;
  /** `variables` are available as `$name` (e.g. the routing facts: `$reader`, `$messageType`). */
  string(node: unknown, variables?: XPathVariables): string;
  boolean(node: unknown, variables?: XPathVariables): boolean;
  nodes(node: unknown, variables?: XPathVariables): Node[];
}

interface ParsedExpression {
  evaluateString(options: object): string;
  evaluateBoolean(options: object): boolean;
  select(options: object): Node[];
}

// A QName step or name test `prefix:local` (not an axis `child::`); function names have no prefix in XPath 1.0.
const PREFIXED_NAME = /(?<![\w.:-])([A-Za-z_][\w.-]*):(?!:)(?=[A-Za-z_*])/g;
const STRING_LITERAL = /"[^"]*"|'[^']*'/g;

/**
 * Compiles `source`. Throws an Error naming the problem for a syntax error or for a prefix the namespace
 * map does not define, so that configuration and mapping files fail at start-up, not on the first message.
 */
export function compileXPath(source: string, namespaces: Namespaces): CompiledXPath {
  let parsed: ParsedExpression;
  try {
    parsed = (xpath as unknown as { parse(expression: string): ParsedExpression }).parse(source);
  } catch (error) {
    throw new Error(`invalid XPath "${source}": ${(error as Error).message}`, { cause: error });
  }
  const withoutLiterals = source.replace(STRING_LITERAL, '""');
  for (const match of withoutLiterals.matchAll(PREFIXED_NAME)) {
    const prefix = match[1]!;
    if (!(prefix in namespaces)) throw new Error(`XPath "${source}" uses prefix "${prefix}" which the namespace map does not define`);
  }
  // An unset variable reads as the empty string rather than failing the evaluation.
  const options = (node: unknown, variables: XPathVariables = {}) => ({ node, namespaces, variables: (name: string) => variables[name] ?? '' });
  return {
    source,
    string: (node, variables) => parsed.evaluateString(options(node, variables)),
    boolean: (node, variables) => parsed.evaluateBoolean(options(node, variables)),
    nodes: (node, variables) => parsed.select(options(node, variables)),
  };
}
