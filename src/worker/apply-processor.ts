/**
 * The apply / roll back job. The engine (src/apply/engine.ts) does the work and guards
 * against applying twice; this adapts it to BullMQ: payload validation, progress, a
 * busy gateway (delayed retry), publishing, and reporting runs whose worker died.
 */
import { DelayedError, type Job } from 'bullmq';
import type { RedisConnection } from '../infra/redis.js';
import type { Inventory } from '../config/inventory.js';
import type { SessionProvider } from '../gateway/session-provider.js';
import { ApplyEngine } from '../apply/engine.js';
import type { ApplyOutcome } from '../apply/model.js';
import { ApplyRecordStore } from '../apply/store.js';
import { logger } from '../infra/logger.js';
import { metrics } from '../metrics/registry.js';
import { applyJobSchema, type ApplyJob } from '../queue/jobs.js';
import type { Queues } from '../queue/producer.js';
import type { GatewayLocks } from '../store/gateway-lock.js';
import type { HistoryStore } from '../store/history-store.js';
import type { PlanStore } from '../store/plan-store.js';
import { queuedFollowUps } from './follow-up-scheduler.js';
import { silentApplyPublisher, type ApplyPublisher } from './ports.js';
import { channelText } from '../gateway/errors.js';

export interface ApplyDeps {
  inventory: () => Inventory;
  sessions: SessionProvider;
  plans: PlanStore;
  history: HistoryStore;
  locks: GatewayLocks;
  redis: RedisConnection;
  prefix: string;
  publisherFor?: (job: ApplyJob) => ApplyPublisher;
  /** For the delayed follow-up check after an apply. */
  queues?: Queues;
  followUpDelayMs?: number;
  /** Wait this long between tries while the gateway is busy (a check running). */
  busyRetryMs?: number;
  /** Give up waiting for a busy gateway after this long (from the job's creation). */
  busyGiveUpMs?: number;
}

export function createApplyEngine(deps: ApplyDeps): ApplyEngine {
  return new ApplyEngine({
    inventory: deps.inventory,
    sessions: deps.sessions,
    plans: deps.plans,
    history: deps.history,
    locks: deps.locks,
    records: new ApplyRecordStore(deps.redis, deps.prefix),
    ...(deps.queues ? { followUps: queuedFollowUps(deps.queues, deps.followUpDelayMs) } : {}),
  });
}

export function createApplyProcessor(deps: ApplyDeps) {
  const engine = createApplyEngine(deps);
  // A worker that died mid-apply left its plan 'applying': report it (never re-run it).
  void engine
    .reconcileInterrupted()
    .then((found) => {
      for (const o of found) logger.warn({ plan: o.planId, gateway: o.gateway }, o.message);
    })
    .catch((err: unknown) => logger.error({ err: (err as Error).message }, 'apply reconcile failed'));

  return async (job: Job<ApplyJob, ApplyOutcome>, token?: string): Promise<ApplyOutcome> => {
    const data = applyJobSchema.parse(job.data);
    const publisher = deps.publisherFor?.(data) ?? silentApplyPublisher;
    const plan = await deps.plans.get(data.planId);
    try {
      const onProgress = async (p: NonNullable<typeof plan>, steps: ApplyOutcome['steps']): Promise<void> => {
        await job.updateProgress({ steps: steps.map((s) => ({ stepId: s.stepId, status: s.status })) });
        await publisher.progress(p, steps);
      };
      const outcome =
        data.action === 'apply'
          ? await engine.apply(data.planId, { actor: data.decidedBy, optionalSteps: data.steps ?? [], origin: data.origin, onProgress })
          : await engine.rollback(data.planId, { actor: data.decidedBy, onProgress });
      if (outcome.outcome === 'busy' && Date.now() - job.timestamp < (deps.busyGiveUpMs ?? 10 * 60_000)) {
        // The gateway is taken (a check, another plan): come back later without using an attempt.
        await job.moveToDelayed(Date.now() + (deps.busyRetryMs ?? 3_000), token);
        throw new DelayedError();
      }
      const fresh = (await deps.plans.get(data.planId)) ?? plan;
      // The result message is best effort: the outcome is stored and the plan's state is right.
      if (fresh) {
        await publisher.result(fresh, outcome).catch((err: unknown) => {
          metrics.applyPublishFailures.inc({ action: data.action, what: 'result' });
          logger.warn({ plan: data.planId, gateway: data.gateway, err: (err as Error).message }, `${data.action} result not shown`);
        });
      }
      return outcome;
    } catch (err) {
      if (err instanceof DelayedError) throw err;
      await publisher.failed(data, plan, channelText(err)).catch(() => undefined);
      throw err;
    }
  };
}
