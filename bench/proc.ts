// Child processes under measurement: started with their output in a log file, their CPU seconds and peak
// resident set read from /proc (Linux), stopped with SIGTERM (SIGKILL after a grace period).
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ; 100 on every mainstream Linux build). */
const USER_HZ = 100;

export interface Measured {
  readonly pid: number;
  readonly child: ChildProcess;
  /** User + system CPU seconds so far (all threads). */
  cpuSeconds(): number;
  /** Peak resident set so far (VmHWM), MB. */
  peakRssMb(): number;
  /** SIGTERM, wait up to `graceMs`, then SIGKILL. Resolves with the exit code (or signal name). */
  stop(graceMs?: number): Promise<number | string>;
}

/** Parses utime + stime (fields 14 and 15) of a /proc/<pid>/stat line; the command name may contain spaces. */
export function cpuSecondsFromStat(stat: string): number {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): utime is field 14, stime field 15.
  return (Number(fields[11]) + Number(fields[12])) / USER_HZ;
}

/** VmHWM of a /proc/<pid>/status text, MB. */
export function peakRssFromStatus(status: string): number {
  const match = /^VmHWM:\s+(\d+)\s+kB$/m.exec(status);
  return match ? Number(match[1]) / 1024 : 0;
}

/** Starts `node <args>` with stdout and stderr appended to `logFile`. */
export function startMeasured(args: string[], options: { env: NodeJS.ProcessEnv; logFile: string; cwd: string }): Measured {
  const fd = openSync(options.logFile, 'a');
  const child = spawn(process.execPath, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const pid = child.pid!;
  let lastCpu = 0;
  let lastRss = 0;
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
  const read = () => {
    try {
      lastCpu = cpuSecondsFromStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
      lastRss = peakRssFromStatus(readFileSync(`/proc/${pid}/status`, 'utf8'));
    } catch {
      // The process has gone: keep the last figures read.
    }
  };
  return {
    pid,
    child,
    cpuSeconds() { read(); return lastCpu; },
    peakRssMb() { read(); return lastRss; },
    async stop(graceMs = 15_000) {
      read();
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const result = await exited;
      clearTimeout(timer);
      return result;
    },
  };
}

/** The database and broker servers, by process name. */
const SERVICE_COMMANDS: Record<string, Service> = { postgres: 'postgres', 'beam.smp': 'rabbitmq' };

export type Service = 'postgres' | 'rabbitmq';
export type ServiceCpu = Map<string, { service: Service; seconds: number }>;

/** CPU seconds used so far by each PostgreSQL and RabbitMQ server process, by pid. */
export function servicesCpu(): ServiceCpu {
  const result: ServiceCpu = new Map();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const service = SERVICE_COMMANDS[stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))];
      if (service) result.set(entry, { service, seconds: cpuSecondsFromStat(stat) });
    } catch {
      // gone meanwhile
    }
  }
  return result;
}

/**
 * The servers' CPU seconds between two `servicesCpu` snapshots: what the router made them do, on a quiet
 * machine (other clients of the same servers count as well). A process that ended in between is left
 * out (its backend connection closed), one that started counts in full.
 */
export function servicesCpuBetween(before: ServiceCpu, after: ServiceCpu): Record<Service, number> {
  const total: Record<Service, number> = { postgres: 0, rabbitmq: 0 };
  for (const [pid, { service, seconds }] of after) total[service] += seconds - (before.get(pid)?.seconds ?? 0);
  return total;
}

/** A TCP port free on loopback right now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Polls `url` until it answers 200, the process exits, or `timeoutMs` passes. */
export async function waitHealthy(url: string, process: Measured, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (process.child.exitCode !== null) throw new Error(`process ${process.pid} exited with ${process.child.exitCode} before it was healthy`);
    try {
      const response = await fetch(url);
      await response.arrayBuffer();
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${url} not healthy after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
