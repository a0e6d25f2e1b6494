// compileConfig on configuration objects: a valid one compiles (defaults, units, retry merge), every
// problem is reported by its path, and all problems are reported together.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError } from '../errors';
import { parseDom } from '../envelope/dom';
import { compileConfig, loadConfig } from './load';
import { retrySchema } from './schema';

const MAPPINGS = path.resolve(__dirname, '../../mappings');
/** The schema's default retry policy. */
const DEFAULT_RETRY = retrySchema.parse({});

let adaptersDir: string;
beforeAll(() => {
  // An empty adapters directory: only the built-in adapters exist, whatever the working directory.
  adaptersDir = mkdtempSync(path.join(os.tmpdir(), 'config-adapters-'));
});
afterAll(() => rmSync(adaptersDir, { recursive: true, force: true }));

interface TestRoute {
  [key: string]: unknown;
  name: string;
  deliver: string[];
  match?: Record<string, unknown>;
}
interface TestTarget {
  adapter: string;
  mapping: string;
  config?: Record<string, unknown>;
  retry?: Record<string, unknown>;
  concurrency?: number;
}
interface TestConfig {
  [key: string]: unknown;
  facts: Record<string, string | string[]>;
  targets: Record<string, TestTarget>;
  routes: TestRoute[];
}

/** A valid configuration; tests change a copy of it. */
const base = (): TestConfig => ({
  mappingsDir: MAPPINGS,
  adaptersDir,
  namespaces: { xbau: 'http://www.xleitstelle.de/xbau/2/6' },
  facts: { gemeinde: '/*/xbau:empfangendeStelle/kennung' },
  targets: {
    lbk: { adapter: 'http', mapping: 'xbau-bauantrag-json', config: { url: 'http://127.0.0.1:9/bauantrag' } },
    archiv: { adapter: 'file', mapping: 'xml-passthrough', config: { directory: '/tmp/archiv' } },
  },
  routes: [
    { name: 'archiv', deliver: ['archiv'], continue: true },
    { name: 'muenchen', match: { reader: 'bab:09162000' }, deliver: ['lbk'] },
  ],
});

function problems(change: (config: TestConfig) => void): string[] {
  const config = base();
  change(config);
  try {
    compileConfig(config, 'test.yaml');
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error('the configuration compiled');
}

describe('a valid configuration', () => {
  it('compiles with defaults, targets with adapter, mapping and retry policy', () => {
    const loaded = compileConfig(base(), 'test.yaml');
    expect(loaded.source).toBe('test.yaml');
    expect(loaded.raw.instance).toBe('antragsrouter');
    expect(loaded.raw.server).toEqual({ host: '127.0.0.1', port: 8080, maxBodySize: 10 * 1024 * 1024 });
    expect(loaded.raw.xml).toEqual({ maxDepth: 64, maxElements: 250_000 });
    expect(loaded.raw.routes[0]).toEqual({ name: 'archiv', match: {}, deliver: ['archiv'], continue: true });
    expect([...loaded.targets.keys()]).toEqual(['lbk', 'archiv']);
    const lbk = loaded.targets.get('lbk')!;
    expect(lbk.adapter.name).toBe('http');
    expect(lbk.mapping.name).toBe('xbau-bauantrag-json');
    expect(lbk.concurrency).toBe(8);
    expect(DEFAULT_RETRY).toEqual({ maxAttempts: expect.any(Number), initialDelay: 1000, maxDelay: expect.any(Number), multiplier: 2 });
    expect(lbk.retry).toEqual(DEFAULT_RETRY);
    // The adapter's own schema filled its defaults.
    expect(lbk.adapterConfig).toMatchObject({ url: 'http://127.0.0.1:9/bauantrag', method: 'POST', timeoutMs: 30_000, idempotencyHeader: 'Idempotency-Key' });
    const archiv = loaded.targets.get('archiv')!;
    expect(archiv.mapping.output).toBe('xml');
    expect(archiv.concurrency).toBe(4);
    expect(archiv.adapterConfig).toEqual({ directory: '/tmp/archiv', fileName: '{submissionId}.{ext}', createDirectory: true });
  });

  it('the compiled router and fact extractor work', () => {
    const loaded = compileConfig(base(), 'test.yaml');
    const document = parseDom('<xbau:a xmlns:xbau="http://www.xleitstelle.de/xbau/2/6"><xbau:empfangendeStelle><kennung> bab:09162000 </kennung></xbau:empfangendeStelle></xbau:a>');
    expect(loaded.extractFacts(() => document, {})).toEqual({ gemeinde: 'bab:09162000' });
    expect(loaded.router.decide({ facts: { reader: 'bab:09162000' }, document: () => document })).toEqual({
      routes: ['archiv', 'muenchen'],
      targets: [{ target: 'archiv', route: 'archiv' }, { target: 'lbk', route: 'muenchen' }],
    });
  });

  it('is frozen', () => {
    const loaded = compileConfig(base(), 'test.yaml');
    expect(Object.isFrozen(loaded.raw.routes[1]!.match)).toBe(true);
    expect(() => {
      (loaded.raw.routes as unknown as unknown[]).push({});
    }).toThrow(TypeError);
  });

  it('parses durations and sizes', () => {
    const loaded = compileConfig({ ...base(), server: { maxBodySize: '10mb' }, delivery: { retry: { initialDelay: '5s', maxDelay: '2m', maxAttempts: 3 } } }, 'test.yaml');
    expect(loaded.raw.server.maxBodySize).toBe(10_485_760);
    expect(loaded.raw.delivery.retry).toEqual({ maxAttempts: 3, initialDelay: 5000, maxDelay: 120_000, multiplier: DEFAULT_RETRY.multiplier });
    expect(compileConfig({ ...base(), server: { maxBodySize: '512KB' }, delivery: { retry: { initialDelay: '250ms', maxDelay: '1.5h' } } }, 't').raw)
      .toMatchObject({ server: { maxBodySize: 524_288 }, delivery: { retry: { initialDelay: 250, maxDelay: 5_400_000 } } });
    expect(compileConfig({ ...base(), delivery: { retry: { initialDelay: 1500 } } }, 't').raw.delivery.retry.initialDelay).toBe(1500);
  });

  it('a target\'s retry overrides only the keys it gives; the rest comes from delivery.retry', () => {
    const config = base();
    config.delivery = { retry: { maxAttempts: 3, initialDelay: '5s' } };
    config.targets.lbk!.retry = { maxDelay: '1m' };
    config.targets.lbk!.concurrency = 2;
    const loaded = compileConfig(config, 'test.yaml');
    expect(loaded.targets.get('lbk')!.retry).toEqual({ maxAttempts: 3, initialDelay: 5000, maxDelay: 60_000, multiplier: DEFAULT_RETRY.multiplier });
    expect(loaded.targets.get('lbk')!.concurrency).toBe(2);
    expect(loaded.targets.get('archiv')!.retry).toEqual({ maxAttempts: 3, initialDelay: 5000, maxDelay: DEFAULT_RETRY.maxDelay, multiplier: DEFAULT_RETRY.multiplier });
    // Unset keys of the override are absent, not undefined (undefined would overwrite in the spread).
    expect(loaded.raw.targets.lbk!.retry).toEqual({ maxDelay: 60_000 });
  });
});

describe('problems are named by path', () => {
  it('an unknown top-level key', () => {
    expect(problems((c) => {
      c.rotues = [];
    })).toEqual(['(top level): unknown key(s) "rotues"']);
  });

  it('an unknown key inside a route and inside its match', () => {
    expect(problems((c) => {
      c.routes[0]!.matches = {};
    })).toEqual(['routes[0]: unknown key(s) "matches"']);
    expect(problems((c) => {
      c.routes[1]!.match!.leser = 'bab:*';
    })).toEqual(['routes[1].match: unknown key(s) "leser"']);
  });

  it('an invalid value names its path', () => {
    expect(problems((c) => {
      c.routes[1]!.match!.tenant = '0916200';
    })).toEqual(['routes[1].match.tenant: an AGS has 8 digits, an ARS 12']);
    expect(problems((c) => {
      c.routes[0]!.name = 'Archiv';
    })).toEqual(['routes[0].name: use lower-case letters, digits, "-" and "_"']);
  });

  it('a bad duration or size', () => {
    expect(problems((c) => {
      c.delivery = { retry: { initialDelay: '5 parsecs' } };
      c.server = { maxBodySize: 'huge' };
    })).toEqual([
      'server.maxBodySize: "huge" is not a size (e.g. 512kb, 10mb)',
      'delivery.retry.initialDelay: "5 parsecs" is not a duration (e.g. 500ms, 5s, 2m, 1h)',
    ]);
  });

  it('a dangling target reference', () => {
    expect(problems((c) => {
      c.routes.push({ name: 'x', deliver: ['archiv', 'x'] });
    })).toEqual(['routes[2].deliver[1]: unknown target "x"']);
    expect(problems((c) => {
      c.routes[1]!.deliver = ['x'];
    })).toEqual(['routes[1].deliver[0]: unknown target "x"']);
  });

  it('an unknown adapter', () => {
    expect(problems((c) => {
      c.targets.t = { adapter: 'htp', mapping: 'xml-passthrough' };
    })).toEqual(['targets.t.adapter: unknown adapter "htp" (known: http, file, amqp, sftp, email, xdomea)']);
  });

  it('an invalid adapter configuration', () => {
    expect(problems((c) => {
      c.targets.t = { adapter: 'http', mapping: 'xml-passthrough', config: { url: 'ftp://bo.example/x' } };
    })).toEqual(['targets.t.config.url: Invalid URL']);
    expect(problems((c) => {
      c.targets.t = { adapter: 'http', mapping: 'xml-passthrough', config: { url: 'http://bo.example/x', timeout: 5 } };
    })).toEqual(['targets.t.config: unknown key(s) "timeout"']);
    expect(problems((c) => {
      c.targets.archiv!.config = {};
    })).toEqual(['targets.archiv.config.directory: Invalid input: expected string, received undefined']);
  });

  it('a missing mapping file', () => {
    expect(problems((c) => {
      c.targets.t = { adapter: 'file', mapping: 'gibt-es-nicht', config: { directory: '/tmp/x' } };
    })).toEqual([`targets.t.mapping: ENOENT: no such file or directory, open '${path.join(MAPPINGS, 'gibt-es-nicht.yaml')}'`]);
  });

  it('a bad XPath in facts', () => {
    expect(problems((c) => {
      c.facts.ags = ['/*/xbau:gemeinde/ags', '/*/gem:ags'];
    })).toEqual(['facts.ags[1]: XPath "/*/gem:ags" uses prefix "gem" which the namespace map does not define']);
    expect(problems((c) => {
      c.facts.ags = '/*/xbau:gemeinde[';
    })[0]).toMatch(/^facts\.ags\[0\]: invalid XPath "\/\*\/xbau:gemeinde\["/);
  });

  it('a bad XPath in a route match', () => {
    expect(problems((c) => {
      c.routes[1]!.match!.xpath = ['/*', '/*/q:x'];
    })).toEqual(['routes[1].match.xpath[1]: XPath "/*/q:x" uses prefix "q" which the namespace map does not define']);
  });

  it('a route facts criterion naming an undefined fact', () => {
    expect(problems((c) => {
      c.routes[1]!.match!.facts = { gemeinde: 'bab:*', verfahren: 'einfach' };
    })).toEqual(['routes[1].match.facts.verfahren: fact "verfahren" is not defined under facts']);
  });

  it('duplicate route names', () => {
    expect(problems((c) => {
      c.routes.push({ name: 'archiv', deliver: ['lbk'] });
    })).toEqual(['routes[2].name: duplicate route name "archiv"']);
  });

  it('no routes or no targets at all', () => {
    expect(problems((c) => {
      c.routes = [];
    })).toEqual(['routes: Too small: expected array to have >=1 items']);
    expect(problems((c) => {
      delete (c as Partial<TestConfig>).targets;
    })).toEqual(['targets: Invalid input: expected record, received undefined']);
  });

  it('every problem after the schema is reported at once', () => {
    expect(problems((c) => {
      c.targets.t = { adapter: 'htp', mapping: 'gibt-es-nicht' };
      c.routes[1]!.deliver = ['lbk', 'x'];
      c.routes.push({ name: 'muenchen', match: { xpath: '/q:x', facts: { nope: 'y' } }, deliver: ['t'] });
    })).toEqual([
      'targets.t.adapter: unknown adapter "htp" (known: http, file, amqp, sftp, email, xdomea)',
      `targets.t.mapping: ENOENT: no such file or directory, open '${path.join(MAPPINGS, 'gibt-es-nicht.yaml')}'`,
      'routes[1].deliver[1]: unknown target "x"',
      'routes[2].name: duplicate route name "muenchen"',
      'routes[2].match.xpath[0]: XPath "/q:x" uses prefix "q" which the namespace map does not define',
      'routes[2].match.facts.nope: fact "nope" is not defined under facts',
    ]);
  });

  it('ConfigError lists the problems in its message', () => {
    try {
      compileConfig({ ...base(), bogus: 1 }, 'test.yaml');
      throw new Error('compiled');
    } catch (error) {
      expect((error as Error).message).toBe('invalid configuration:\n  (top level): unknown key(s) "bogus"');
    }
  });
});

describe('loadConfig', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'config-load-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('reads YAML from a file', () => {
    const file = path.join(dir, 'router.yaml');
    writeFileSync(file, `mappingsDir: ${MAPPINGS}\nadaptersDir: ${adaptersDir}\ntargets:\n  archiv:\n    adapter: file\n    mapping: xml-passthrough\n    config: { directory: ${dir} }\nroutes:\n  - name: alles\n    deliver: [archiv]\n`);
    const loaded = loadConfig(file);
    expect(loaded.source).toBe(file);
    expect(loaded.targets.get('archiv')!.adapterConfig).toMatchObject({ directory: dir });
  });

  it('a missing file', () => {
    const file = path.join(dir, 'fehlt.yaml');
    expect(() => loadConfig(file)).toThrow(new ConfigError([`${file}: cannot read (ENOENT)`]));
  });

  it('duplicate keys in the YAML', () => {
    const file = path.join(dir, 'doppelt.yaml');
    writeFileSync(file, 'instance: a\ninstance: b\n');
    try {
      loadConfig(file);
      throw new Error('loaded');
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).problems).toEqual([`${file}: Map keys must be unique at line 2, column 1:`]);
    }
  });
});
