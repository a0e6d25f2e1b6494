// Loads a deployment's YAML configuration, validates all of it (schema, references, adapter configs,
// mappings, XPath) and returns it compiled and frozen. `antragsrouter check` runs exactly this.
import { accessSync, constants, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseDocument } from 'yaml';
import { ConfigError } from '../errors';
import { compileFacts, type FactExtractor } from '../envelope/envelope';
import { compileXPath } from '../envelope/xpath';
import { compileRouter, type Router } from '../route/router';
import { loadMapping, type Mapping } from '../map/mapping';
import type { AdapterDefinition } from '../deliver/adapter';
import type { RateLimit } from '../deliver/rate-limit';
import { BUILT_IN_NAMES, loadAdapters } from '../deliver/registry';
import { configSchema, describeIssues, formatPath, type RawConfig, type RetryPolicy } from './schema';

export interface TargetPlan {
  name: string;
  adapter: AdapterDefinition<unknown>;
  adapterConfig: unknown;
  mapping: Mapping;
  retry: RetryPolicy;
  concurrency: number;
  rateLimit?: RateLimit;
  maxInFlight?: number;
}

export interface LoadedConfig {
  source: string;
  raw: RawConfig;
  router: Router;
  extractFacts: FactExtractor;
  targets: ReadonlyMap<string, TargetPlan>;
}

/** Reads and validates `file`. Throws ConfigError listing every problem by path. */
export function loadConfig(file: string): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError([`${file}: cannot read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`]);
  }
  const document = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (document.errors.length) throw new ConfigError(document.errors.map((e) => `${file}: ${e.message.split('\n')[0]}`));
  const problems: string[] = [];
  const interpolated = interpolate(document.toJS() as unknown, process.env, [], problems);
  if (problems.length) throw new ConfigError(problems);
  return compileConfig(interpolated, file);
}

const VARIABLE = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/**
 * Replaces `${NAME}` and `${NAME:-default}` in string values with environment variables, so that one
 * configuration serves several environments (and credentials stay out of the file). A variable that is
 * unset and has no default is a problem named by its path; its value is never part of any message.
 */
export function interpolate(value: unknown, env: NodeJS.ProcessEnv, at: PropertyKey[], problems: string[]): unknown {
  if (typeof value === 'string') {
    return value.replace(VARIABLE, (_match, name: string, fallback: string | undefined) => {
      const found = env[name];
      if (found !== undefined && found !== '') return found;
      if (fallback !== undefined) return fallback;
      problems.push(`${formatPath(at) || '(top level)'}: environment variable ${name} is not set`);
      return '';
    });
  }
  if (Array.isArray(value)) return value.map((item, i) => interpolate(item, env, [...at, i], problems));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, interpolate(item, env, [...at, key], problems)]));
  }
  return value;
}

/** Validates and compiles an already parsed configuration document. */
export function compileConfig(input: unknown, source: string): LoadedConfig {
  const parsed = configSchema.safeParse(input);
  if (!parsed.success) throw new ConfigError(describeIssues(parsed.error.issues));
  const raw = parsed.data;
  const problems: string[] = [];
  const attempt = <T>(where: string, build: () => T): T | undefined => {
    try {
      return build();
    } catch (error) {
      problems.push(`${where}: ${(error as Error).message}`);
      return undefined;
    }
  };

  const adapterSources = Object.values(raw.targets).map((t) => ({ name: t.adapter, package: t.package }));
  const adapters = attempt('adapters', () => loadAdapters(adapterSources, raw.adaptersDir, path.dirname(path.resolve(source)))) ?? new Map();
  const mappings = new Map<string, Mapping | undefined>();
  const targets = new Map<string, TargetPlan>();
  for (const [name, target] of Object.entries(raw.targets)) {
    const at = `targets.${name}`;
    const adapter = adapters.get(target.adapter);
    if (!adapter) problems.push(`${at}.adapter: unknown adapter "${target.adapter}" (known: ${[...new Set([...BUILT_IN_NAMES, ...adapters.keys()])].join(', ')})`);
    const adapterConfig = adapter && adapter.configSchema.safeParse(target.config);
    if (adapterConfig && !adapterConfig.success) problems.push(...describeIssues(adapterConfig.error.issues, [...at.split('.'), 'config']));
    if (!mappings.has(target.mapping)) {
      mappings.set(target.mapping, attempt(`${at}.mapping`, () => loadMapping(path.resolve(raw.mappingsDir, `${target.mapping}.yaml`))));
    }
    const mapping = mappings.get(target.mapping);
    if (adapter && adapterConfig?.success && mapping) {
      targets.set(name, {
        name,
        adapter,
        adapterConfig: adapterConfig.data,
        mapping,
        retry: { ...raw.delivery.retry, ...target.retry },
        concurrency: target.concurrency ?? adapter.defaultConcurrency,
        rateLimit: target.rateLimit,
        maxInFlight: target.maxInFlight,
      });
    }
  }
  for (const [name, client] of Object.entries(raw.auth?.clients ?? {})) {
    (client.targets ?? []).forEach((target, i) => {
      if (!(target in raw.targets)) problems.push(`auth.clients.${name}.targets[${i}]: unknown target "${target}"`);
    });
  }
  raw.routes.forEach((route, index) => {
    route.deliver.forEach((target, i) => {
      if (!(target in raw.targets)) problems.push(`routes[${index}].deliver[${i}]: unknown target "${target}"`);
    });
    if (raw.routes.findIndex((r) => r.name === route.name) !== index) problems.push(`routes[${index}].name: duplicate route name "${route.name}"`);
    (route.match.xpath ?? []).forEach((expression, i) => attempt(`routes[${index}].match.xpath[${i}]`, () => compileXPath(expression, raw.namespaces)));
    for (const fact of Object.keys(route.match.facts ?? {})) {
      if (!(fact in raw.facts)) problems.push(`routes[${index}].match.facts.${fact}: fact "${fact}" is not defined under facts`);
    }
  });
  for (const [name, expressions] of Object.entries(raw.facts)) expressions.forEach((e, i) => attempt(`facts.${name}[${i}]`, () => compileXPath(e, raw.namespaces)));
  // Schema files must be readable now; they are compiled when the router starts (src/envelope/schema-validation.ts).
  raw.validation.schemas.forEach((set, index) => set.xsd.forEach((file, i) => {
    try {
      accessSync(path.resolve(file), constants.R_OK);
    } catch (error) {
      problems.push(`validation.schemas[${index}].xsd[${i}]: cannot read ${file} (${(error as NodeJS.ErrnoException).code})`);
    }
  }));
  if (problems.length) throw new ConfigError(problems);

  return Object.freeze({
    source,
    raw: deepFreeze(raw),
    router: compileRouter(raw.routes, raw.namespaces),
    extractFacts: compileFacts(raw.facts, raw.namespaces),
    targets,
  });
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
