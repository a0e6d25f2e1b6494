// The declarative mapping engine: a mapping file turns a parsed message into the payload one back office expects.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import type { Document } from '@xmldom/xmldom';
import { compileXPath, type CompiledXPath } from '../envelope/xpath';
import { decodeXml } from '../envelope/decode';
import { parseElementTree, type TreeNode } from '../envelope/element-tree';
import { describeIssues } from '../config/schema';
import { InputError } from '../errors';
import type { Payload } from '../deliver/adapter';
import { compileTransform, transformSchema, TransformError, type Scalar, type Transform } from './transforms';

type FieldInput =
  | string
  | {
      xpath?: string;
      fact?: string;
      value?: string | number | boolean;
      concat?: FieldInput[];
      separator?: string;
      each?: string;
      fields?: Record<string, FieldInput>;
      transforms?: z.input<typeof transformSchema>[];
      required?: boolean;
      default?: string | number | boolean;
    };

const fieldSchema: z.ZodType<FieldInput> = z.lazy(() =>
  z.union([
    z.string().min(1),
    z.strictObject({
      xpath: z.string().min(1).optional(),
      fact: z.string().min(1).optional(),
      value: z.union([z.string(), z.number(), z.boolean()]).optional(),
      concat: z.array(fieldSchema).min(1).optional(),
      separator: z.string().optional(),
      each: z.string().min(1).optional(),
      fields: z.record(z.string(), fieldSchema).optional(),
      transforms: z.array(transformSchema).optional(),
      required: z.boolean().optional(),
      default: z.union([z.string(), z.number(), z.boolean()]).optional(),
    }),
  ]),
);

export const mappingSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/),
  description: z.string().optional(),
  /** `json`: build an object from `fields`. `xml`: pass the message through byte for byte. */
  output: z.enum(['json', 'xml']),
  namespaces: z.record(z.string(), z.string()).default({}),
  codeLists: z.record(z.string(), z.record(z.string(), z.string())).default({}),
  fields: z.record(z.string(), fieldSchema).optional(),
});

export type JsonValue = string | number | boolean | JsonValue[] | { [key: string]: JsonValue };

/** A mapping failed for this message: permanent for this message and mapping version. */
export class MappingError extends Error {
  constructor(
    readonly code: 'mapping-required-field' | 'mapping-failed',
    readonly detail: string,
  ) {
    super(`${code}: ${detail}`);
  }
}

/** The input a mapping runs on. */
export interface MappingInput {
  document: Document;
  raw: Buffer;
  /** `raw` decoded, if the caller has it already. */
  text?: string;
  /** The element tree of `raw`, if the caller has it already (built on the intake's strict pass). */
  tree?: TreeNode;
  facts: Readonly<Record<string, string | boolean | undefined>>;
}

type Evaluate = (context: unknown, input: MappingInput) => JsonValue | undefined;

/** A compiled mapping, ready to run. */
export interface Mapping {
  readonly name: string;
  readonly output: 'json' | 'xml';
  /**
   * Whether `run` reads `input.document`, the DOM: not for pass-through, nor for a mapping of plain paths
   * only (it parses the message into a lighter element tree itself), nor for one of facts and constants.
   */
  readonly needsDocument: boolean;
  /** Whether `run` reads the element tree (a mapping of plain paths only): `input.tree`, else it parses one. */
  readonly readsTree: boolean;
  run(input: MappingInput): Payload;
}

const isEmpty = (value: unknown) =>
  value === undefined || value === '' || (typeof value === 'object' && value !== null && Object.keys(value).length === 0);

/** A mapping being compiled: its spec, and every XPath expression compiled for it. */
type Compilation = z.output<typeof mappingSchema> & { readonly paths: CompiledXPath[] };

function compileField(spec: FieldInput, at: string, spec0: Compilation): Evaluate {
  const field = typeof spec === 'string' ? { xpath: spec } : spec;
  const sources = (['xpath', 'fact', 'value', 'concat', 'each', 'fields'] as const).filter((key) => field[key] !== undefined);
  const isList = field.each !== undefined;
  if (isList ? sources.length !== 2 || field.fields === undefined : sources.length !== 1) {
    throw new Error(`${at}: give exactly one of xpath, fact, value, concat, fields (or each together with fields)`);
  }
  const compileOrThrow = (expression: string, where: string): CompiledXPath => {
    try {
      const compiled = compileXPath(expression, spec0.namespaces);
      spec0.paths.push(compiled);
      return compiled;
    } catch (error) {
      throw new Error(`${where}: ${(error as Error).message}`, { cause: error });
    }
  };
  const transforms: Transform[] = (field.transforms ?? []).map((t, i) => {
    try {
      return compileTransform(transformSchema.parse(t), spec0.codeLists);
    } catch (error) {
      throw new Error(`${at}.transforms[${i}]: ${(error as Error).message}`, { cause: error });
    }
  });
  if (field.default !== undefined) transforms.push(compileTransform({ default: field.default }, spec0.codeLists));

  let source: Evaluate;
  if (field.each !== undefined) {
    const each = compileOrThrow(field.each, `${at}.each`);
    const item = compileObject(field.fields!, at, spec0);
    source = (context, input) => each.nodes(context).map((node) => item(node, input)).filter((value): value is JsonValue => !isEmpty(value));
  } else if (field.fields !== undefined) {
    source = compileObject(field.fields, at, spec0);
  } else if (field.xpath !== undefined) {
    const expression = compileOrThrow(field.xpath, `${at}.xpath`);
    source = (context) => expression.string(context);
  } else if (field.fact !== undefined) {
    const fact = field.fact;
    source = (_context, input) => {
      const value = input.facts[fact];
      return value === undefined ? undefined : value;
    };
  } else if (field.value !== undefined) {
    const constant = field.value;
    source = () => constant;
  } else {
    const parts = field.concat!.map((part, i) => compileField(part, `${at}.concat[${i}]`, spec0));
    const separator = field.separator ?? '';
    source = (context, input) => {
      const values = parts.map((part) => part(context, input)).filter((v) => !isEmpty(v));
      return values.length ? values.map(String).join(separator) : undefined;
    };
  }

  const required = field.required === true;
  return (context, input) => {
    let value = source(context, input);
    if (transforms.length && !Array.isArray(value) && (typeof value !== 'object' || value === null)) {
      try {
        for (const transform of transforms) value = transform(value as Scalar) as JsonValue | undefined;
      } catch (error) {
        if (error instanceof TransformError) throw new MappingError('mapping-failed', `${at}: ${error.message}`);
        throw error;
      }
    }
    if (required && isEmpty(value)) throw new MappingError('mapping-required-field', `${at} is required but empty`);
    return isEmpty(value) ? undefined : value;
  };
}

function compileObject(fields: Record<string, FieldInput>, at: string, spec: Compilation): Evaluate {
  const entries = Object.entries(fields).map(([key, field]) => [key, compileField(field, at ? `${at}.${key}` : key, spec)] as const);
  return (context, input) => {
    const result: Record<string, JsonValue> = {};
    for (const [key, evaluate] of entries) {
      const value = evaluate(context, input);
      if (value !== undefined) result[key] = value;
    }
    return result;
  };
}

/**
 * The element tree of the message (the intake's, or parsed now); should saxes refuse what the DOM parser
 * takes (a message stored before the gate became stricter, e.g. `&#1;`), the DOM, so that it maps as
 * before rather than failing.
 */
function treeOrDom(input: MappingInput): unknown {
  if (input.tree) return input.tree;
  try {
    return parseElementTree(input.text ?? decodeXml(input.raw));
  } catch (error) {
    if (error instanceof InputError) return input.document;
    throw error;
  }
}

/** Compiles a parsed mapping document. Throws an Error whose lines name the failing paths. */
export function compileMapping(document: unknown, origin: string): Mapping {
  const parsed = mappingSchema.safeParse(document);
  if (!parsed.success) throw new Error(`${origin}:\n  ${describeIssues(parsed.error.issues).join('\n  ')}`);
  const spec = parsed.data;
  if (spec.output === 'json' && !spec.fields) throw new Error(`${origin}: output json needs fields`);
  if (spec.output === 'xml' && spec.fields) throw new Error(`${origin}: output xml passes the message through and takes no fields`);
  if (spec.output === 'xml') {
    return {
      name: spec.name,
      output: 'xml',
      needsDocument: false,
      readsTree: false,
      run: (input) => ({ body: input.raw, contentType: 'application/xml; charset=utf-8', extension: 'xml' }),
    };
  }
  let build: Evaluate;
  const compilation: Compilation = { ...spec, paths: [] };
  try {
    build = compileObject(spec.fields!, '', compilation);
  } catch (error) {
    throw new Error(`${origin}: fields.${(error as Error).message}`, { cause: error });
  }
  // Only plain paths (walked directly): the element tree is all they read, no DOM is built. No paths
  // at all (facts and constants): nothing is parsed.
  const { paths } = compilation;
  const needsDocument = paths.some((path) => !path.direct);
  const readsTree = !needsDocument && paths.length > 0;
  const context = needsDocument ? (input: MappingInput) => input.document
    : readsTree ? (input: MappingInput) => treeOrDom(input) : () => undefined;
  return {
    name: spec.name,
    output: 'json',
    needsDocument,
    readsTree,
    run: (input) => {
      const value = build(context(input), input);
      return { body: Buffer.from(JSON.stringify(value, null, 2)), contentType: 'application/json; charset=utf-8', extension: 'json' };
    },
  };
}

/** Loads and compiles `<dir>/<name>.yaml`; the file's `name` must equal its file name. */
export function loadMapping(file: string): Mapping {
  const text = readFileSync(file, 'utf8');
  const document = parseYaml(text) as unknown;
  const mapping = compileMapping(document, file);
  const expected = path.basename(file).replace(/\.ya?ml$/, '');
  if (mapping.name !== expected) throw new Error(`${file}: name "${mapping.name}" must equal the file name "${expected}"`);
  return mapping;
}
