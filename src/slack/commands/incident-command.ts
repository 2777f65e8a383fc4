/**
 * `/conntrack incident [<gw>] [chart|close]`: the open (or latest) episode's summary,
 * ephemeral with a link to the pinned message (or posted in the channel when it was never
 * posted); the chart on request; a close by hand, by an approver (who may approve plans may
 * close), recorded in the episode's timeline and the gateway's history.
 */
import type { RespondFn } from '@slack/bolt';
import type { WebClient } from '@slack/web-api';
import type { ApprovalRules } from '../../approvals/rules.js';
import { collectIncident, latestIncidentGateway } from '../../incident/collect.js';
import { ApplyRecordStore } from '../../apply/store.js';
import type { Runtime } from '../../runtime.js';
import { context, esc } from '../blocks/kit.js';
import { renderIncidentSummary } from '../blocks/incident.js';
import { SlackMessageWriter } from '../publish/message-writer.js';
import { incidentSummaries } from '../publish/publishers.js';
import type { ConntrackCommand } from './parse.js';

type IncidentCommand = Extract<ConntrackCommand, { kind: 'incident' }>;

export interface IncidentCommandContext {
  rt: Runtime;
  rules: ApprovalRules;
  client: WebClient;
  userId: string;
  channelId: string;
  respond: RespondFn;
}

/** Answers one `incident` command (after the ack); returns the outcome for the metrics. */
export async function answerIncident(cmd: IncidentCommand, ctx: IncidentCommandContext): Promise<string> {
  const { rt, respond } = ctx;
  const known = Object.keys(rt.inventory().gateways);
  if (cmd.gateway !== null && !known.includes(cmd.gateway)) {
    await respond({ response_type: 'ephemeral', text: `Unknown gateway "${cmd.gateway}". Known: ${known.join(', ') || 'none'}` });
    return 'unknown-gateway';
  }
  const gateway = cmd.gateway ?? (await latestIncidentGateway(rt.watchStore, known));
  if (gateway === null) {
    await respond({ response_type: 'ephemeral', text: 'No gateway has had an incident (episode) yet. `/conntrack watch <gateway>` watches one.' });
    return 'none';
  }
  const summaries = incidentSummaries(rt, rt.env, ctx.client);
  switch (cmd.action) {
    case 'close':
      return close(gateway, ctx, summaries);
    case 'chart': {
      const file = await summaries.postChart(gateway, { channel: ctx.channelId });
      await respond({
        response_type: 'ephemeral',
        text: file ? `:chart_with_upwards_trend: The chart of *${gateway}*'s episode is in the summary's thread.` : `No chart for *${gateway}*: no episode, or this process draws no charts.`,
      });
      return file ? 'chart' : 'no-chart';
    }
    case 'show':
      return show(gateway, ctx, summaries);
  }
}

async function show(gateway: string, ctx: IncidentCommandContext, summaries: ReturnType<typeof incidentSummaries>): Promise<string> {
  const { rt, respond } = ctx;
  const incident = await collectIncident({ watchStore: rt.watchStore, history: rt.history, plans: rt.plans, applies: new ApplyRecordStore(rt.redis, rt.env.QUEUE_PREFIX) }, gateway);
  if (!incident) {
    await respond({ response_type: 'ephemeral', text: `*${gateway}* has had no incident (episode) yet.` });
    return 'none';
  }
  const rendered = renderIncidentSummary(incident);
  const ref = await summaries.summaryRef(gateway);
  const link = ref ? await new SlackMessageWriter(ctx.client).permalink(ref).catch(() => null) : null;
  if (!link) {
    // never posted (no incident channel when it opened, or Slack failed): post it here, for everyone
    await respond({ response_type: 'in_channel', ...rendered });
    return 'reposted';
  }
  await respond({ response_type: 'ephemeral', text: rendered.text, blocks: [...rendered.blocks, context([`:pushpin: <${link}|The pinned summary> is kept up to date in <#${ref!.channel}>.`])] });
  return 'shown';
}

async function close(gateway: string, ctx: IncidentCommandContext, summaries: ReturnType<typeof incidentSummaries>): Promise<string> {
  const { rt, respond, userId } = ctx;
  if (!(await ctx.rules.isApprover(userId))) {
    await respond({ response_type: 'ephemeral', text: 'Only approvers (who may approve plans) can close an incident. Ask someone on the approvers list.' });
    return 'refused';
  }
  const at = new Date().toISOString();
  const transition = await rt.watchStore.closeEpisode(gateway, userId, at);
  const closed = transition.events.find((e) => e.event === 'resolved');
  if (!closed) {
    await respond({ response_type: 'ephemeral', text: `*${gateway}* has no open incident to close.` });
    return 'not-open';
  }
  await rt.history.record({ at, gateway, event: 'closed', actor: userId, planId: null, summary: `incident (episode ${closed.episodeId ?? '?'}) closed by hand at ${closed.percent ?? '?'} %` });
  await summaries.refresh(gateway);
  await respond({ response_type: 'in_channel', text: `:white_check_mark: <@${userId}> closed the incident on *${esc(gateway)}* by hand.` });
  return 'closed';
}
