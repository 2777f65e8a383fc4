/**
 * Part 5 of `npm run bench`: the watch at fleet scale. N small lab gateways polled every
 * second by ONE poll worker (the real poll processor, SessionPool and WatchStore, embedded
 * Redis) in a child process (bench/children/watch-poller.ts), so that its CPU and RSS are
 * the worker's alone. Reports, from the same run:
 *  - bot CPU per poll (process.cpuUsage over the window / polls in the window);
 *  - RSS per watched gateway ((RSS with N warm sessions - RSS with none) / N, after GC);
 *  - poll latency p50/p99: the processor's own duration (job start -> state stored), and the
 *    queue lag (scheduled time -> the worker started the job);
 *  - the gateway side: sshd processes and RSS per warm session, sshd CPU per poll, measured
 *    in one gateway's network namespace;
 *  - the extrapolation to 1,000 gateways at 30 s.
 * Labs are named cto-bnw<NN>, and all of them go at the end, also when anything fails.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { WatchPollerResult } from '../children/watch-poller.js';
import { runTsChild } from '../lib/child.js';
import { downLabs, labNames, upLabs } from '../lib/labs.js';
import { quantile, round } from '../lib/stats.js';

export const WATCH_PREFIX = 'cto-bnw';

export interface WatchBenchResult {
  gateways: number;
  labUpMs: number;
  labUpMsPerGateway: number;
  poller: WatchPollerResult;
  cpuMsPerPoll: number;
  rssKbPerGateway: number;
  processor: { p50: number; p99: number; max: number };
  lag: { p50: number; p99: number; max: number };
  exec: { p50: number; p99: number; max: number };
  jsKbPerGateway: number;
  redisCpuMsPerPoll: number | null;
  gatewaySide: { sshdProcessesPerSession: number; sshdRssKbPerSession: number; sshdPssKbPerSession: number; sshdCpuMsPerPoll: number };
  /** 1,000 gateways every 30 s on one worker process, from the figures above. */
  at1000: { pollsPerSecond: number; cpuShareOfOneCore: number; redisShareOfOneCore: number | null; rssMb: number; sessions: number };
  teardown: { labsDown: number; leftoverNetns: string[] };
}

function latency(values: number[]): { p50: number; p99: number; max: number } {
  const s = [...values].sort((a, b) => a - b);
  return { p50: round(quantile(s, 0.5)), p99: round(quantile(s, 0.99)), max: round(s.at(-1) ?? Number.NaN) };
}

export async function benchWatch(opts: { gateways: number; windowSeconds: number; warmupSeconds: number; log: (s: string) => void }): Promise<WatchBenchResult> {
  const { log } = opts;
  const names = labNames(WATCH_PREFIX, opts.gateways);
  const dir = await mkdtemp(join(tmpdir(), 'cto-bench-watch-'));
  const teardown = { labsDown: 0, leftoverNetns: [] as string[] };
  try {
    // One client with one source: the watch needs the gateway's sshd, not traffic.
    const { labs, labUpMs } = await upLabs(WATCH_PREFIX, names, { clients: 1, sourcesPerClient: 1 });
    log(`  ${labs.length} labs up in ${labUpMs} ms (${Math.round(labUpMs / labs.length)} ms each, 4 at a time)`);

    const inventoryPath = join(dir, 'inventory.yml');
    await writeFile(inventoryPath, stringify({ gateways: Object.fromEntries(labs.map((l) => [l.name, l.inventoryEntry])) }));
    const probe = labs[0]!;
    const poller = await runTsChild<WatchPollerResult>(
      'bench/children/watch-poller.ts',
      [inventoryPath, String(opts.windowSeconds), String(opts.warmupSeconds), probe.name, probe.namespaces.gateway],
      { nodeArgs: ['--expose-gc'], timeoutMs: (opts.windowSeconds + opts.warmupSeconds) * 1000 + 120_000 },
    );
    if (poller.warm !== labs.length) throw new Error(`only ${poller.warm} of ${labs.length} warm sessions opened`);
    const w = poller.window;
    log(
      `  one worker, ${poller.gateways} gateways every 1 s: ${w.polls} polls in ${w.seconds} s (${w.pollsPerSecond}/s, ${w.failed} failed), bot CPU ${w.cpuMs} ms = ${w.cpuMsPerPoll} ms per poll (${round(w.cpuShareOfOneCore * 100)} % of one core)`,
    );
    const processor = latency(poller.processorMs);
    const lag = latency(poller.lagMs);
    const exec = latency(poller.execMs);
    log(`  poll latency: processor's own duration p50 ${processor.p50} ms, p99 ${processor.p99} ms; scheduled -> started p50 ${lag.p50} ms, p99 ${lag.p99} ms; of which the exec on the warm session p50 ${exec.p50} ms, p99 ${exec.p99} ms`);
    log(`  when the polls were due within the second (100 ms buckets): ${poller.phaseBuckets.join(' ')}`);
    log(
      `  bot RSS: ${poller.rss.noneMb} MB with no session, ${poller.rss.warmMb} MB with ${poller.gateways} warm sessions (${poller.rss.perGatewayKb} kB per gateway; JS heap + external ${poller.js.perGatewayKb} kB per gateway), ${poller.rss.afterPollingMb} MB after the window`,
    );
    if (poller.redis) log(`  embedded redis-server: ${poller.redis.cpuMs} ms CPU in the window = ${poller.redis.cpuMsPerPoll} ms per poll`);
    const sshdProcs = poller.probe.warm.sshdProcesses - poller.probe.before.sshdProcesses;
    const sshdRss = poller.probe.warm.sshdRssKb - poller.probe.before.sshdRssKb;
    const sshdPss = poller.probe.warm.sshdPssKb - poller.probe.before.sshdPssKb;
    log(
      `  gateway ${probe.name}: sshd processes ${poller.probe.before.sshdProcesses} -> ${poller.probe.warm.sshdProcesses} with the warm session (+${sshdRss} kB RSS, +${sshdPss} kB PSS); sshd CPU ${poller.probe.sshdCpuMsPerPoll} ms per poll (${poller.probe.polls} polls)`,
    );
    const polls1000 = 1000 / 30;
    const at1000 = {
      pollsPerSecond: round(polls1000, 1),
      cpuShareOfOneCore: round((w.cpuMsPerPoll * polls1000) / 1000, 3),
      redisShareOfOneCore: poller.redis ? round((poller.redis.cpuMsPerPoll * polls1000) / 1000, 3) : null,
      // The larger of the two per-gateway figures (RSS after GC can hide small growth in free heap pages).
      rssMb: round(poller.rss.noneMb + (Math.max(poller.rss.perGatewayKb, poller.js.perGatewayKb) * 1000) / 1024, 0),
      sessions: 1000,
    };
    log(
      `  1,000 gateways every 30 s on one worker: ${at1000.pollsPerSecond} polls/s, ~${round(at1000.cpuShareOfOneCore * 100)} % of one core (Redis ~${at1000.redisShareOfOneCore === null ? '?' : round(at1000.redisShareOfOneCore * 100)} % more), ~${at1000.rssMb} MB RSS, 1,000 SSH sessions (one per gateway per worker process)`,
    );
    return {
      gateways: labs.length,
      labUpMs,
      labUpMsPerGateway: Math.round(labUpMs / labs.length),
      poller,
      cpuMsPerPoll: w.cpuMsPerPoll,
      rssKbPerGateway: poller.rss.perGatewayKb,
      processor,
      lag,
      exec,
      jsKbPerGateway: poller.js.perGatewayKb,
      redisCpuMsPerPoll: poller.redis?.cpuMsPerPoll ?? null,
      gatewaySide: { sshdProcessesPerSession: sshdProcs, sshdRssKbPerSession: sshdRss, sshdPssKbPerSession: sshdPss, sshdCpuMsPerPoll: poller.probe.sshdCpuMsPerPoll },
      at1000,
      teardown,
    };
  } finally {
    Object.assign(teardown, await downLabs(WATCH_PREFIX, names, log));
    await rm(dir, { recursive: true, force: true });
  }
}
