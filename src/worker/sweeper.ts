/**
 * The sweep, run by every worker process every few seconds and at once on BullMQ's
 * stalled / failed events of the apply queue:
 *
 *  - an apply or roll back whose run is gone (worker killed, OOM, paused, lease lost: the
 *    plan is still 'applying' / 'rolling-back', its lease has expired, the gateway lock is
 *    not its job's and its BullMQ job holds no lock) is reported in the plan's channel with
 *    what ran, and the plan moves to 'apply-interrupted' (roll back restores the snapshot)
 *    or 'rollback-failed' (roll back again). It is never re-run.
 *  - an approval whose apply job was never queued (a crash between the approval and the
 *    enqueue: the outbox entry is left, see src/store/apply-outbox.ts) is queued again
 *    under the same job id, so it runs once.
 *
 * Several processes sweep at once: the plan's lease and compare-and-set make one win.
 */
import { QueueEvents } from 'bullmq';
import type { RedisConnection } from '../infra/redis.js';
import type { ApplyEngine } from '../apply/engine.js';
import type { ApplyOutcome } from '../apply/model.js';
import { logger } from '../infra/logger.js';
import { applyJobId, QUEUES, type ApplyJob } from '../queue/jobs.js';
import { enqueueApply, type Queues } from '../queue/producer.js';
import type { ApplyRecordStore } from '../apply/store.js';
import type { ApplyOutbox } from '../store/apply-outbox.js';
import type { PlanStore } from '../store/plan-store.js';
import type { ApplyPublisher } from './ports.js';

export interface SweeperDeps {
  engine: ApplyEngine;
  plans: PlanStore;
  records: ApplyRecordStore;
  outbox: ApplyOutbox;
  queues: Queues;
  redis: RedisConnection;
  prefix: string;
  /** Where an interrupted run is told (the plan's channel); absent: logged only. */
  publisherFor?: (job: ApplyJob) => ApplyPublisher;
  everyMs: number;
  /** An outbox entry younger than this belongs to an approval still on its way to the enqueue. */
  outboxGraceMs?: number;
  /** A connection for BullMQ's queue events (stalled / failed jobs sweep at once); absent: timer only. */
  eventsConnection?: RedisConnection;
}

export interface SweepReport {
  interrupted: ApplyOutcome[];
  requeued: string[];
}

export interface Sweeper {
  sweepNow(): Promise<SweepReport>;
  stop(): Promise<void>;
}

export function startSweeper(deps: SweeperDeps): Sweeper {
  let running: Promise<SweepReport> | null = null;
  let again = false;
  const sweepOnce = async (): Promise<SweepReport> => {
    const interrupted = await deps.engine.reconcileInterrupted({ isRunAlive: (planId, action) => runAlive(deps, planId, action) });
    for (const outcome of interrupted) await tell(deps, outcome);
    const requeued = await requeueLostApprovals(deps);
    return { interrupted, requeued };
  };
  // One sweep at a time in this process; a request during one runs one more after it.
  const sweepNow = (): Promise<SweepReport> => {
    if (running) {
      again = true;
      return running;
    }
    running = sweepOnce().finally(() => {
      running = null;
      if (again) {
        again = false;
        void sweepNow().catch(() => undefined);
      }
    });
    return running;
  };
  const run = (): void =>
    void sweepNow().catch((err: unknown) => logger.warn({ err: (err as Error).message }, 'apply sweep failed (next one in a moment)'));
  run();
  const timer = setInterval(run, deps.everyMs);
  timer.unref();
  let events: QueueEvents | null = null;
  if (deps.eventsConnection) {
    events = new QueueEvents(QUEUES.apply, { connection: deps.eventsConnection, prefix: deps.prefix });
    events.on('stalled', ({ jobId }) => {
      logger.warn({ job: jobId }, 'apply job stalled (its worker stopped): sweeping');
      run();
    });
    events.on('failed', () => run());
    events.on('error', (err) => logger.debug({ err: err.message }, 'apply queue events error'));
  }
  return {
    sweepNow,
    async stop() {
      clearInterval(timer);
      await events?.close().catch(() => undefined);
    },
  };
}

/** Whether the run's BullMQ job still holds its lock (its worker renews it while it lives). */
async function runAlive(deps: SweeperDeps, planId: string, action: 'apply' | 'rollback'): Promise<boolean> {
  const attempt = action === 'rollback' ? Math.max(0, (await deps.records.runs(planId, 'rollback')) - 1) : undefined;
  const jobId = applyJobId({ action, planId, attempt });
  return (await deps.redis.exists(`${deps.prefix}:${QUEUES.apply}:${jobId}:lock`)) === 1;
}

async function tell(deps: SweeperDeps, outcome: ApplyOutcome): Promise<void> {
  logger.warn({ plan: outcome.planId, gateway: outcome.gateway, action: outcome.action }, outcome.message);
  const plan = await deps.plans.get(outcome.planId);
  if (!plan || !deps.publisherFor) return;
  const job: ApplyJob = { action: outcome.action, planId: plan.planId, gateway: plan.gateway, decidedBy: plan.decidedBy ?? outcome.by, origin: plan.origin };
  await deps.publisherFor(job)
    .result(plan, outcome)
    .catch((err: unknown) => logger.warn({ plan: plan.planId, err: (err as Error).message }, 'interrupted run not shown in Slack'));
}

/** Approvals whose job was never queued: queue it (same id); entries whose job exists or whose plan moved on are done. */
async function requeueLostApprovals(deps: SweeperDeps): Promise<string[]> {
  const requeued: string[] = [];
  const grace = deps.outboxGraceMs ?? 10_000;
  for (const entry of await deps.outbox.all()) {
    if (Date.now() - entry.at < grace) continue;
    const planId = entry.job.planId;
    const plan = await deps.plans.get(planId);
    const job = await deps.queues.apply.getJob(applyJobId(entry.job));
    if (plan?.status === 'approved' && !job) {
      const id = await enqueueApply(deps.queues, entry.job);
      logger.warn({ plan: planId, job: id }, 'approved plan had no apply job (the approver stopped before queuing it): queued now');
      requeued.push(id);
    }
    await deps.outbox.done(planId);
  }
  return requeued;
}
