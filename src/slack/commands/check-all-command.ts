/**
 * `/conntrack check all`: every gateway of the inventory at once, so approvers only (the
 * approval rules of src/approvals/rules.ts; anyone else gets an ephemeral refusal and
 * nothing is queued). One summary message in the channel, edited as each check ends
 * (src/slack/publish/check-all-message.ts); findings worth acting on go in its thread.
 */
import type { AckFn, RespondArguments, RespondFn, SlashCommand } from '@slack/bolt';
import type { WebClient } from '@slack/web-api';
import { GroupLookupError, type ApprovalRules } from '../../approvals/rules.js';
import { logger } from '../../infra/logger.js';
import { enqueueCheck } from '../../queue/producer.js';
import type { Runtime } from '../../runtime.js';
import { renderCheckAllSummary } from '../blocks/check-all.js';
import { esc } from '../blocks/kit.js';
import { renderUsage } from '../blocks/index.js';
import { CheckAllStore } from '../publish/check-all-store.js';
import { SlackMessageWriter, slackErrorCode } from '../publish/message-writer.js';

export const CHECK_ALL_REFUSAL =
  '`/conntrack check all` checks every gateway at once, so only approvers may run it. Check one gateway with `/conntrack check <gateway>`, or ask an approver.';

export interface CheckAllContext {
  rt: Runtime;
  rules: ApprovalRules;
  client: WebClient;
  command: SlashCommand;
  ack: AckFn<string | RespondArguments>;
  respond: RespondFn;
  /** The check job's request id for one gateway of this command (same command, same jobs). */
  requestId: (gateway: string) => string;
}

/** Handles the whole command, ack included; returns the outcome for the metrics. */
export async function answerCheckAll(ctx: CheckAllContext): Promise<string> {
  const { rt, command, ack, respond } = ctx;
  try {
    if (!(await ctx.rules.isApprover(command.user_id))) {
      await ack({ response_type: 'ephemeral', text: CHECK_ALL_REFUSAL });
      return 'refused';
    }
  } catch (err) {
    if (!(err instanceof GroupLookupError)) throw err;
    // Fail closed: an unreadable approver group is never taken as a yes.
    await ack({ response_type: 'ephemeral', text: `Could not tell whether you are an approver (${esc(err.message.slice(0, 300))}), so nothing was queued. Try again in a minute.` });
    return 'approver-lookup-failed';
  }
  const gateways = Object.keys(rt.inventory().gateways);
  if (gateways.length === 0) {
    await ack({ response_type: 'ephemeral', ...renderUsage('the inventory has no gateways') });
    return 'unknown-gateway';
  }
  await ack({ response_type: 'ephemeral', text: `Checking all ${gateways.length} gateways: one summary message in this channel, edited as each check ends; findings to act on go in its thread.` });

  const startedAt = new Date().toISOString();
  const requestedBy = command.user_id;
  let message;
  try {
    message = await new SlackMessageWriter(ctx.client).post({ channel: command.channel_id }, renderCheckAllSummary({ requestedBy, startedAt, gateways, results: {} }));
  } catch (err) {
    logger.warn({ err: slackErrorCode(err) }, 'check all: the summary message could not be posted');
    await respond({ response_type: 'ephemeral', text: `Could not post the summary message (${esc(slackErrorCode(err))}), so nothing was queued.` });
    return 'slack-failed';
  }
  const runId = `all.${command.trigger_id.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 80)}`;
  await new CheckAllStore(rt.redis, rt.env.QUEUE_PREFIX).create(runId, { message, requestedBy, startedAt, gateways });
  const origin = { kind: 'slack' as const, channel: message.channel, threadTs: message.ts, checkAll: runId };
  await Promise.all(gateways.map((gateway) => enqueueCheck(rt.queues, { gateway, requestedBy, requestId: ctx.requestId(gateway), origin })));
  return 'queued';
}
