/**
 * Approve / Reject / Roll back buttons. The button value is only a plan id; the plan,
 * its requester and its state live in Redis (approvals/decisions.ts decides, for Slack
 * and the terminal alike). This module only reads the payload and renders the outcome.
 */
import type { App, BlockAction, ButtonAction, RespondFn } from '@slack/bolt';
import { z } from 'zod';
import { approvePlan, rejectPlan, requestRollback, type DecisionOutcome } from '../../approvals/decisions.js';
import { GroupLookupError, type ApprovalRules } from '../../approvals/rules.js';
import { logger } from '../../infra/logger.js';
import { metrics } from '../../metrics/registry.js';
import type { Runtime } from '../../runtime.js';
import type { PlanRecord, SlackMessageRef } from '../../store/plan-store.js';
import { ACTION_IDS, BLOCK_IDS, renderDecision, renderExpired, withoutOverflow } from '../blocks/index.js';
import { SlackMessageWriter } from '../publish/message-writer.js';

const buttonSchema = z.object({
  planId: z.string().regex(/^[A-Za-z0-9-]{8,64}$/),
  userId: z.string().regex(/^[UW][A-Z0-9]{2,}$/),
  channel: z.string().nullable(),
  ts: z.string().nullable(),
});
type Button = z.infer<typeof buttonSchema>;

function readButton(body: BlockAction, action: ButtonAction): Button | null {
  const parsed = buttonSchema.safeParse({
    planId: action.value ?? '',
    userId: body.user.id,
    channel: body.channel?.id ?? body.container?.channel_id ?? null,
    ts: body.message?.ts ?? body.container?.message_ts ?? null,
  });
  return parsed.success ? parsed.data : null;
}

function messageOf(plan: PlanRecord, button: Button): SlackMessageRef | null {
  if (plan.message) return plan.message;
  return button.channel && button.ts ? { channel: button.channel, ts: button.ts } : null;
}

function cannotDecide(err: unknown): string {
  const why = (err instanceof Error ? err.message : String(err)).slice(0, 200);
  const what = err instanceof GroupLookupError ? 'Could not check the approver groups' : 'Could not decide on this plan';
  return `${what} (${why}), so nothing was done. Try again in a minute.`;
}

/**
 * A click counts only on the plan's own message: its channel must be the channel the plan
 * was posted to (its message, else the Slack request it answers). A copy of the buttons in
 * another channel (other members, other approvers' eyes) is refused. Unknown plans are left
 * to the decision, which says so.
 */
async function clickedOutsidePlanChannel(rt: Runtime, button: Button): Promise<boolean> {
  const plan = await rt.plans.get(button.planId);
  if (!plan) return false;
  const planChannel = plan.message?.channel ?? (plan.origin.kind === 'slack' ? plan.origin.channel : null);
  return planChannel === null || button.channel !== planChannel;
}

async function tellUser(respond: RespondFn, text: string): Promise<void> {
  await respond({ response_type: 'ephemeral', replace_original: false, text });
}

export interface ActionDeps {
  rt: Runtime;
  rules: ApprovalRules;
}

type Decide = (rt: Runtime, rules: ApprovalRules, planId: string, userId: string, body: BlockAction) => Promise<DecisionOutcome>;

const tickedSchema = z.object({
  selected_options: z.array(z.object({ value: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/) })).max(10),
});

/**
 * The optional steps ticked in the message's checkbox group when Approve was clicked:
 * none when the group is absent, null when it is there but malformed (too many options,
 * a bad id): the approval is refused then, never turned into "no optional steps".
 */
export function tickedOptionalSteps(body: Pick<BlockAction, 'state'>): string[] | null {
  const raw = body.state?.values?.[BLOCK_IDS.optionalSteps]?.[ACTION_IDS.optionalSteps];
  if (raw === undefined) return [];
  const parsed = tickedSchema.safeParse(raw);
  return parsed.success ? parsed.data.selected_options.map((o) => o.value) : null;
}

const MALFORMED_TICKS = 'The ticked optional steps in this request are not valid (too many, or an unknown id). Nothing was done.';

export function registerActions(app: App, { rt, rules }: ActionDeps): void {
  const writer = new SlackMessageWriter(app.client);
  const handle = (name: 'approve' | 'approveAll' | 'reject' | 'rollback', decide: Decide, onSuccess: (o: Extract<DecisionOutcome, { ok: true }>, b: Button, respond: RespondFn) => Promise<void>) =>
    app.action<BlockAction<ButtonAction>>(ACTION_IDS[name], async ({ ack, body, action, respond }) => {
      await ack();
      const button = readButton(body, action);
      if (!button) {
        metrics.decisions.inc({ decision: name, outcome: 'malformed' });
        await tellUser(respond, 'This button does not carry a valid plan. Nothing was done.');
        return;
      }
      if (await clickedOutsidePlanChannel(rt, button)) {
        metrics.decisions.inc({ decision: name, outcome: 'wrong-channel' });
        await tellUser(respond, 'This button is not on the plan\'s message in its channel. Nothing was done.');
        return;
      }
      let outcome: DecisionOutcome;
      try {
        outcome = await decide(rt, rules, button.planId, button.userId, body);
      } catch (err) {
        // E.g. the approver groups cannot be read: fail closed (nothing decided), and say so.
        metrics.decisions.inc({ decision: name, outcome: 'error' });
        await tellUser(respond, cannotDecide(err));
        return;
      }
      metrics.decisions.inc({ decision: name, outcome: outcome.ok ? 'ok' : outcome.reason });
      if (!outcome.ok) {
        if (outcome.reason === 'expired' && outcome.plan) {
          const ref = messageOf(outcome.plan, button);
          if (ref) await writer.update(ref, withoutOverflow(renderExpired({ report: outcome.plan.report, planId: outcome.plan.planId, expiresAt: outcome.plan.expiresAt })));
        }
        await tellUser(respond, outcome.message);
        return;
      }
      await onSuccess(outcome, button, respond);
    });

  const showDecision = async (o: Extract<DecisionOutcome, { ok: true }>, b: Button): Promise<void> => {
    const { plan } = o;
    const decision = plan.status === 'approved' ? 'approved' : 'rejected';
    const ref = messageOf(plan, b);
    if (!ref) return;
    // The decision is made and stored: a message that cannot be edited (deleted, archived) is only logged.
    await writer.update(ref, withoutOverflow(renderDecision({ report: plan.report, planId: plan.planId, decision, by: b.userId, at: o.at, requestedBy: plan.requestedBy }))).catch((err: unknown) => {
      logger.warn({ plan: plan.planId, err: (err as Error).message }, 'decision not shown on the plan message');
    });
  };
  handle(
    'approve',
    async (r, ru, id, u, body) => {
      const ticked = tickedOptionalSteps(body);
      if (ticked === null) return { ok: false, reason: 'unknown-step', message: MALFORMED_TICKS, plan: await r.plans.get(id) };
      return approvePlan(r, ru, id, u, new Date(), { optionalSteps: ticked });
    },
    showDecision,
  );
  handle('approveAll', (r, ru, id, u) => approvePlan(r, ru, id, u, new Date(), { optionalSteps: 'all' }), showDecision);
  // Ticking a box is an interaction of its own: acknowledge it, Approve reads the state.
  app.action(ACTION_IDS.optionalSteps, async ({ ack }) => {
    await ack();
  });
  handle('reject', (r, ru, id, u) => rejectPlan(r, ru, id, u), showDecision);
  handle('rollback', (r, ru, id, u) => requestRollback(r, ru, id, u), async (o, _b, respond) => {
    await tellUser(respond, `Roll back of ${o.plan.gateway} queued; the message will show the result.`);
  });
}
