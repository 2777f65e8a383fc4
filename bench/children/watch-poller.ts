/**
 * Child process of the watch benchmark: ONE poll worker (the real poll processor on a real
 * SessionPool and WatchStore, an embedded redis-server in its own process) watching every
 * gateway of an inventory every second. Its own process, so that its RSS and CPU are the
 * worker's alone. Prints one JSON line (WatchPollerResult).
 *
 *   node --expose-gc --import tsx bench/children/watch-poller.ts <inventory.yml> <window-s> <warmup-s> <probe-gateway> <probe-netns>
 *
 * Phases: runtime + worker up (RSS "none") -> a warm session to every gateway (RSS "warm",
 * the sshd processes of the probe gateway before / after) -> schedulers every 1 s, a warm-up,
 * then the measured window: CPU (process.cpuUsage), polls, latencies, the probe gateway's
 * sshd CPU -> unwatch, close.
 */
import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { Worker, type Job } from 'bullmq';
import { loadEnv } from '../../src/config/env.js';
import { SessionPool } from '../../src/gateway/session-pool.js';
import { unwatchGateway, watchGateways, type WatchControlDeps } from '../../src/monitor/watch-control.js';
import { QUEUES, type PollJob } from '../../src/queue/jobs.js';
import { enqueueCheck } from '../../src/queue/producer.js';
import { openRuntime } from '../../src/runtime.js';
import { silentEpisodePublisher } from '../../src/worker/ports.js';
import { createPollProcessor } from '../../src/worker/poll-processor.js';

export interface NetnsProcs {
  processes: number;
  sshdProcesses: number;
  /** Sum of VmRSS of the namespace's processes (kB). */
  rssKb: number;
  sshdRssKb: number;
  /** Proportional set size of the sshd processes (shared pages split between their users), kB. */
  sshdPssKb: number;
  /** utime+stime+cutime+cstime of the sshd processes (clock ticks). */
  sshdCpuTicks: number;
  commands: string[];
}

export interface WatchPollerResult {
  gateways: number;
  warmConnectMs: number;
  warm: number;
  rss: { noneMb: number; warmMb: number; afterPollingMb: number; perGatewayKb: number };
  /** JS heap + external + array buffers (what the sessions allocate, without the allocator's slack). */
  js: { noneMb: number; warmMb: number; perGatewayKb: number };
  /** The embedded redis-server's CPU over the window. */
  redis: { cpuMs: number; cpuMsPerPoll: number } | null;
  window: { seconds: number; polls: number; failed: number; pollsPerSecond: number; cpuMs: number; cpuMsPerPoll: number; cpuShareOfOneCore: number };
  /** The processor's own duration: job start -> episode state stored and published (ms). */
  processorMs: number[];
  /** Job scheduled time (timestamp + delay) -> the worker started it (ms). */
  lagMs: number[];
  /** The poll itself (warm session lease + the one exec + parse), from the processor's onPolled (ms). */
  execMs: number[];
  /** Scheduled times modulo the 1 s interval, in 100 ms buckets: how the schedulers spread the polls over the second. */
  phaseBuckets: number[];
  probe: { gateway: string; before: NetnsProcs; warm: NetnsProcs; polls: number; sshdCpuMsPerPoll: number; clkTck: number };
}

const [inventoryPath, windowArg, warmupArg, probeGateway, probeNetns] = process.argv.slice(2);
if (!inventoryPath || !probeGateway || !probeNetns) {
  process.stderr.write('usage: watch-poller.ts <inventory.yml> <window-s> <warmup-s> <probe-gateway> <probe-netns>\n');
  process.exit(2);
}
const windowS = Number(windowArg ?? 30);
const warmupS = Number(warmupArg ?? 5);
const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mb = (b: number) => Math.round((b / 2 ** 20) * 10) / 10;
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

async function settledRss(): Promise<{ rss: number; js: number }> {
  for (let i = 0; i < 3; i++) {
    gc();
    await sleep(300);
  }
  const m = process.memoryUsage();
  return { rss: m.rss, js: m.heapUsed + m.external };
}

/** utime+stime of this process's redis-server child (clock ticks), or null. */
async function redisTicks(): Promise<number | null> {
  const children = await readFile(`/proc/${process.pid}/task/${process.pid}/children`, 'utf8').catch(() => '');
  for (const pid of children.split(/\s+/).filter(Boolean)) {
    const comm = (await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')).trim();
    if (comm !== 'redis-server') continue;
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(rest[11]) + Number(rest[12]);
  }
  return null;
}

async function netnsProcs(ns: string): Promise<NetnsProcs> {
  const pids = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).split(/\s+/).filter(Boolean);
  const out: NetnsProcs = { processes: 0, sshdProcesses: 0, rssKb: 0, sshdRssKb: 0, sshdPssKb: 0, sshdCpuTicks: 0, commands: [] };
  for (const pid of pids) {
    const [status, stat, cmdline] = await Promise.all([
      readFile(`/proc/${pid}/status`, 'utf8').catch(() => ''),
      readFile(`/proc/${pid}/stat`, 'utf8').catch(() => ''),
      readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => ''),
    ]);
    if (!status) continue;
    const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    const cmd = cmdline.split('\0').filter(Boolean).join(' ').slice(0, 80);
    const isSshd = /^sshd/.test(cmd) || /\/sshd/.test(cmd.split(' ')[0] ?? '');
    out.processes++;
    out.rssKb += rss;
    out.commands.push(cmd);
    if (isSshd) {
      out.sshdProcesses++;
      out.sshdRssKb += rss;
      const rollup = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8').catch(() => '');
      out.sshdPssKb += Number(/^Pss:\s+(\d+)/m.exec(rollup)?.[1] ?? 0);
      // Fields after the ")" of comm: utime stime cutime cstime are fields 14..17 (1-based).
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.sshdCpuTicks += [11, 12, 13, 14].reduce((s, i) => s + Number(rest[i] ?? 0), 0);
    }
  }
  return out;
}

const env = loadEnv({ QUEUE_PREFIX: '{bench-watch}', LOG_LEVEL: 'error', INVENTORY: inventoryPath, WATCH_CONCURRENCY: '16' });
const rt = await openRuntime(env);
const inventory = rt.inventory();
const names = Object.keys(inventory.gateways).sort();
const pool = new SessionPool();
const processorMs: number[] = [];
const lagMs: number[] = [];
const execMs: number[] = [];
const phaseBuckets: number[] = Array.from({ length: 10 }, () => 0);
let measuring = false;
let polls = 0;
let failed = 0;
let probePolls = 0;
const process_ = createPollProcessor({
  inventory: rt.inventory,
  keepWarm: (gateway, config) => pool.watch(gateway, config),
  sessions: pool.provider,
  store: rt.watchStore,
  watchList: rt.watchList,
  publisher: silentEpisodePublisher,
  enqueueCheck: (job) => enqueueCheck(rt.queues, job),
  onPolled: (gateway, ok, durationMs) => {
    if (!measuring) return;
    polls++;
    execMs.push(Math.round(durationMs * 10) / 10);
    if (!ok) failed++;
    if (gateway === probeGateway) probePolls++;
  },
});
const workerConn = rt.redisHandle.connect();
const worker = new Worker<PollJob>(
  QUEUES.poll,
  async (job: Job<PollJob>) => {
    const t0 = performance.now();
    const scheduled = job.timestamp + (job.opts.delay ?? 0);
    const result = await process_(job);
    if (measuring) {
      processorMs.push(performance.now() - t0);
      lagMs.push((job.processedOn ?? Date.now()) - scheduled);
      phaseBuckets[Math.floor((scheduled % 1000) / 100)]! += 1;
    }
    return result;
  },
  { connection: workerConn, prefix: env.QUEUE_PREFIX, concurrency: env.WATCH_CONCURRENCY, maxStalledCount: 0 },
);
await worker.waitUntilReady();
const deps: WatchControlDeps = { inventory: rt.inventory, watchList: rt.watchList, queues: rt.queues, defaultIntervalSeconds: 1 };
try {
  // Warm the code paths with one gateway (module loading, ssh2 crypto), then let go of it.
  await pool.watch(names[0]!, inventory.gateways[names[0]!]!);
  pool.unwatch(names[0]!);
  await sleep(500);
  const before = await netnsProcs(probeNetns);
  const none = await settledRss();

  const w0 = performance.now();
  await Promise.all(names.map((g) => pool.watch(g, inventory.gateways[g]!)));
  const warmConnectMs = Math.round(performance.now() - w0);
  const warm = names.filter((g) => pool.isWarm(g)).length;
  const warmMem = await settledRss();
  const warmProbe = await netnsProcs(probeNetns);

  await watchGateways(deps, names, { intervalSeconds: 1, channel: null, by: 'bench' });
  await sleep(warmupS * 1000);
  measuring = true;
  const ticks0 = (await netnsProcs(probeNetns)).sshdCpuTicks;
  const redis0 = await redisTicks();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await sleep(windowS * 1000);
  const cpu = process.cpuUsage(cpu0);
  const seconds = (performance.now() - t0) / 1000;
  const redis1 = await redisTicks();
  const ticks1 = (await netnsProcs(probeNetns)).sshdCpuTicks;
  measuring = false;
  for (const g of names) await unwatchGateway(deps, g);
  const after = await settledRss();
  const cpuMs = (cpu.user + cpu.system) / 1000;
  const result: WatchPollerResult = {
    gateways: names.length,
    warmConnectMs,
    warm,
    rss: { noneMb: mb(none.rss), warmMb: mb(warmMem.rss), afterPollingMb: mb(after.rss), perGatewayKb: Math.round((warmMem.rss - none.rss) / 1024 / names.length) },
    js: { noneMb: mb(none.js), warmMb: mb(warmMem.js), perGatewayKb: Math.round((warmMem.js - none.js) / 1024 / names.length) },
    redis:
      redis0 !== null && redis1 !== null
        ? { cpuMs: Math.round(((redis1 - redis0) * 1000) / CLK_TCK), cpuMsPerPoll: Math.round((((redis1 - redis0) * 1000) / CLK_TCK / Math.max(1, polls)) * 100) / 100 }
        : null,
    window: {
      seconds: Math.round(seconds * 10) / 10,
      polls,
      failed,
      pollsPerSecond: Math.round((polls / seconds) * 10) / 10,
      cpuMs: Math.round(cpuMs),
      cpuMsPerPoll: Math.round((cpuMs / Math.max(1, polls)) * 100) / 100,
      cpuShareOfOneCore: Math.round((cpuMs / (seconds * 1000)) * 1000) / 1000,
    },
    processorMs: processorMs.map((v) => Math.round(v * 10) / 10),
    lagMs,
    execMs,
    phaseBuckets,
    probe: {
      gateway: probeGateway,
      before,
      warm: warmProbe,
      polls: probePolls,
      sshdCpuMsPerPoll: Math.round((((ticks1 - ticks0) * 1000) / CLK_TCK / Math.max(1, probePolls)) * 100) / 100,
      clkTck: CLK_TCK,
    },
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  await worker.close();
  workerConn.disconnect();
  pool.close();
  await rt.close();
}
