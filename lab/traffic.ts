/**
 * Traffic generators and responders, run inside the lab's client and server namespaces.
 *
 * UDP bulk: `native/ctgen.c` (compiled on first use when gcc exists, cached under the
 * state root) sends from a raw socket, one packet per flow, at ~100k flows/s; the Node
 * fallback `agents/udpflood.mjs` does the same with one socket per source port, and sends
 * every IPv6 flow (ctgen writes IPv4 headers).
 * Set CONNTRACK_OPS_LAB_GENERATOR=node to force the fallback.
 * TCP: `agents/tcpgen.mjs` (real kernel connections). Server side: `ctgen echo` (UDP) and
 * `agents/responder.mjs` (TCP, and UDP when ctgen is unavailable).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { access, mkdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { commandExists, LabCommandError, netnsGuard, netnsInode, nsRun, run, sleep, type RunResult } from './exec.js';
import { stateRoot } from './state.js';

export type GeneratorKind = 'c' | 'node';

export const agentPath = (file: string): string => fileURLToPath(new URL(`./agents/${file}`, import.meta.url));
const nativeSource = (): string => fileURLToPath(new URL('./native/ctgen.c', import.meta.url));

let ctgenPromise: Promise<string | null> | undefined;

/**
 * Path of the compiled ctgen binary, or null when the Node fallback must be used
 * (no gcc, compile failure, or CONNTRACK_OPS_LAB_GENERATOR=node).
 */
export function ensureCtgen(): Promise<string | null> {
  if (process.env.CONNTRACK_OPS_LAB_GENERATOR === 'node') return Promise.resolve(null);
  ctgenPromise ??= (async () => {
    const src = await readFile(nativeSource());
    const hash = createHash('sha256').update(src).digest('hex').slice(0, 12);
    const binDir = join(stateRoot(), '.bin');
    const bin = join(binDir, `ctgen-${hash}`);
    try {
      await access(bin);
      return bin;
    } catch {
      // not built yet
    }
    if (!(await commandExists('gcc'))) return null;
    await mkdir(binDir, { recursive: true });
    const tmp = `${bin}.${process.pid}.tmp`;
    const res = await run('gcc', ['-O2', '-Wall', '-o', tmp, nativeSource()], { check: false, timeoutMs: 60_000 });
    if (res.exitCode !== 0) {
      process.stderr.write(`conntrack-ops lab: gcc failed, using the Node generator: ${res.stderr.slice(0, 500)}\n`);
      await rm(tmp, { force: true });
      return null;
    }
    await rename(tmp, bin); // atomic: concurrent builders produce the same file
    return bin;
  })();
  return ctgenPromise;
}

export interface FlowGroup {
  src: string;
  count: number;
  /** Flow i uses source port 1024 + (sportOffset + floor(i / dportCount)) % 64512. */
  sportOffset: number;
  dportLo: number;
  dportCount: number;
}

const floodOutputSchema = z.object({
  flows: z.number(),
  passes: z.array(z.object({ sent: z.number(), ms: z.number() })),
  ms: z.number(),
});
export type FloodOutput = z.infer<typeof floodOutputSchema> & { generator: GeneratorKind };

export interface FloodOptions {
  passes?: number;
  gapMs?: number;
  settleMs?: number;
  timeoutMs?: number;
}

/** Socket budget of one Node generator process (the fd hard limit may not be raisable). */
let socketBudget: Promise<number> | undefined;
function nodeSocketBudget(): Promise<number> {
  socketBudget ??= run('sh', ['-c', 'ulimit -Hn'], { check: false }).then((r) => {
    const hard = r.stdout.trim() === 'unlimited' ? 1_048_576 : Number(r.stdout.trim());
    return Math.max(1000, Math.min(Number.isFinite(hard) ? hard - 1000 : 19_000, 200_000));
  });
  return socketBudget;
}

/**
 * Splits flow groups so that no part needs more than `budget` distinct source ports
 * (sockets, for the Node generator). Flow i of a group uses source-port index
 * floor(i / dportCount), so a contiguous range of i is a contiguous range of ports.
 */
export function splitBySockets(groups: FlowGroup[], budget: number): FlowGroup[][] {
  const parts: FlowGroup[][] = [];
  let cur: FlowGroup[] = [];
  let used = 0;
  for (const g of groups) {
    let done = 0;
    while (done < g.count) {
      if (used >= budget) {
        parts.push(cur);
        cur = [];
        used = 0;
      }
      const sportsLeft = Math.ceil((g.count - done) / g.dportCount);
      const sports = Math.min(sportsLeft, budget - used);
      const count = Math.min(sports * g.dportCount, g.count - done);
      cur.push({ ...g, count, sportOffset: g.sportOffset + done / g.dportCount });
      used += sports;
      done += count;
    }
  }
  if (cur.length) parts.push(cur);
  return parts;
}

/**
 * Splits flow groups into parts of at most about `maxFlows` flows (cut at source-port
 * boundaries, so each part is a set of plain groups), to spread a big fill over CPUs.
 */
export function splitByFlows(groups: FlowGroup[], maxFlows: number): FlowGroup[][] {
  const parts: FlowGroup[][] = [];
  let cur: FlowGroup[] = [];
  let used = 0;
  for (const g of groups) {
    let done = 0;
    while (done < g.count) {
      const left = g.count - done;
      let room = maxFlows - used;
      if (used > 0 && room < Math.min(g.dportCount, left)) {
        parts.push(cur);
        cur = [];
        used = 0;
        room = maxFlows;
      }
      // Whole source ports (dportCount flows each), or the rest of the group.
      const take = Math.min(left, Math.max(Math.floor(room / g.dportCount) * g.dportCount, Math.min(left, g.dportCount)));
      cur.push({ ...g, count: take, sportOffset: g.sportOffset + done / g.dportCount });
      used += take;
      done += take;
      if (used >= maxFlows) {
        parts.push(cur);
        cur = [];
        used = 0;
      }
    }
  }
  if (cur.length) parts.push(cur);
  return parts;
}

function isIpv6(address: string): boolean {
  return address.includes(':');
}

/** Sends one UDP packet per flow (per pass) from namespace `ns` towards `dst` (IPv4 or IPv6). */
export async function udpFlood(ns: string, dst: string, groups: FlowGroup[], opts: FloodOptions = {}): Promise<FloodOutput> {
  const live = groups.filter((g) => g.count > 0);
  if (!live.length) return { flows: 0, passes: [], ms: 0, generator: 'c' };
  const toArgs = (gs: FlowGroup[]) => gs.map((g) => `${g.src},${g.count},${((g.sportOffset % 64512) + 64512) % 64512},${g.dportLo},${g.dportCount}`);
  const common = [
    '--dst', dst,
    '--passes', String(opts.passes ?? 2),
    '--gap-ms', String(opts.gapMs ?? 2100),
    '--settle-ms', String(opts.settleMs ?? 30),
  ];
  // ctgen's raw socket writes IPv4 headers: IPv6 flows always come from the Node generator.
  const bin = isIpv6(dst) ? null : await ensureCtgen();
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const parse = (res: RunResult, generator: GeneratorKind): FloodOutput => {
    const line = res.stdout.trim().split('\n').pop() ?? '';
    try {
      return { ...floodOutputSchema.parse(JSON.parse(line)), generator };
    } catch {
      throw new LabCommandError(`flood in ${ns}: unexpected output ${line.slice(0, 300)} ${res.stderr.slice(0, 300)}`, res);
    }
  };
  if (bin) return parse(await nsRun(ns, [bin, 'flood', ...common, ...toArgs(live)], { timeoutMs }), 'c');
  // Node: one socket per source port; split over processes when the fd limit requires it.
  // Its echo responder loses more replies under load: a third pass assures those flows.
  if ((opts.passes ?? 2) === 2) common[3] = '3';
  const parts = splitBySockets(live, await nodeSocketBudget());
  const outs = await Promise.all(
    parts.map(async (part) =>
      parse(
        await nsRun(
          ns,
          ['sh', '-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"', 'sh', process.execPath, agentPath('udpflood.mjs'), ...common, ...toArgs(part)],
          { timeoutMs },
        ),
        'node',
      ),
    ),
  );
  return {
    flows: outs.reduce((a, o) => a + o.flows, 0),
    passes: (outs[0]?.passes ?? []).map((_, i) => ({
      sent: outs.reduce((a, o) => a + (o.passes[i]?.sent ?? 0), 0),
      ms: Math.max(...outs.map((o) => o.passes[i]?.ms ?? 0)),
    })),
    ms: Math.max(...outs.map((o) => o.ms)),
    generator: 'node',
  };
}

/**
 * Starts a detached flood that sends every flow once, then again every `repeatMs` for
 * `holdMs` (keeps a saturated table saturated). Returns its pid once the first pass is out.
 */
export async function udpFloodHold(
  ns: string,
  dst: string,
  groups: FlowGroup[],
  o: { holdMs: number; repeatMs: number; logFile: string },
): Promise<number | null> {
  const flowArgs = groups.filter((g) => g.count > 0).map((g) => `${g.src},${g.count},${g.sportOffset % 64512},${g.dportLo},${g.dportCount}`);
  if (!flowArgs.length) return null;
  // --passes 0: the flows exist already; the first re-send comes after repeatMs.
  const common = ['--dst', dst, '--passes', '0', '--hold-ms', String(o.holdMs), '--repeat-ms', String(o.repeatMs)];
  const bin = isIpv6(dst) ? null : await ensureCtgen();
  const pid = bin
    ? spawnInNetns(ns, [bin, 'flood', ...common, ...flowArgs], o.logFile)
    : spawnInNetns(ns, [process.execPath, agentPath('udpflood.mjs'), ...common, ...flowArgs], o.logFile, { nofile: true });
  await waitForLine(o.logFile, '{', 30_000, pid);
  return pid;
}

const tcpOutputSchema = z.object({ mode: z.string(), ok: z.number(), failed: z.number(), ms: z.number() });
export type TcpOutput = z.infer<typeof tcpOutputSchema>;

/** Runs `agents/tcpgen.mjs` (timewait | idle) in a client namespace and waits for it. */
export async function tcpRun(
  ns: string,
  mode: 'timewait' | 'idle',
  o: { dst: string; port: number; count: number; srcs: string[]; lportBase?: number; concurrency?: number; timeoutMs?: number },
): Promise<TcpOutput> {
  if (o.count <= 0) return { mode, ok: 0, failed: 0, ms: 0 };
  const res = await nsRun(
    ns,
    [
      'sh', '-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"', 'sh',
      process.execPath, agentPath('tcpgen.mjs'), mode,
      '--dst', o.dst, '--port', String(o.port), '--count', String(o.count),
      '--src', o.srcs.join(','), '--concurrency', String(o.concurrency ?? 256),
      ...(o.lportBase === undefined ? [] : ['--lport-base', String(o.lportBase)]),
    ],
    { timeoutMs: o.timeoutMs ?? 120_000 },
  );
  const line = res.stdout.trim().split('\n').pop() ?? '';
  try {
    return tcpOutputSchema.parse(JSON.parse(line));
  } catch {
    throw new LabCommandError(`tcpgen ${mode} in ${ns}: unexpected output ${line.slice(0, 300)} ${res.stderr.slice(0, 300)}`, res);
  }
}

/**
 * Starts argv inside lab namespace `ns`, detached from this process (it outlives a CLI
 * that exits), output appended to logFile. Returns the pid (the process `ip netns exec`
 * becomes). Such processes are ended by `labDown` (kills every pid of the namespace).
 */
export function spawnInNetns(ns: string, argv: string[], logFile: string, opts: { nofile?: boolean } = {}): number {
  const inode = netnsInode(ns);
  if (inode === null) throw new LabCommandError(`network namespace ${ns} does not exist`);
  const fd = openSync(logFile, 'a', 0o644);
  try {
    const prologue = opts.nofile ? 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; ' : '';
    const child = spawn('ip', ['netns', 'exec', ns, 'sh', '-c', `${netnsGuard(inode)}; ${prologue}exec "$@"`, 'sh', ...argv], {
      detached: true,
      stdio: ['ignore', fd, fd],
    });
    child.on('error', () => {});
    child.unref();
    if (!child.pid) throw new LabCommandError(`could not start ${argv[0]} in ${ns}`);
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

/** Waits until `file` contains a line starting with `prefix`; returns that line. */
export async function waitForLine(file: string, prefix: string, timeoutMs: number, pid?: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let text = '';
    try {
      text = await readFile(file, 'utf8');
    } catch {
      // not yet
    }
    const line = text.split('\n').find((l) => l.startsWith(prefix));
    if (line !== undefined) return line;
    if (pid !== undefined) {
      try {
        process.kill(pid, 0);
      } catch {
        throw new LabCommandError(`process ${pid} exited before "${prefix}": ${text.slice(-800)}`);
      }
    }
    if (Date.now() > deadline) throw new LabCommandError(`timed out waiting for "${prefix}" in ${file}: ${text.slice(-800)}`);
    await sleep(25);
  }
}

export interface ResponderPorts {
  udpEcho: [number, number];
  tcpTimewait: number;
  tcpIdle: number;
  tcpEcho: number;
}

/** Starts the UDP echo (C, or Node) and TCP responders in the server namespace. */
export async function startResponders(
  serverNs: string,
  dir: string,
  ports: ResponderPorts,
  opts: { ipv6?: boolean } = {},
): Promise<{ pids: Record<string, number>; generator: GeneratorKind }> {
  const bin = await ensureCtgen();
  const pids: Record<string, number> = {};
  const waits: Promise<string>[] = [];
  const udpRange = `${ports.udpEcho[0]}-${ports.udpEcho[1]}`;
  if (bin) {
    const log = join(dir, 'udp-echo.log');
    pids.udpEcho = spawnInNetns(serverNs, [bin, 'echo', '--ports', udpRange], log);
    waits.push(waitForLine(log, 'ready', 10_000, pids.udpEcho));
  }
  const log = join(dir, 'responder.log');
  const args = [
    process.execPath, agentPath('responder.mjs'),
    '--timewait', String(ports.tcpTimewait),
    '--idle', String(ports.tcpIdle),
    '--echo', String(ports.tcpEcho),
  ];
  if (!bin) args.push('--udp', udpRange);
  // IPv6: TCP listens on both families, UDP echo on the same ports for IPv6 (ctgen echo is IPv4 only).
  if (opts.ipv6) args.push('--ipv6', '--udp6', udpRange);
  pids.responder = spawnInNetns(serverNs, args, log, { nofile: true });
  waits.push(waitForLine(log, 'ready', 15_000, pids.responder));
  await Promise.all(waits);
  return { pids, generator: bin ? 'c' : 'node' };
}

export interface KeepaliveOptions {
  /** Number of TCP connections kept ACTIVE (default 100). */
  count?: number;
  /** A byte each way on every connection this often (default 1000 ms). */
  intervalMs?: number;
  /** Stops by itself after this long (default 10 min, max 1 h). */
  durationMs?: number;
}

export interface KeepaliveParams {
  ns: string;
  dst: string;
  port: number;
  srcs: string[];
  logFile: string;
}

export interface Keepalive {
  pid: number;
  count: number;
  srcs: string[];
  port: number;
  stop(): Promise<void>;
}

export async function startKeepaliveProcess(p: KeepaliveParams, o: KeepaliveOptions = {}): Promise<Keepalive> {
  const count = o.count ?? 100;
  const durationMs = Math.min(o.durationMs ?? 600_000, 3_600_000);
  const pid = spawnInNetns(
    p.ns,
    [
      process.execPath, agentPath('tcpgen.mjs'), 'keepalive',
      '--dst', p.dst, '--port', String(p.port), '--count', String(count), '--src', p.srcs.join(','),
      '--interval-ms', String(o.intervalMs ?? 1000), '--duration-ms', String(durationMs),
    ],
    p.logFile,
    { nofile: true },
  );
  const ready = await waitForLine(p.logFile, 'ready', 30_000, pid);
  const stats = z.object({ ok: z.number(), failed: z.number() }).parse(JSON.parse(ready.slice('ready '.length)));
  if (stats.failed > 0) process.stderr.write(`conntrack-ops lab: keepalive: ${stats.failed} of ${count} connections failed\n`);
  return {
    pid,
    count: stats.ok,
    srcs: p.srcs,
    port: p.port,
    stop: async () => {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        return;
      }
      const deadline = Date.now() + 3000;
      while (Date.now() < deadline) {
        try {
          process.kill(pid, 0);
        } catch {
          return;
        }
        await sleep(25);
      }
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    },
  };
}
