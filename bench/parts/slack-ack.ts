/**
 * Part 3: 200 concurrent signed `/conntrack check <gw>` requests against the HTTP receiver
 * (createSlackApp, SLACK_MODE=http, the local Slack API server) with real Redis (the
 * embedded redis-server of openRuntime). No worker runs: every job must still be waiting
 * in the queue afterwards. Ack latency is measured by the client (a separate process):
 * request sent -> HTTP response read.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadEnv } from '../../src/config/env.js';
import { inventorySchema } from '../../src/config/inventory.js';
import { enqueueCheck, openQueues } from '../../src/queue/producer.js';
import { openRuntime, type Runtime } from '../../src/runtime.js';
import { createSlackApp } from '../../src/slack/app.js';
import { startSlackApi, type SlackApiServer } from '../../test/support/slack-api/index.js';
import { spawn } from 'node:child_process';
import { Session } from 'node:inspector/promises';
import { runTsChild, REPO_ROOT } from '../lib/child.js';
import { summarizeProfile, type HotFunction } from '../lib/cpuprofile.js';
import { quantile, round, summarize, type Summary } from '../lib/stats.js';

/**
 * The target is a ratio measured in the same run: ack p99 / Bolt-alone p99 (the same burst
 * answered as `/conntrack help`, no Redis), per round, median over rounds. An absolute
 * 50 ms moves with the machine's load; what the ack adds to Bolt does not.
 */
export const ACK_VS_BOLT_P99_TARGET = 1.3;
const SECRET = 'bench-signing-secret-0123456789abcdef';
const CHANNEL = 'C0BENCH01';
const USER = 'U0BENCH01';
const GATEWAY = 'gw-bench';

interface LoadOutput {
  round: number;
  wallMs: number;
  warmupMs: number[];
  latencies: number[];
  statuses: number[];
  jobIds: (string | null)[];
  errors: string[];
}

export interface AckRound {
  round: number;
  requests: number;
  ok: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  /** Measured inside the receiver: request arrived -> response finished (no client or TCP connect time). */
  server: { p50: number; p99: number; max: number };
  /** First request sent -> last response read. */
  wallMs: number;
  /**
   * The same burst, same client, just before, against (1) a bare node:http server that reads
   * the body and answers 200 (the machine's HTTP floor) and (2) this receiver with
   * `/conntrack help` (Bolt: signature, parsing, middleware, ack; no Redis).
   */
  httpFloor: { p50: number; p99: number };
  boltHelp: { p50: number; p99: number };
  jobsFound: number;
  jobsWaiting: number;
  errors: string[];
}

export interface SlackAckResult {
  concurrency: number;
  /** Unmeasured bursts of each kind sent first (JIT warm-up of a fresh receiver). */
  warmupBursts?: number;
  rounds: AckRound[];
  p50: Summary;
  p99: Summary;
  /** All requests of all rounds pooled. */
  pooled: { n: number; p50: number; p99: number; max: number };
  queue: Record<string, number>;
  /**
   * The enqueue floor: the same number of enqueueCheck calls issued at once straight into
   * the same Redis (another prefix), no HTTP, no Bolt. No ack can be faster than its enqueue.
   */
  enqueueFloor: { p50: Summary; p99: Summary; wall: Summary };
  expectedJobs: number;
  allJobsInQueue: boolean;
  /**
   * Judged on the client-side p99 (what Slack would see) divided by the client-side p99 of
   * the same burst answered by Bolt alone just before it, per round; median over rounds.
   */
  target: { ackVsBoltP99: number; met: boolean };
  /** ack p99 / Bolt-alone p99, per round. */
  ackVsBoltP99: Summary;
  receiverP99: Summary;
  /** Client-side p99 per round of the side-by-side bursts (see AckRound). */
  httpFloorP99: Summary;
  boltHelpP99: Summary;
  /**
   * CPU profile of the receiver process during one extra burst (not in the latencies above):
   * where its event loop spends the time. `idlePct` high = the receiver waits (on Redis).
   */
  receiverProfile?: { sampledMs: number; idlePct: number; top: HotFunction[]; byFile: { file: string; selfMs: number; selfPct: number }[] };
}

function sortedLatencies(out: LoadOutput): number[] {
  return [...out.latencies].sort((a, b) => a - b);
}

function burstQuantiles(out: LoadOutput): { p50: number; p99: number } {
  const sorted = sortedLatencies(out);
  return { p50: round(quantile(sorted, 0.5)), p99: round(quantile(sorted, 0.99)) };
}

/** A bare HTTP server answering every POST like an ack: what any framework's ack costs at least here. */
async function startHttpFloor(): Promise<{ url: string; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"response_type":"ephemeral","text":"ok"}'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/slack/events`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export async function benchSlackAck(opts: { rounds: number; concurrency: number; warmupBursts: number; log: (s: string) => void }): Promise<SlackAckResult> {
  const { log } = opts;
  let slack: SlackApiServer | undefined;
  let rt: Runtime | undefined;
  let app: ReturnType<typeof createSlackApp> | undefined;
  let floorServer: Awaited<ReturnType<typeof startHttpFloor>> | undefined;
  try {
    slack = await startSlackApi({ channels: [{ id: CHANNEL, name: 'ops' }], users: [{ id: USER, name: 'bench' }] });
    const env = loadEnv({
      SLACK_MODE: 'http',
      SLACK_BOT_TOKEN: slack.token,
      SLACK_SIGNING_SECRET: SECRET,
      SLACK_API_URL: slack.apiUrl,
      QUEUE_PREFIX: '{bench-ack}',
      LOG_LEVEL: 'error',
    });
    const inventory = inventorySchema.parse({
      gateways: {
        [GATEWAY]: {
          host: '127.0.0.1',
          port: 22,
          user: 'root',
          identityFile: '/nonexistent/never-used',
          hostKey: `SHA256:${'A'.repeat(43)}`,
        },
      },
    });
    rt = await openRuntime(env, { inventory }); // no REDIS_URL: embedded redis-server
    app = createSlackApp({ rt, env, clientOptions: { retryConfig: { retries: 0 } } });
    const server = (await app.start({ port: 0, host: '127.0.0.1' } as never)) as unknown as Server;
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/slack/events`;
    // Server-side ack time: request arrives (first listener) -> response finished.
    const serverMs: number[] = [];
    server.prependListener('request', (_req: IncomingMessage, res: ServerResponse) => {
      const t0 = performance.now();
      res.once('finish', () => serverMs.push(performance.now() - t0));
    });
    // the embedded Redis URL holds its password: only its socket path is printed
    log(`receiver ${url}, Redis ${rt.redisHandle.url.replace(/\?.*$/, '')} (embedded), no workers`);

    floorServer = await startHttpFloor();
    const floorUrl = floorServer.url;
    const burst = (target: string, round_: number, warmup: number, text?: string): Promise<LoadOutput> =>
      runTsChild<LoadOutput>(
        'bench/children/slack-load.ts',
        [JSON.stringify({ url: target, secret: SECRET, gateway: GATEWAY, count: opts.concurrency, round: round_, warmup, channelId: CHANNEL, userId: USER, ...(text ? { text } : {}) })],
        { timeoutMs: 120_000 },
      );

    // A receiver in production is long-running: warm its JIT with unmeasured bursts of each
    // kind first (the check bursts' jobs are drained again, so the queue counts stay exact).
    for (let w = 0; w < opts.warmupBursts; w++) {
      await burst(floorUrl, -1 - w, 5);
      await burst(url, -1 - w, 5, 'help');
      await burst(url, -1 - w, 5);
    }
    if (opts.warmupBursts > 0) {
      await rt.queues.check.drain();
      log(`  ${opts.warmupBursts} unmeasured warm-up bursts of each kind sent (their jobs drained)`);
    }
    const rounds: AckRound[] = [];
    let extraJobs = 0;
    const all: number[] = [];
    const allServer: number[] = [];
    for (let r = 0; r < opts.rounds; r++) {
      // Side by side, same client, one after the other: the HTTP floor, Bolt alone, then the
      // measured check burst last (the receiver-side tail below belongs to it).
      const httpFloor = burstQuantiles(await burst(floorUrl, r, r === 0 ? 20 : 5));
      const cpu0 = process.cpuUsage();
      const boltHelp = burstQuantiles(await burst(url, r, r === 0 ? 20 : 5, 'help'));
      const cpu1 = process.cpuUsage();
      const out = await burst(url, r, 5);
      const cpu2 = process.cpuUsage();
      const cpuMs = (from: NodeJS.CpuUsage, to: NodeJS.CpuUsage): number => round((to.user - from.user + to.system - from.system) / 1000);
      const sorted = sortedLatencies(out);
      // The child's warm-up requests finish before its burst starts: the burst is the tail.
      const server_ = serverMs.slice(-opts.concurrency).sort((a, b) => a - b);
      allServer.push(...server_);
      all.push(...out.latencies);
      const ids = out.jobIds.filter((id): id is string => id !== null);
      let found = 0;
      let waiting = 0;
      for (const id of ids) {
        const job = await rt.queues.check.getJob(id);
        if (job) {
          found++;
          if ((await job.getState()) === 'waiting') waiting++;
        }
      }
      const round_: AckRound = {
        round: r,
        requests: out.latencies.length,
        ok: out.statuses.filter((s) => s === 200).length,
        p50: round(quantile(sorted, 0.5)),
        p90: round(quantile(sorted, 0.9)),
        p99: round(quantile(sorted, 0.99)),
        max: round(sorted.at(-1) ?? Number.NaN),
        server: { p50: round(quantile(server_, 0.5)), p99: round(quantile(server_, 0.99)), max: round(server_.at(-1) ?? Number.NaN) },
        wallMs: round(out.wallMs),
        httpFloor,
        boltHelp,
        jobsFound: new Set(ids).size === ids.length ? found : -1,
        jobsWaiting: waiting,
        errors: out.errors.slice(0, 5),
      };
      rounds.push(round_);
      log(
        `  round ${r + 1}/${opts.rounds}: ${round_.ok}/${round_.requests} HTTP 200, ack p50 ${round_.p50} ms, p99 ${round_.p99} ms, max ${round_.max} ms (receiver-side p50 ${round_.server.p50}, p99 ${round_.server.p99}); ${round_.jobsFound} jobs found (${round_.jobsWaiting} waiting)`,
      );
      log(
        `           same burst side by side: bare node:http server p99 ${httpFloor.p99} ms, Bolt answering help (no Redis) p99 ${boltHelp.p99} ms; ack p99 / Bolt alone ${round(round_.p99 / boltHelp.p99, 2)}x; receiver process CPU help ${cpuMs(cpu0, cpu1)} ms, check ${cpuMs(cpu1, cpu2)} ms`,
      );
    }
    // One more burst under the V8 profiler (in this process: the receiver), not measured.
    let receiverProfile: SlackAckResult['receiverProfile'];
    const inspector = new Session();
    try {
      inspector.connect();
      await inspector.post('Profiler.enable');
      await inspector.post('Profiler.setSamplingInterval', { interval: 200 });
      // The child warms up, says READY, and bursts when told: the profile covers the burst only.
      const child = spawn(process.execPath, ['--import', 'tsx', 'bench/children/slack-load.ts', JSON.stringify({ url, secret: SECRET, gateway: GATEWAY, count: opts.concurrency, round: opts.rounds, warmup: 5, channelId: CHANNEL, userId: USER, waitForGo: true })], {
        cwd: REPO_ROOT,
        stdio: ['pipe', 'pipe', 'inherit'],
      });
      let stdout = '';
      const killer = setTimeout(() => child.kill('SIGKILL'), 120_000);
      const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (c: Buffer) => {
          const before = stdout;
          stdout += c.toString();
          if (!before.includes('READY') && stdout.includes('READY')) {
            inspector.post('Profiler.start').then(() => {
              child.stdin.end('go\n');
              resolve();
            }, reject);
          }
        });
        child.once('close', () => reject(new Error('load child ended before READY')));
      });
      await closed;
      clearTimeout(killer);
      const out = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as LoadOutput;
      const { profile } = (await inspector.post('Profiler.stop')) as { profile: Parameters<typeof summarizeProfile>[0] };
      const sum = summarizeProfile(profile, REPO_ROOT, 12);
      const idle = sum.byFile.find((f) => f.file === '(idle)')?.selfPct ?? 0;
      receiverProfile = { sampledMs: sum.sampledMs, idlePct: idle, top: sum.top, byFile: sum.byFile };
      extraJobs = out.jobIds.filter(Boolean).length;
      log(
        `  profiled burst (not counted, p99 ${round(quantile([...out.latencies].sort((a, b) => a - b), 0.99))} ms under the profiler): receiver idle ${idle} % of ${sum.sampledMs} ms (inspector's own 'dispatch' left out); busiest: ${sum.byFile
          .filter((f) => f.file !== '(idle)' && f.file !== 'dispatch')
          .slice(0, 5)
          .map((f) => `${f.file} ${f.selfPct} %`)
          .join(', ')}`,
      );
    } catch (err) {
      log(`  receiver profile failed: ${(err as Error).message}`);
    } finally {
      inspector.disconnect();
    }

    // The enqueue floor (after the HTTP rounds, into another prefix: the counts above stay exact).
    const floorQueues = openQueues(rt.redis, '{bench-ack-floor}');
    const floor = { p50: [] as number[], p99: [] as number[], wall: [] as number[] };
    try {
      for (let r = 0; r < opts.rounds; r++) {
        const lat: number[] = [];
        const w0 = performance.now();
        await Promise.all(
          Array.from({ length: opts.concurrency }, async (_, i) => {
            const s0 = performance.now();
            await enqueueCheck(floorQueues, { gateway: GATEWAY, requestedBy: USER, requestId: `floor.${r}.${i}`, origin: { kind: 'slack', channel: CHANNEL } });
            lat.push(performance.now() - s0);
          }),
        );
        floor.wall.push(performance.now() - w0);
        lat.sort((a, b) => a - b);
        floor.p50.push(quantile(lat, 0.5));
        floor.p99.push(quantile(lat, 0.99));
      }
    } finally {
      await floorQueues.close();
    }
    const enqueueFloor = { p50: summarize(floor.p50), p99: summarize(floor.p99), wall: summarize(floor.wall) };
    log(`  enqueue floor: ${opts.concurrency} enqueueCheck at once, no HTTP: p50 ${enqueueFloor.p50.median} ms, p99 ${enqueueFloor.p99.median} ms`);
    const queue = (await rt.queues.check.getJobCounts('waiting', 'active', 'delayed', 'completed', 'failed', 'prioritized')) as Record<string, number>;
    const expectedJobs = opts.rounds * opts.concurrency + extraJobs;
    const allJobsInQueue =
      rounds.every((r) => r.ok === r.requests && r.jobsFound === r.requests && r.jobsWaiting === r.requests) && queue['waiting'] === expectedJobs;
    const pooledSorted = [...all].sort((a, b) => a - b);
    const p99 = summarize(rounds.map((r) => r.p99));
    const receiverP99 = summarize(rounds.map((r) => r.server.p99));
    const ackVsBoltP99 = summarize(rounds.map((r) => round(r.p99 / r.boltHelp.p99, 2)));
    return {
      concurrency: opts.concurrency,
      warmupBursts: opts.warmupBursts,
      rounds,
      p50: summarize(rounds.map((r) => r.p50)),
      p99,
      pooled: {
        n: all.length,
        p50: round(quantile(pooledSorted, 0.5)),
        p99: round(quantile(pooledSorted, 0.99)),
        max: round(pooledSorted.at(-1) ?? Number.NaN),
      },
      queue,
      enqueueFloor,
      expectedJobs,
      allJobsInQueue,
      target: { ackVsBoltP99: ACK_VS_BOLT_P99_TARGET, met: ackVsBoltP99.median <= ACK_VS_BOLT_P99_TARGET },
      ackVsBoltP99,
      receiverP99,
      httpFloorP99: summarize(rounds.map((r) => r.httpFloor.p99)),
      boltHelpP99: summarize(rounds.map((r) => r.boltHelp.p99)),
      ...(receiverProfile ? { receiverProfile } : {}),
    };
  } finally {
    await floorServer?.close().catch(() => undefined);
    await app?.stop().catch(() => undefined);
    await rt?.close().catch(() => undefined);
    await slack?.close().catch(() => undefined);
  }
}
