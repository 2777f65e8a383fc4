/** What the benchmark ran on: printed with the results and stored in the JSON. */
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus, hostname, loadavg, release, totalmem } from 'node:os';
import { execFileSync } from 'node:child_process';

export interface MachineInfo {
  /** Short, stable name used in the committed results file name. */
  slug: string;
  hostname: string;
  nproc: number;
  cpuModel: string;
  kernel: string;
  node: string;
  memGiB: number;
  /** Load average when the run started (other work on the machine skews timings). */
  loadAvgAtStart: [number, number, number];
  conntrackVersion: string;
  /** Network namespaces that were not this run's when it started (other engineers' labs). */
  foreignNetnsAtStart: number;
}

function cpuModel(): string {
  const fromOs = cpus()[0]?.model?.trim();
  if (fromOs) return fromOs;
  try {
    const m = /model name\s*:\s*(.+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    return m?.[1]?.trim() ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

function tryRun(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 5000 }).trim();
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return `${e.stdout ?? ''}${e.stderr ?? ''}`.trim();
  }
}

export function machineInfo(): MachineInfo {
  const model = cpuModel();
  const nproc = availableParallelism();
  const slug = `${nproc}c-${model.toLowerCase().replace(/\(r\)|\(tm\)|cpu|processor|@.*$/g, '').replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 24) || 'cpu'}`;
  const la = loadavg().map((v) => Math.round(v * 100) / 100) as [number, number, number];
  const netns = tryRun('ip', ['netns', 'list']).split('\n').filter((l) => l.trim().length > 0);
  return {
    slug,
    hostname: hostname(),
    nproc,
    cpuModel: model,
    kernel: release(),
    node: process.version,
    memGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    loadAvgAtStart: la,
    conntrackVersion: tryRun('conntrack', ['--version']).split('\n')[0] ?? '',
    foreignNetnsAtStart: netns.filter((l) => !/^cto-bn/.test(l)).length,
  };
}
