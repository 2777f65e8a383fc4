/**
 * Start the workers of one process: bounded concurrency, one job per gateway at a time
 * (Redis lock), warm SSH sessions shared by checks and applies.
 */
import { Worker } from 'bullmq';
import { logger } from '../infra/logger.js';
import { QUEUES, type ApplyJob, type CheckJob, type CheckResult } from '../queue/jobs.js';
import type { Runtime } from '../runtime.js';
import { ApplyRecordStore } from '../apply/store.js';
import { SessionPool } from '../gateway/session-pool.js';
import { createCheckProcessor } from './check-processor.js';
import { silentCheckPublisher, type ApplyPublisher, type CheckPublisher } from './ports.js';
import { createApplyProcessor } from './apply-processor.js';

export interface WorkerOptions {
  concurrency?: number;
  /** Slack publishers (absent in terminal-only runs). */
  publishers?: { check: (job: CheckJob) => CheckPublisher; apply: (job: ApplyJob) => ApplyPublisher };
  pool?: SessionPool;
}

export interface RunningWorkers {
  pool: SessionPool;
  close(): Promise<void>;
}

export function startWorkers(rt: Runtime, opts: WorkerOptions = {}): RunningWorkers {
  const pool = opts.pool ?? new SessionPool({ onEvent: (e) => logger.info(e, 'ssh pool') });
  const concurrency = opts.concurrency ?? rt.env.WORKER_CONCURRENCY;
  const connection = rt.redisHandle.connect();
  const checkWorker = new Worker<CheckJob, CheckResult>(
    QUEUES.check,
    createCheckProcessor({
      inventory: rt.inventory,
      sessions: pool.provider,
      plans: rt.plans,
      history: rt.history,
      locks: rt.locks,
      publisherFor: opts.publishers?.check ?? (() => silentCheckPublisher),
      planTtlMinutes: rt.env.PLAN_TTL_MINUTES,
      followUps: new ApplyRecordStore(rt.redis, rt.env.QUEUE_PREFIX),
    }),
    { connection, prefix: rt.env.QUEUE_PREFIX, concurrency },
  );
  const applyWorker = new Worker<ApplyJob>(
    QUEUES.apply,
    createApplyProcessor({
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
    }),
    // Applies change gateways: one at a time per process, and a stalled apply is never silently re-run.
    { connection, prefix: rt.env.QUEUE_PREFIX, concurrency: 1, maxStalledCount: 0 },
  );
  for (const w of [checkWorker, applyWorker]) {
    w.on('failed', (job, err) => logger.warn({ job: job?.id, err: err.message }, 'job failed'));
    w.on('error', (err) => logger.error({ err: err.message }, 'worker error'));
  }
  return {
    pool,
    async close() {
      await Promise.all([checkWorker.close(), applyWorker.close()]);
      connection.disconnect();
      if (!opts.pool) pool.close();
    },
  };
}
