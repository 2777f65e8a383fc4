/**
 * The apply / roll back job. The engine (src/apply/engine.ts) does the work and guards
 * against applying twice; this adapts it to BullMQ: payload validation, progress, a
 * busy gateway (delayed retry, ahead of checks: see GatewayLocks; giving up after
 * `busyGiveUpMs` leaves the plan where the user can act, and says so), publishing.
 * Runs whose worker died are found by the sweep (sweeper.ts).
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
  /** Wait this long between tries while the gateway is busy (a check running; checks yield to a waiting change). */
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
  return async (job: Job<ApplyJob, ApplyOutcome>, token?: string): Promise<ApplyOutcome> => {
    const data = applyJobSchema.parse(job.data);
    const publisher = deps.publisherFor?.(data) ?? silentApplyPublisher;
    const plan = await deps.plans.get(data.planId);
    logger.info({ job: job.id, plan: data.planId, gateway: data.gateway, action: data.action }, `${data.action} job started`);
    try {
      const onProgress = async (p: NonNullable<typeof plan>, steps: ApplyOutcome['steps']): Promise<void> => {
        await job.updateProgress({ steps: steps.map((s) => ({ stepId: s.stepId, status: s.status })) });
        await publisher.progress(p, steps);
      };
      const outcome =
        data.action === 'apply'
          ? await engine.apply(data.planId, { actor: data.decidedBy, optionalSteps: data.steps ?? [], origin: data.origin, onProgress })
          : await engine.rollback(data.planId, { actor: data.decidedBy, onProgress });
      if (outcome.outcome === 'busy') {
        const waitedMs = Date.now() - job.timestamp;
        if (waitedMs < (deps.busyGiveUpMs ?? 10 * 60_000)) {
          // The gateway is taken (a check, another plan): come back soon without using an attempt;
          // meanwhile this change is registered as waiting, so no new check takes the gateway.
          await job.moveToDelayed(Date.now() + (deps.busyRetryMs ?? 1_000), token);
          throw new DelayedError();
        }
        return await gaveUp(deps, data, outcome, waitedMs, publisher);
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

/**
 * The gateway stayed busy for the whole wait: nothing was changed. An approved plan is
 * expired (its findings are too old to apply now: a fresh check gives a new plan with its
 * buttons); a roll back can be requested again. Either way the channel is told.
 */
async function gaveUp(deps: ApplyDeps, data: ApplyJob, busy: ApplyOutcome, waitedMs: number, publisher: ApplyPublisher): Promise<ApplyOutcome> {
  await deps.locks.stopWaiting(data.gateway, `${data.action}-${data.planId}`);
  const minutes = Math.round(waitedMs / 6_000) / 10;
  if (data.action === 'apply') {
    const t = await deps.plans.transition(data.planId, ['approved'], 'expired', { actor: data.decidedBy });
    if (t.ok) await deps.history.record({ at: new Date().toISOString(), gateway: data.gateway, event: 'expired', actor: data.decidedBy, planId: data.planId, summary: `approved, but ${data.gateway} stayed busy for ${minutes} min: nothing applied` });
  }
  const fresh = await deps.plans.get(data.planId);
  const message =
    `Gave up after waiting ${minutes} min for ${data.gateway}: ${busy.message} Nothing was changed. ` +
    (data.action === 'apply'
      ? `Run \`/conntrack check ${data.gateway}\` again for fresh findings and a new plan to approve.`
      : 'Press Roll back again when the gateway is free.');
  const outcome: ApplyOutcome = { ...busy, message, canRollBack: data.action === 'rollback' };
  logger.warn({ plan: data.planId, gateway: data.gateway, waitedMs }, `${data.action} gave up waiting for a busy gateway`);
  if (fresh) {
    await publisher.result(fresh, outcome).catch((err: unknown) => {
      metrics.applyPublishFailures.inc({ action: data.action, what: 'result' });
      logger.warn({ plan: data.planId, err: (err as Error).message }, 'give-up message not shown');
    });
  }
  return outcome;
}
