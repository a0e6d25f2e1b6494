// The adapter registry: the built-ins in one explicit list, plus adapters loaded from the adapters
// directory or from npm packages named in the configuration (`targets.<t>.package`).
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { AdapterDefinition } from './adapter';
/* eslint-disable @typescript-eslint/no-require-imports -- built-ins are loaded when a configuration uses them */
/**
 * The built-in adapters, loaded on first use: a deployment that uses only `http` and `file` does not load
 * nodemailer, node-forge or ssh2 (about 20 MB of resident memory).
 */
const BUILT_IN: Record<string, () => AdapterDefinition<unknown>> = {
  http: () => (require('../../adapters/http') as { default: AdapterDefinition<unknown> }).default,
  file: () => (require('../../adapters/file') as { default: AdapterDefinition<unknown> }).default,
  amqp: () => (require('../../adapters/amqp') as { default: AdapterDefinition<unknown> }).default,
  sftp: () => (require('../../adapters/sftp') as { default: AdapterDefinition<unknown> }).default,
  email: () => (require('../../adapters/email') as { default: AdapterDefinition<unknown> }).default,
  xdomea: () => (require('../../adapters/xdomea') as { default: AdapterDefinition<unknown> }).default,
};
/* eslint-enable @typescript-eslint/no-require-imports */

/** Names of the built-in adapters. */
export const BUILT_IN_NAMES: readonly string[] = Object.keys(BUILT_IN);

/** A built-in adapter's definition (loaded now if it was not yet), or undefined for other names. */
export function builtInAdapter(name: string): AdapterDefinition<unknown> | undefined {
  return Object.hasOwn(BUILT_IN, name) ? BUILT_IN[name]!() : undefined;
}

export type AdapterRegistry = ReadonlyMap<string, AdapterDefinition<unknown>>;

const isDefinition = (value: unknown): value is AdapterDefinition<unknown> =>
  typeof value === 'object' && value !== null && typeof (value as AdapterDefinition).name === 'string'
  && typeof (value as AdapterDefinition).create === 'function' && typeof (value as AdapterDefinition).configSchema === 'object';

/** The adapters directory of the configuration loaded last, for `resolveAdapter`. */
let currentAdaptersDir: string | undefined;

/** The definition a module exports as `default`, as `adapter`, or as the module itself. */
function definitionOf(file: string, name: string): AdapterDefinition<unknown> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- adapters are loaded by path at start-up
  const loaded = require(file) as { default?: unknown; adapter?: unknown };
  const definition = [loaded.default, loaded.adapter, loaded].find(isDefinition);
  if (!definition) throw new Error(`${file}: does not export an adapter definition (default or "adapter")`);
  if (definition.name !== name) throw new Error(`${file}: adapter is named "${definition.name}", expected "${name}"`);
  return definition;
}

/** `<dir>/<name>/index.(js|ts)` if it exists; throws if it does not export a definition named `name`. */
function loadFromDirectory(name: string, adaptersDir: string): AdapterDefinition<unknown> | undefined {
  const base = path.resolve(adaptersDir, name, 'index');
  if (!['.js', '.ts'].some((ext) => existsSync(base + ext))) return undefined;
  return definitionOf(base, name);
}

/** Where an adapter comes from when it is not built in. */
export interface AdapterSource {
  /** Adapter name (`targets.<t>.adapter`). */
  name: string;
  /** npm package exporting it (`targets.<t>.package`), resolved from `packagesFrom` then the working directory. */
  package?: string;
}

/**
 * Built-ins plus, for each adapter the configuration uses that is not built in: the named npm package, or
 * else `<adaptersDir>/<name>/index`. Throws on a package that is missing, exports no definition, is named
 * differently, would replace a built-in, or is given differently for the same adapter name.
 */
export function loadAdapters(sources: Iterable<string | AdapterSource>, adaptersDir: string, packagesFrom: string = process.cwd()): AdapterRegistry {
  currentAdaptersDir = adaptersDir;
  const registry = new Map<string, AdapterDefinition<unknown>>();
  const packages = new Map<string, string>();
  for (const source of sources) {
    const { name, package: pkg } = typeof source === 'string' ? { name: source, package: undefined } : source;
    if (pkg !== undefined) {
      if (BUILT_IN_NAMES.includes(name)) throw new Error(`adapter "${name}" is built in; a package cannot replace it (choose another name)`);
      const earlier = packages.get(name);
      if (earlier !== undefined && earlier !== pkg) throw new Error(`adapter "${name}" is given as package "${earlier}" and as "${pkg}"`);
      if (earlier !== undefined) continue;
      let file: string;
      try {
        file = require.resolve(pkg, { paths: [packagesFrom, process.cwd()] });
      } catch {
        throw new Error(`adapter package "${pkg}" is not installed (looked from ${packagesFrom} and ${process.cwd()}; run npm install ${pkg})`);
      }
      registry.set(name, definitionOf(file, name));
      packages.set(name, pkg);
      continue;
    }
    if (registry.has(name)) continue;
    const definition = builtInAdapter(name) ?? loadFromDirectory(name, adaptersDir);
    if (definition) registry.set(name, definition);
  }
  return registry;
}

/**
 * One adapter definition by name, for adapters that hand their result to another adapter (e.g. `xdomea`
 * to `file`, `sftp` or `http`): a built-in, else one from the adapters directory of the configuration
 * being loaded. Throws if that directory holds a broken adapter of this name.
 */
export function resolveAdapter(name: string): AdapterDefinition<unknown> | undefined {
  const builtIn = builtInAdapter(name);
  if (builtIn) return builtIn;
  return currentAdaptersDir === undefined ? undefined : loadFromDirectory(name, currentAdaptersDir);
}
