// The adapter registry: the built-ins in one explicit list, plus adapters loaded from the adapters
// directory or from npm packages named in the configuration (`targets.<t>.package`).
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { AdapterDefinition } from './adapter';
import httpAdapter from '../../adapters/http';
import fileAdapter from '../../adapters/file';
import xdomeaAdapter from '../../adapters/xdomea';
import amqpAdapter from '../../adapters/amqp';
import sftpAdapter from '../../adapters/sftp';
import emailAdapter from '../../adapters/email';

export const BUILT_IN_ADAPTERS: readonly AdapterDefinition<never>[] = [
  httpAdapter as AdapterDefinition<never>,
  fileAdapter as AdapterDefinition<never>,
  amqpAdapter as AdapterDefinition<never>,
  sftpAdapter as AdapterDefinition<never>,
  emailAdapter as AdapterDefinition<never>,
  xdomeaAdapter as AdapterDefinition<never>,
];

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
  const registry = new Map<string, AdapterDefinition<unknown>>(BUILT_IN_ADAPTERS.map((a) => [a.name, a as AdapterDefinition<unknown>]));
  const packages = new Map<string, string>();
  for (const source of sources) {
    const { name, package: pkg } = typeof source === 'string' ? { name: source, package: undefined } : source;
    if (pkg !== undefined) {
      if (BUILT_IN_ADAPTERS.some((a) => a.name === name)) throw new Error(`adapter "${name}" is built in; a package cannot replace it (choose another name)`);
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
    const definition = loadFromDirectory(name, adaptersDir);
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
  const builtIn = BUILT_IN_ADAPTERS.find((a) => a.name === name);
  if (builtIn) return builtIn as AdapterDefinition<unknown>;
  return currentAdaptersDir === undefined ? undefined : loadFromDirectory(name, currentAdaptersDir);
}
