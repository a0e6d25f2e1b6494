// The adapter registry: the built-ins in one explicit list, plus adapters loaded from the adapters directory.
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

/** `<dir>/<name>/index.(js|ts)` if it exists; throws if it does not export a definition named `name`. */
function loadFromDirectory(name: string, adaptersDir: string): AdapterDefinition<unknown> | undefined {
  const base = path.resolve(adaptersDir, name, 'index');
  if (!['.js', '.ts'].some((ext) => existsSync(base + ext))) return undefined;
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- adapters are loaded by path at start-up
  const loaded = require(base) as { default?: unknown; adapter?: unknown };
  const definition = loaded.default ?? loaded.adapter;
  if (!isDefinition(definition)) throw new Error(`${base}: does not export an adapter definition (default or "adapter")`);
  if (definition.name !== name) throw new Error(`${base}: adapter is named "${definition.name}", expected "${name}"`);
  return definition;
}

/** Built-ins plus `<adaptersDir>/<name>/index` for each adapter name the configuration uses that is not built in. */
export function loadAdapters(names: Iterable<string>, adaptersDir: string): AdapterRegistry {
  currentAdaptersDir = adaptersDir;
  const registry = new Map<string, AdapterDefinition<unknown>>(BUILT_IN_ADAPTERS.map((a) => [a.name, a as AdapterDefinition<unknown>]));
  for (const name of names) {
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
