/**
 * Start the workers of one process: bounded concurrency, one job per gateway at a time
 * (Redis lock), warm SSH sessions shared by checks and applies.
 */
import { Worker } from 'bullmq';
import { logger } from '../infra/logger.js';
import { metrics } from '../metrics/registry.js';
import { QUEUES, type ApplyJob, type CheckJob, type CheckResult, type PollJob, type SavedFileJob } from '../queue/jobs.js';
import { createSavedFileProcessor, type SavedFilePublisher, type SavedFileResult, type SavedFileSource } from './saved-file-processor.js';
import { enqueueCheck } from '../queue/producer.js';
import type { Runtime } from '../runtime.js';
import { ApplyRecordStore } from '../apply/store.js';
import { SessionPool } from '../gateway/session-pool.js';
import { createCheckProcessor } from './check-processor.js';
import { CheckRuns } from './check-runs.js';
import { silentCheckPublisher, silentEpisodePublisher, type ApplyPublisher, type CheckPublisher, type EpisodePublisher } from './ports.js';
import { createPollProcessor } from './poll-processor.js';
import { createApplyEngine, createApplyProcessor } from './apply-processor.js';
import { ApplyOutbox } from '../store/apply-outbox.js';
import { startSweeper, type Sweeper } from './sweeper.js';
import { superviseWorker, type SupervisedWorker } from './stuck-worker.js';

export interface WorkerOptions {
  concurrency?: number;
  /** Slack publishers (absent in terminal-only runs). */
  publishers?: { check: (job: CheckJob, jobId: string) => CheckPublisher; apply: (job: ApplyJob) => ApplyPublisher; episode?: EpisodePublisher; savedFile?: SavedFileWork };
  pool?: SessionPool;
  /** How often the warm sessions are matched to the watch list (default 30 s). */
  warmSyncMs?: number;
  /** Which queues this process works on (default all four; 'saved' only with publishers.savedFile). */
  only?: readonly WorkerKind[];
}

export type WorkerKind = 'check' | 'apply' | 'poll' | 'saved';

/** Where files shared in Slack come from and where their reports go (absent: no saved-file worker). */
export interface SavedFileWork {
  source: SavedFileSource;
  publisher: SavedFilePublisher;
}

export interface RunningWorkers {
  pool: SessionPool;
  /** The sweep of interrupted applies and unqueued approvals (null: this process runs no applies). */
  sweeper: Sweeper | null;
  /** Jobs running in this process now (what a bounded shutdown abandons). */
  running(): RunningJob[];
  close(): Promise<void>;
}

export interface RunningJob {
  queue: string;
  id: string;
  /** Gateway and plan, when the payload names them. */
  what: string;
  sinceMs: number;
}

interface JobTracker {
  active: Map<string, RunningJob>;
  /** Jobs of `queue` running in this process now. */
  running(queue: string): number;
  tracked<J extends { id?: string | undefined; data: unknown }, A extends unknown[], R>(queue: string, fn: (job: J, ...rest: A) => Promise<R>): (job: J, ...rest: A) => Promise<R>;
}

/**
 * Jobs running in this process, by queue/id (entered and left by `tracked`): what a bounded
 * shutdown names, and what tells the stuck-worker supervisor whether its Worker is idle.
 */
function jobTracker(): JobTracker {
  const active = new Map<string, RunningJob>();
  return {
    active,
    running: (queue) => {
      let n = 0;
      for (const job of active.values()) if (job.queue === queue) n++;
      return n;
    },
    tracked: (queue, fn) => async (job, ...rest) => {
      const key = `${queue}/${job.id ?? '?'}`;
      const data = (typeof job.data === 'object' && job.data !== null ? job.data : {}) as { gateway?: unknown; planId?: unknown };
      const what = [typeof data.gateway === 'string' ? data.gateway : '', typeof data.planId === 'string' ? `plan ${data.planId}` : ''].filter(Boolean).join(', ');
      active.set(key, { queue, id: job.id ?? '?', what, sinceMs: Date.now() });
      try {
        return await fn(job, ...rest);
      } finally {
        active.delete(key);
      }
    },
  };
}

export function startWorkers(rt: Runtime, opts: WorkerOptions = {}): RunningWorkers {
  const { active, tracked, running } = jobTracker();
  const pool = opts.pool ?? new SessionPool({ onEvent: (e) => logger.info(e, 'ssh pool') });
  const concurrency = opts.concurrency ?? rt.env.WORKER_CONCURRENCY;
  const connection = rt.redisHandle.connect();
  const runs = (kind: WorkerKind): boolean => !opts.only || opts.only.includes(kind);
  // Each queue's Worker is replaced if it stops taking jobs without an error (stuck-worker.ts).
  const supervise = <W extends Worker>(queue: keyof typeof QUEUES, make: () => W): SupervisedWorker<W> =>
    superviseWorker({
      queue: rt.queues[queue],
      redis: rt.redis,
      make: () => observed(queue, make()),
      inFlight: () => running(queue),
      onReplace: (why) => logger.warn({ queue, why }, 'worker stopped taking jobs; replaced it'),
    });
  const checkWorker = runs('check') && supervise('check', () => new Worker<CheckJob, CheckResult>(
    QUEUES.check,
    tracked('check', createCheckProcessor({
      inventory: rt.inventory,
      sessions: pool.provider,
      plans: rt.plans,
      history: rt.history,
      locks: rt.locks,
      publisherFor: opts.publishers?.check ?? (() => silentCheckPublisher),
      planTtlMinutes: rt.env.PLAN_TTL_MINUTES,
      followUps: new ApplyRecordStore(rt.redis, rt.env.QUEUE_PREFIX),
      runs: new CheckRuns(rt.redis, rt.env.QUEUE_PREFIX),
    })),
    { connection, prefix: rt.env.QUEUE_PREFIX, concurrency },
  ));
  const applyWorker = runs('apply') && supervise('apply', () => new Worker<ApplyJob>(
    QUEUES.apply,
    tracked('apply', createApplyProcessor({
      inventory: rt.inventory,
      sessions: pool.provider,
      plans: rt.plans,
      history: rt.history,
      locks: rt.locks,
      redis: rt.redis,
      prefix: rt.env.QUEUE_PREFIX,
      publisherFor: opts.publishers?.apply,
      // The delayed follow-up check after an apply (did the drops stop?).
      queues: rt.queues,
      followUpDelayMs: rt.env.FOLLOW_UP_DELAY_SECONDS * 1000,
    })),
    // Applies change gateways: one at a time per process, and a stalled apply is never silently re-run.
    { connection, prefix: rt.env.QUEUE_PREFIX, concurrency: 1, maxStalledCount: 0 },
  ));
  const pollWorker = runs('poll') && supervise('poll', () => new Worker<PollJob>(
    QUEUES.poll,
    tracked('poll', createPollProcessor({
      inventory: rt.inventory,
      keepWarm: (gateway, config) => pool.watch(gateway, config),
      sessions: pool.provider,
      store: rt.watchStore,
      watchList: rt.watchList,
      publisher: opts.publishers?.episode ?? silentEpisodePublisher,
      enqueueCheck: (job) => enqueueCheck(rt.queues, job),
    })),
    // A poll is worth only its moment: a stalled one is not re-run.
    { connection, prefix: rt.env.QUEUE_PREFIX, concurrency: rt.env.WATCH_CONCURRENCY, maxStalledCount: 0 },
  ));
  const savedFile = opts.publishers?.savedFile;
  const savedWorker = runs('saved') && savedFile !== undefined && supervise('saved', () => new Worker<SavedFileJob, SavedFileResult>(
    QUEUES.saved,
    tracked('saved', createSavedFileProcessor({ ...savedFile, inventory: rt.inventory, maxBytes: rt.env.SAVED_FILE_MAX_BYTES })),
    // No gateway is touched: a download and a parse, two at a time (each streams, in bounded memory).
    { connection, prefix: rt.env.QUEUE_PREFIX, concurrency: 2 },
  ));
  const warm = keepWatchedWarm(rt, pool, opts.warmSyncMs ?? 30_000);
  const eventsConnection = applyWorker ? rt.redisHandle.connect() : null;
  const sweeper = applyWorker
    ? startSweeper({
        engine: createApplyEngine({ inventory: rt.inventory, sessions: pool.provider, plans: rt.plans, history: rt.history, locks: rt.locks, redis: rt.redis, prefix: rt.env.QUEUE_PREFIX }),
        plans: rt.plans,
        records: new ApplyRecordStore(rt.redis, rt.env.QUEUE_PREFIX),
        outbox: new ApplyOutbox(rt.redis, rt.env.QUEUE_PREFIX),
        queues: rt.queues,
        redis: rt.redis,
        prefix: rt.env.QUEUE_PREFIX,
        ...(opts.publishers?.apply ? { publisherFor: opts.publishers.apply } : {}),
        everyMs: rt.env.SWEEP_INTERVAL_SECONDS * 1000,
        ...(eventsConnection ? { eventsConnection } : {}),
      })
    : null;
  const workers = [checkWorker, applyWorker, pollWorker, savedWorker].filter((w) => w !== false);
  return {
    pool,
    sweeper,
    running: () => [...active.values()],
    async close() {
      warm.stop();
      await sweeper?.stop();
      await Promise.all(workers.map((w) => w.close()));
      connection.disconnect();
      eventsConnection?.disconnect();
      if (!opts.pool) pool.close();
    },
  };
}

/** A new Worker with the process's metrics and logs on its events. */
function observed<W extends Worker>(queue: string, w: W): W {
  w.on('completed', (job) => observeJob(queue, 'completed', job));
  w.on('failed', (job, err) => {
    metrics.jobFailures.inc({ queue });
    if (job) observeJob(queue, 'failed', job);
    logger.warn({ job: job?.id, err: err.message }, 'job failed');
  });
  w.on('error', (err) => logger.error({ err: err.message }, 'worker error'));
  return w;
}

/** The job's run time in this worker (BullMQ's processedOn -> finishedOn), per queue. */
function observeJob(queue: string, outcome: 'completed' | 'failed', job: { processedOn?: number; finishedOn?: number }): void {
  if (job.processedOn === undefined) return;
  const seconds = ((job.finishedOn ?? Date.now()) - job.processedOn) / 1000;
  metrics.jobSeconds.observe({ queue, outcome }, Math.max(0, seconds));
}

/**
 * Warm sessions from start-up: one per watched gateway in this process (the pool never opens
 * two), matched to the watch list again every `everyMs` (watch / unwatch from any process).
 */
function keepWatchedWarm(rt: Runtime, pool: SessionPool, everyMs: number): { stop(): void } {
  // Only sessions this sync warmed are cooled again: whoever else keeps one (the demo, a
  // caller that passed its own pool) keeps it.
  const warmedHere = new Set<string>();
  const sync = async () => {
    const inventory = rt.inventory();
    const entries = await rt.watchList.all();
    const wanted = new Set(entries.map((e) => e.gateway).filter((g) => Object.hasOwn(inventory.gateways, g)));
    for (const name of warmedHere) {
      if (wanted.has(name)) continue;
      pool.unwatch(name);
      warmedHere.delete(name);
    }
    const fresh = [...wanted].filter((g) => !pool.watchedNames().includes(g));
    for (const g of fresh) warmedHere.add(g);
    await Promise.allSettled(fresh.map((g) => pool.watch(g, inventory.gateways[g]!)));
  };
  const run = () => void sync().catch((err: unknown) => logger.warn({ err: (err as Error).message }, 'warm session sync failed'));
  run();
  const timer = setInterval(run, everyMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
