/**
 * Part 4: 20 lab gateways checked at once through the real queue: BullMQ on the embedded
 * Redis, one Worker with concurrency 4 running the real check processor (createCheckProcessor:
 * per-gateway lock, runCheck over a fresh ssh2 connection, plan and history stores).
 *   single  one gateway's check alone (enqueue -> finished), repeated
 *   fleet   20 checks enqueued at once; per job: queue wait (enqueued -> started) and service
 *           time (started -> finished); total = first enqueue -> last finish
 * Compared with: ideal total = sum(service) / concurrency, and the FIFO expectation for the
 * longest wait = (ceil(N / concurrency) - 1) x mean service time.
 *
 * Labs are small (healthy scenario, 1 client) and named cto-bnq<NN>; all are torn down in
 * `finally` (labDown each + labDownAll of the prefix), also when anything fails.
 */
import { QueueEvents, Worker, type Job } from 'bullmq';
import { loadEnv } from '../../src/config/env.js';
import { inventorySchema } from '../../src/config/inventory.js';
import { freshSessions } from '../../src/gateway/session-pool.js';
import { fillScenario, type Lab } from '../../lab/index.js';
import { enqueueCheck } from '../../src/queue/producer.js';
import { QUEUES, type CheckJob, type CheckResult } from '../../src/queue/jobs.js';
import { openRuntime, type Runtime } from '../../src/runtime.js';
import { silentCheckPublisher } from '../../src/worker/ports.js';
import { downLabs, labNames, upLabs } from '../lib/labs.js';
import { mapLimit } from '../lib/map-limit.js';
import { round, summarize, type Summary } from '../lib/stats.js';

export const FLEET_PREFIX = 'cto-bnq';

export interface FleetJob {
  gateway: string;
  waitMs: number;
  serviceMs: number;
  ok: boolean;
  error?: string;
}

export interface FleetRound {
  totalMs: number;
  jobs: FleetJob[];
  failed: number;
  maxWaitMs: number;
  meanServiceMs: number;
  /** sum(service) / concurrency. */
  idealTotalMs: number;
  /** (ceil(N / c) - 1) x mean service: the longest wait a fair FIFO pool would give. */
  expectedMaxWaitMs: number;
}

export interface FleetResult {
  gateways: number;
  concurrency: number;
  labUpMs: number;
  fillMs: number;
  single: { endToEnd: Summary; service: Summary; wait: Summary };
  rounds: FleetRound[];
  total: Summary;
  /** total (median) / single end to end (median); a perfect 4-way pool gives N / c. */
  totalVsSingle: number;
  idealVsSingle: number;
  maxWait: Summary;
  expectedMaxWait: Summary;
  /** maxWait / expectedMaxWait (median round): 1.0 = as fair as FIFO can be. */
  maxWaitVsExpected: number;
  /** totalMs / idealTotalMs (median round): 1.0 = no slot ever idle. */
  totalVsIdeal: number;
  serviceAlone: number;
  serviceInFleet: Summary;
  teardown: { labsDown: number; leftoverNetns: string[] };
}

async function waitFor(job: Job<CheckJob, CheckResult>, events: QueueEvents, timeoutMs: number): Promise<void> {
  await job.waitUntilFinished(events, timeoutMs).catch(() => undefined);
}

export async function benchFleet(opts: {
  gateways: number;
  concurrency: number;
  rounds: number;
  singleRuns: number;
  log: (s: string) => void;
}): Promise<FleetResult> {
  const { log } = opts;
  const names = labNames(FLEET_PREFIX, opts.gateways);
  let labs: Lab[] = [];
  let rt: Runtime | undefined;
  let worker: Worker<CheckJob, CheckResult> | undefined;
  let events: QueueEvents | undefined;
  const connections: { disconnect(): void }[] = [];
  const teardown = { labsDown: 0, leftoverNetns: [] as string[] };
  try {
    const up = await upLabs(FLEET_PREFIX, names, { clients: 1, sourcesPerClient: 2 });
    labs = up.labs;
    const labUpMs = up.labUpMs;
    const f0 = Date.now();
    const small = { udp: 100, unreplied: 10, established: 30, timewait: 30 };
    const fills = await mapLimit(labs, 4, (lab) => fillScenario(lab, 'healthy', { healthy: small, timeoutMs: 120_000 }));
    const failedFills = fills.filter((f) => f.status === 'rejected');
    if (failedFills.length) throw new Error(`${failedFills.length} fill(s) failed: ${String((failedFills[0] as PromiseRejectedResult).reason).slice(0, 300)}`);
    const fillMs = Date.now() - f0;
    log(`${labs.length} labs up in ${labUpMs} ms, filled (healthy, small) in ${fillMs} ms`);

    const env = loadEnv({ QUEUE_PREFIX: '{bench-fleet}', LOG_LEVEL: 'error', WORKER_CONCURRENCY: String(opts.concurrency) });
    const inventory = inventorySchema.parse({ gateways: Object.fromEntries(labs.map((l) => [l.name, l.inventoryEntry])) });
    rt = await openRuntime(env, { inventory });
    const { createCheckProcessor } = await import('../../src/worker/check-processor.js');
    const runtime = rt;
    runtime.queues.check.setMaxListeners(100);
    const workerConn = runtime.redisHandle.connect();
    const eventsConn = runtime.redisHandle.connect();
    connections.push(workerConn, eventsConn);
    worker = new Worker<CheckJob, CheckResult>(
      QUEUES.check,
      createCheckProcessor({
        inventory: runtime.inventory,
        sessions: freshSessions(),
        plans: runtime.plans,
        history: runtime.history,
        locks: runtime.locks,
        publisherFor: () => silentCheckPublisher,
        planTtlMinutes: env.PLAN_TTL_MINUTES,
      }),
      { connection: workerConn, prefix: env.QUEUE_PREFIX, concurrency: opts.concurrency },
    );
    events = new QueueEvents(QUEUES.check, { connection: eventsConn, prefix: env.QUEUE_PREFIX });
    events.setMaxListeners(100);
    await Promise.all([worker.waitUntilReady(), events.waitUntilReady()]);
    let seq = 0;
    const enqueue = async (gateway: string) => {
      const id = await enqueueCheck(runtime.queues, { gateway, requestedBy: 'bench', requestId: `bench-${Date.now()}-${seq++}`, origin: { kind: 'cli' } }, { attempts: 1 });
      return (await runtime.queues.check.getJob(id)) as Job<CheckJob, CheckResult>;
    };
    const describe = async (job: Job<CheckJob, CheckResult>): Promise<FleetJob & { added: number; finished: number }> => {
      const j = (await runtime.queues.check.getJob(job.id as string)) as Job<CheckJob, CheckResult>;
      const state = await j.getState();
      const started = j.processedOn ?? Number.NaN;
      const finished = j.finishedOn ?? Number.NaN;
      const res: FleetJob & { added: number; finished: number } = {
        gateway: j.data.gateway,
        waitMs: started - j.timestamp,
        serviceMs: finished - started,
        ok: state === 'completed',
        added: j.timestamp,
        finished,
      };
      if (state !== 'completed') res.error = `${state}: ${(j.failedReason ?? '').slice(0, 200)}`;
      return res;
    };

    // One gateway alone.
    const single: { e2e: number[]; service: number[]; wait: number[] } = { e2e: [], service: [], wait: [] };
    for (let i = 0; i < opts.singleRuns; i++) {
      const job = await enqueue(labs[0]!.name);
      await waitFor(job, events, 60_000);
      const d = await describe(job);
      if (!d.ok) throw new Error(`single check failed: ${d.error}`);
      single.e2e.push(d.finished - d.added);
      single.service.push(d.serviceMs);
      single.wait.push(d.waitMs);
    }
    const singleRes = { endToEnd: summarize(single.e2e), service: summarize(single.service), wait: summarize(single.wait) };
    log(`  one gateway alone: ${singleRes.endToEnd.median} ms enqueue->finished (service ${singleRes.service.median} ms, wait ${singleRes.wait.median} ms)`);

    const rounds: FleetRound[] = [];
    for (let r = 0; r < opts.rounds; r++) {
      const jobs = await Promise.all(labs.map((l) => enqueue(l.name)));
      await Promise.all(jobs.map((j) => waitFor(j, events as QueueEvents, 180_000)));
      const ds = await Promise.all(jobs.map(describe));
      const ok = ds.filter((d) => d.ok);
      const totalMs = Math.max(...ds.map((d) => d.finished)) - Math.min(...ds.map((d) => d.added));
      const meanService = ok.reduce((s, d) => s + d.serviceMs, 0) / Math.max(1, ok.length);
      const round_: FleetRound = {
        totalMs,
        jobs: ds.map(({ gateway, waitMs, serviceMs, ok: good, error }) => ({ gateway, waitMs, serviceMs, ok: good, ...(error ? { error } : {}) })),
        failed: ds.length - ok.length,
        maxWaitMs: Math.max(...ds.map((d) => d.waitMs)),
        meanServiceMs: round(meanService),
        idealTotalMs: round(ok.reduce((s, d) => s + d.serviceMs, 0) / opts.concurrency),
        expectedMaxWaitMs: round((Math.ceil(ds.length / opts.concurrency) - 1) * meanService),
      };
      rounds.push(round_);
      log(
        `  fleet round ${r + 1}/${opts.rounds}: ${ds.length} checks, ${round_.failed} failed, total ${totalMs} ms (ideal ${round_.idealTotalMs} ms), max wait ${round_.maxWaitMs} ms (FIFO expectation ${round_.expectedMaxWaitMs} ms), mean service ${round_.meanServiceMs} ms`,
      );
    }
    const total = summarize(rounds.map((r) => r.totalMs));
    const maxWait = summarize(rounds.map((r) => r.maxWaitMs));
    const expectedMaxWait = summarize(rounds.map((r) => r.expectedMaxWaitMs));
    const med = (xs: number[]) => summarize(xs).median;
    return {
      gateways: labs.length,
      concurrency: opts.concurrency,
      labUpMs,
      fillMs,
      single: singleRes,
      rounds,
      total,
      totalVsSingle: round(total.median / singleRes.endToEnd.median, 2),
      idealVsSingle: round(labs.length / opts.concurrency, 2),
      maxWait,
      expectedMaxWait,
      maxWaitVsExpected: round(med(rounds.map((r) => r.maxWaitMs / Math.max(1, r.expectedMaxWaitMs))), 2),
      totalVsIdeal: round(med(rounds.map((r) => r.totalMs / Math.max(1, r.idealTotalMs))), 2),
      serviceAlone: singleRes.service.median,
      serviceInFleet: summarize(rounds.flatMap((r) => r.jobs.filter((j) => j.ok).map((j) => j.serviceMs))),
      teardown,
    };
  } finally {
    await worker?.close().catch(() => undefined);
    await events?.close().catch(() => undefined);
    for (const c of connections) c.disconnect();
    await rt?.close().catch(() => undefined);
    Object.assign(teardown, await downLabs(FLEET_PREFIX, names, log));
  }
}
