#!/usr/bin/env node
// The command line: start, check, mapping test, send, reasons.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { loadConfig } from './config/load';
import { findMissingSecrets } from './config/secret';
import { ConfigError, REASONS } from './errors';
import { createLogger } from './log';
import { startRouter } from './main';
import { runMappingTests } from './map/mapping-test';
import { startBackOffice } from './demo/back-office';
import { scaffoldAdapter } from './scaffold/scaffold';

const program = new Command()
  .name('antragsrouter')
  .description('Routes XÖV/FIM applications from the form service to the back offices of each city.');

program
  .command('start')
  .description('start the router')
  .requiredOption('-c, --config <file>', 'deployment configuration (YAML)')
  .option('-p, --port <port>', 'override server.port', (v) => Number.parseInt(v, 10))
  .option('--host <address>', 'override server.host (e.g. 0.0.0.0 in a container)')
  .option('--demo-back-office [port]', 'also run the demo back office (for the bundled example)', (v) => Number.parseInt(v, 10))
  .option('--grace <ms>', 'shutdown grace period for in-flight deliveries', (v) => Number.parseInt(v, 10), 10_000)
  .action(async (options: { config: string; port?: number; host?: string; demoBackOffice?: number | true; grace: number }) => {
    const log = createLogger();
    const config = loadConfigOrExit(options.config);
    if (options.demoBackOffice !== undefined) {
      const port = options.demoBackOffice === true ? 8090 : options.demoBackOffice;
      const backOffice = await startBackOffice({ port, directory: 'var/demo-back-office' });
      log.info({ event: 'demo-back-office', url: backOffice.url }, 'demo back office listening; received deliveries are written to var/demo-back-office/');
    }
    const router = await startRouter(config, { log, port: options.port, host: options.host });
    const shutdown = (signal: string) => {
      log.info({ event: 'shutdown', signal }, 'shutting down');
      router.close(options.grace).then(() => process.exit(0), (error: unknown) => {
        log.error({ err: error }, 'shutdown failed');
        process.exit(1);
      });
    };
    process.once('SIGTERM', () => shutdown('SIGTERM'));
    process.once('SIGINT', () => shutdown('SIGINT'));
  });

program
  .command('demo-back-office')
  .description('run only the demo back office (deliveries are kept in var/demo-back-office/)')
  .option('-p, --port <port>', 'port', (v) => Number.parseInt(v, 10), 8090)
  .option('--host <address>', 'listen address', '127.0.0.1')
  .action(async (options: { port: number; host: string }) => {
    const backOffice = await startBackOffice({ port: options.port, host: options.host, directory: 'var/demo-back-office' });
    console.log(`demo back office listening on ${backOffice.url}; deliveries are written to var/demo-back-office/`);
  });

program
  .command('check')
  .description('validate a configuration (schema, references, adapters, mappings, XPath, secrets) without starting')
  .requiredOption('-c, --config <file>', 'deployment configuration (YAML)')
  .action((options: { config: string }) => {
    const config = loadConfigOrExit(options.config);
    // Every secret reference must be readable now; a missing one is named by path and reference, never by value.
    const missing = findMissingSecrets(config.raw.targets, ['targets']);
    if (missing.length) {
      console.error(`${options.config}: ${missing.length} secret(s) missing\n  ${missing.map((m) => `${m.path}: ${m.problem}`).join('\n  ')}`);
      process.exitCode = 3;
      return;
    }
    console.log(`${options.config}: OK — ${config.raw.routes.length} routes, ${config.targets.size} targets`);
  });

const adapter = program.command('adapter').description('work with adapters');
adapter
  .command('new')
  .description('scaffold a working adapter with its config schema, a conformance test and a README stub')
  .argument('<name>', 'adapter name (lower-case letters, digits, "-", "_"), used as targets.<t>.adapter')
  .option('-d, --dir <directory>', 'adapters directory', 'adapters')
  .action((name: string, options: { dir: string }) => {
    const files = scaffoldAdapter(name, options.dir);
    console.log(`created\n  ${files.map((f) => path.relative(process.cwd(), f)).join('\n  ')}`);
    console.log(`next: adapt ${path.join(options.dir, name, 'index.ts')}, run npx jest ${path.join(options.dir, name)}, name it in a target (adapter: ${name})`);
  });

const mapping = program.command('mapping').description('work with mappings');
mapping
  .command('test')
  .description('run the test cases beside one or more mappings (<name>.test.yaml)')
  .argument('<files...>', 'mapping files or their test files')
  .action((files: string[]) => {
    let failed = 0;
    let passed = 0;
    for (const file of files) {
      try {
        for (const result of runMappingTests(file)) {
          if (result.passed) passed += 1;
          else failed += 1;
          console.log(`${result.passed ? 'PASS' : 'FAIL'} ${path.basename(file)} › ${result.name}${result.message ? `\n     ${result.message}` : ''}`);
        }
      } catch (error) {
        failed += 1;
        console.log(`FAIL ${file}\n     ${(error as Error).message}`);
      }
    }
    console.log(`${passed} passed, ${failed} failed`);
    process.exitCode = failed ? 1 : 0;
  });

program
  .command('send')
  .description('submit XML files to a running router and print the answers')
  .argument('<files...>', 'XÖV/FIM XML files')
  .option('-u, --url <url>', 'router base URL', 'http://127.0.0.1:8080')
  .action(async (files: string[], options: { url: string }) => {
    let failed = 0;
    for (const file of files) {
      const response = await fetch(new URL('/api/v1/submissions', options.url), {
        method: 'POST',
        headers: { 'content-type': 'application/xml' },
        body: readFileSync(file),
      });
      const text = await response.text();
      if (!response.ok) failed += 1;
      console.log(`${file}: ${response.status} ${text}`);
    }
    process.exitCode = failed ? 1 : 0;
  });

program
  .command('reasons')
  .description('print the table of reason codes (Markdown)')
  .action(() => {
    console.log('| code | HTTP | meaning |\n|---|---|---|');
    for (const [code, { status, title }] of Object.entries(REASONS)) console.log(`| \`${code}\` | ${status || '–'} | ${title} |`);
  });

function loadConfigOrExit(file: string) {
  try {
    return loadConfig(file);
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`${file}: invalid configuration\n  ${error.problems.join('\n  ')}`);
      process.exit(2);
    }
    throw error;
  }
}

program.parseAsync(process.argv).catch((error: unknown) => {
  console.error((error as Error).message);
  process.exit(1);
});
