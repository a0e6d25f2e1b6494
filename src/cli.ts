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
import { SchemaValidator } from './envelope/schema-validation';
import { SingleBar, Presets } from 'cli-progress';
import { adminCall, connectionFrom, listAll, type AdminConnection } from './admin/admin-client';
import { newToken, tokenHash } from './auth/auth';
import type { SubmissionListItem } from './store/store';
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
  .action(async (options: { config: string }) => {
    const config = loadConfigOrExit(options.config);
    // Schemas compile as at start-up, so that a broken XSD is found here too.
    if (config.raw.validation.schemas.length) {
      try {
        await (await SchemaValidator.start(config.raw.validation, createLogger({ level: 'silent' }))).close();
      } catch (error) {
        console.error(`invalid configuration:\n  ${(error as Error).message}`);
        process.exit(2);
      }
    }
    // Every secret reference must be readable now; a missing one is named by path and reference, never by value.
    const missing = findMissingSecrets(config.raw);
    if (missing.length) {
      console.error(`${options.config}: ${missing.length} secret(s) missing\n  ${missing.map((m) => `${m.path}: ${m.problem}`).join('\n  ')}`);
      process.exitCode = 3;
      return;
    }
    console.log(`${options.config}: OK — ${config.raw.routes.length} routes, ${config.targets.size} targets, ${config.raw.validation.schemas.length} schema sets`);
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
  .option('-u, --url <url>', 'router base URL (default: ANTRAGSROUTER_URL or http://127.0.0.1:8080)')
  .option('--token-file <file>', 'file with the API token (default: ANTRAGSROUTER_TOKEN)')
  .action(async (files: string[], options: { url?: string; tokenFile?: string }) => {
    const connection = connectionFrom(options);
    let failed = 0;
    for (const file of files) {
      const response = await fetch(new URL('/api/v1/submissions', connection.url), {
        method: 'POST',
        headers: { 'content-type': 'application/xml', ...(connection.token ? { authorization: `Bearer ${connection.token}` } : {}) },
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

program
  .command('token')
  .description('make a new API token for a client: the token for the client, the SHA-256 for the configuration')
  .argument('[client]', 'client name for the configuration snippet', 'my-client')
  .action((client: string) => {
    const token = newToken();
    console.log(`token (give it to the client; it is shown only now):\n  ${token}\n`);
    console.log(`configuration:\nauth:\n  clients:\n    ${client}:\n      tokenSha256: ${tokenHash(token)}\n      tenants: ['*']     # AGS/ARS this client may submit for\n      roles: [submit]    # or [admin] for operators`);
  });

const admin = program
  .command('admin')
  .description('operate a running router through its admin API (ANTRAGSROUTER_URL, ANTRAGSROUTER_TOKEN with role admin)')
  .option('-u, --url <url>', 'router base URL (default: ANTRAGSROUTER_URL or http://127.0.0.1:8080)')
  .option('--token-file <file>', 'file with the admin token (default: ANTRAGSROUTER_TOKEN)');
const adminConnection = (): AdminConnection => connectionFrom(admin.opts<{ url?: string; tokenFile?: string }>());

const describeItem = (s: SubmissionListItem) =>
  `${s.id}  ${s.receivedAt}  ${s.state.padEnd(9)} ${(s.tenant ?? '-').padEnd(8)} ${(s.messageType ?? '-').padEnd(5)} ${s.deliveries.map((d) => `${d.target}:${d.state}${d.reason ? `(${d.reason})` : ''}`).join(' ')}`;

admin
  .command('list')
  .description('list submissions (newest first): --dead for dead deliveries, --parked for parked submissions')
  .option('--dead', 'only submissions with a dead delivery')
  .option('--parked', 'only parked submissions')
  .option('--state <state...>', 'submission states')
  .option('--target <target>', 'with a delivery to this target')
  .option('--tenant <ags>', 'tenant (AGS)')
  .option('--route <route>', 'with a delivery by this route')
  .option('--limit <n>', 'at most this many', (v) => Number.parseInt(v, 10), 100)
  .action(async (options: { dead?: boolean; parked?: boolean; state?: string[]; target?: string; tenant?: string; route?: string; limit: number }) => {
    let shown = 0;
    const state = options.parked ? ['parked'] : options.state;
    for await (const item of listAll(adminConnection(), { state, target: options.target, tenant: options.tenant, route: options.route, deliveryState: options.dead ? 'dead' : undefined })) {
      console.log(describeItem(item));
      if (++shown >= options.limit) break;
    }
    if (!shown) console.log('(none)');
  });

admin
  .command('replay')
  .description("replay dead deliveries: the given submissions, or with --all every dead delivery (of --target)")
  .argument('[ids...]', 'submission ids')
  .option('--all', 'every submission with a dead delivery (narrowed by --target, --tenant)')
  .option('--target <target>', 'only the dead deliveries to this target')
  .option('--tenant <ags>', 'with --all: only this tenant')
  .option('--to-target <target>', 'deliver to this target instead (e.g. after a configuration change)')
  .requiredOption('--note <text>', 'why (goes to the audit trail)')
  .action(async (ids: string[], options: { all?: boolean; target?: string; tenant?: string; toTarget?: string; note: string }) => {
    const connection = adminConnection();
    if (!ids.length && !options.all) throw new Error('name submission ids, or use --all');
    const work: Array<{ id: string; target: string }> = [];
    const collect = (item: SubmissionListItem) => {
      for (const d of item.deliveries) if (d.state === 'dead' && (!options.target || d.target === options.target)) work.push({ id: item.id, target: d.target });
    };
    if (options.all) {
      for await (const item of listAll(connection, { deliveryState: 'dead', target: options.target, tenant: options.tenant })) collect(item);
    }
    for (const id of ids) collect(await adminCall<SubmissionListItem>(connection, 'GET', `/api/v1/admin/submissions/${encodeURIComponent(id)}`));
    const bar = new SingleBar({ format: 'replay [{bar}] {value}/{total} | failed {failed}', hideCursor: true, noTTYOutput: true, notTTYSchedule: 2000 }, Presets.shades_classic);
    const failures: string[] = [];
    bar.start(work.length, 0, { failed: 0 });
    for (const { id, target } of work) {
      try {
        await adminCall(connection, 'POST', `/api/v1/admin/submissions/${id}/replay`, { target, toTarget: options.toTarget, note: options.note });
      } catch (error) {
        failures.push(`${id} ${target}: ${(error as Error).message}`);
      }
      bar.increment(1, { failed: failures.length });
    }
    bar.stop();
    for (const failure of failures) console.error(failure);
    console.log(`${work.length - failures.length} replayed, ${failures.length} failed`);
    process.exitCode = failures.length ? 1 : 0;
  });

admin
  .command('reroute')
  .description('route parked submissions again with the current configuration')
  .argument('<ids...>', 'submission ids')
  .option('--note <text>', 'why (goes to the audit trail)')
  .action(async (ids: string[], options: { note?: string }) => {
    for (const id of ids) {
      await adminCall(adminConnection(), 'POST', `/api/v1/admin/submissions/${encodeURIComponent(id)}/reroute`, { note: options.note });
      console.log(`${id}: re-routed`);
    }
  });

admin
  .command('discard')
  .description('give up a dead delivery (--target) or a parked submission for good')
  .argument('<id>', 'submission id')
  .option('--target <target>', 'the dead delivery to give up (omit for a parked submission)')
  .requiredOption('--reason <text>', 'why (goes to the status and the audit trail)')
  .action(async (id: string, options: { target?: string; reason: string }) => {
    await adminCall(adminConnection(), 'POST', `/api/v1/admin/submissions/${encodeURIComponent(id)}/discard`, { target: options.target, reason: options.reason });
    console.log(`${id}: discarded`);
  });

admin
  .command('audit')
  .description('print the audit trail (newest first)')
  .option('--submission <id>', 'of one submission')
  .option('--limit <n>', 'at most this many', (v) => Number.parseInt(v, 10), 50)
  .action(async (options: { submission?: string; limit: number }) => {
    const query = new URLSearchParams({ limit: String(options.limit), ...(options.submission ? { submissionId: options.submission } : {}) });
    const { items } = await adminCall<{ items: Array<Record<string, string | undefined>> }>(adminConnection(), 'GET', `/api/v1/admin/audit?${query}`);
    for (const a of items) console.log(`${a.at}  ${a.actor}  ${a.action}  ${a.submissionId ?? '-'}  ${a.target ?? '-'}  ${a.detail ?? ''}`);
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
