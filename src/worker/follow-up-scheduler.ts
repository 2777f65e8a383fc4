/**
 * The apply engine's follow-up port, on the check queue: a check of the gateway, delayed
 * a few minutes after the verify, that says whether the drops stopped (runbook step 8).
 */
import type { FollowUpScheduler } from '../apply/follow-up.js';
import type { Origin } from '../queue/jobs.js';
import { enqueueCheck, type Queues } from '../queue/producer.js';
import type { PlanRecord } from '../store/plan-store.js';

/** Default delay of the follow-up check. */
export const FOLLOW_UP_DELAY_MS = 5 * 60_000;

/** A follow-up from Slack goes into the thread of the applied plan's message. */
export function followUpOrigin(plan: PlanRecord, origin: Origin): Origin {
  if (origin.kind !== 'slack' || !plan.message) return origin;
  return { kind: 'slack', channel: plan.message.channel, threadTs: origin.threadTs ?? plan.message.ts };
}

export function queuedFollowUps(queues: Queues, delayMs = FOLLOW_UP_DELAY_MS): FollowUpScheduler {
  return {
    async schedule({ plan, actor, origin }) {
      const jobId = await enqueueCheck(
        queues,
        {
          gateway: plan.gateway,
          requestedBy: actor,
          requestId: `followup-${plan.planId}`,
          origin: followUpOrigin(plan, origin),
          followUpOf: plan.planId,
        },
        { delayMs },
      );
      return { jobId, dueAt: new Date(Date.now() + delayMs).toISOString() };
    },
  };
}
