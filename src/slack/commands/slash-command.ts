/**
 * `/conntrack` listener. Acknowledges within Slack's 3 s: a check is acked right after
 * its enqueue; status and history are acked first and answered via response_url.
 */
import type { App } from '@slack/bolt';
import { metrics } from '../../metrics/registry.js';
import { enqueueCheck } from '../../queue/producer.js';
import { requestIdSchema } from '../../queue/jobs.js';
import type { Runtime } from '../../runtime.js';
import type { ApprovalRules } from '../../approvals/rules.js';
import { renderHelp, renderHistory, renderStatus, renderUsage } from '../blocks/index.js';
import { parseConntrackCommand } from './parse.js';
import { answerIncident } from './incident-command.js';
import { answerCheckAll } from './check-all-command.js';
import { incidentSummaries } from '../publish/publishers.js';
import { unwatchGateway, watchGateways, type WatchControlDeps } from '../../monitor/watch-control.js';
import type { WatchedView } from '../blocks/types.js';
import { utilisationPercent } from '../../monitor/episodes.js';

export interface CommandDeps {
  rt: Runtime;
  rules: ApprovalRules;
}

/** Slack trigger ids are unique per invocation: the same request enqueued twice runs once. */
function requestIdFrom(triggerId: string, gateway: string): string {
  const safe = triggerId.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 80);
  const parsed = requestIdSchema.safeParse(`${safe}.${gateway}`.slice(0, 100));
  return parsed.success ? parsed.data : `${Date.now()}`;
}

export function registerCommands(app: App, { rt, rules }: CommandDeps): void {
  // The incident summary is edited after every history record this process makes (approvals too).
  if (rt.env.SLACK_BOT_TOKEN) incidentSummaries(rt, rt.env, app.client);
  app.command('/conntrack', async ({ command, ack, respond, client }) => {
    const started = performance.now();
    const parsed = parseConntrackCommand(command.text ?? '');
    if (!parsed.ok) {
      metrics.commands.inc({ subcommand: 'invalid', outcome: 'usage' });
      await ack({ response_type: 'ephemeral', ...renderUsage(parsed.error) });
      return;
    }
    const cmd = parsed.command;
    switch (cmd.kind) {
      case 'help':
        await ack({ response_type: 'ephemeral', ...renderHelp() });
        break;
      case 'apply':
        await ack({
          response_type: 'ephemeral',
          text: 'Plans are applied only through the *Approve* button on a check\'s findings, by an approver. Run `/conntrack check <gateway>` first.',
        });
        break;
      case 'check': {
        if (cmd.target.all) {
          const outcome = await answerCheckAll({ rt, rules, client, command, ack, respond, requestId: (gateway) => requestIdFrom(command.trigger_id, gateway) });
          metrics.commands.inc({ subcommand: 'check', outcome });
          break;
        }
        const resolved = resolveTargets(rt, cmd.target);
        if (!resolved.ok) {
          metrics.commands.inc({ subcommand: 'check', outcome: 'unknown-gateway' });
          await ack({ response_type: 'ephemeral', ...renderUsage(resolved.error) });
          return;
        }
        const targets = resolved.targets;
        const origin = { kind: 'slack' as const, channel: command.channel_id };
        const jobIds = await Promise.all(
          targets.map((gateway) =>
            enqueueCheck(rt.queues, { gateway, requestedBy: command.user_id, requestId: requestIdFrom(command.trigger_id, gateway), origin }),
          ),
        );
        await ack({ response_type: 'ephemeral', text: `Queued a check of *${targets[0]}* (job \`${jobIds[0]}\`). Progress and findings will appear in this channel.` });
        metrics.commands.inc({ subcommand: 'check', outcome: 'queued' });
        metrics.ackSeconds.observe((performance.now() - started) / 1000);
        break;
      }
      case 'watch': {
        const resolved = resolveTargets(rt, cmd.target);
        if (!resolved.ok) {
          metrics.commands.inc({ subcommand: 'watch', outcome: 'unknown-gateway' });
          await ack({ response_type: 'ephemeral', ...renderUsage(resolved.error) });
          return;
        }
        const targets = resolved.targets;
        const inventory = rt.inventory();
        await ack();
        const { entries } = await watchGateways(watchDeps(rt), targets, { intervalSeconds: cmd.intervalSeconds ?? undefined, channel: command.channel_id, by: command.user_id });
        const where = rt.env.INCIDENT_CHANNEL ? `<#${rt.env.INCIDENT_CHANNEL}>` : 'this channel';
        await respond({
          response_type: 'in_channel',
          text: `:eyes: <@${command.user_id}> started watching ${entries.map((e) => `*${e.gateway}* (every ${e.intervalSeconds} s)`).join(', ')}. An episode message appears in ${where} at ${inventory.gateways[targets[0]!]?.thresholds.warnPercent ?? 80} % or on any drop.`,
        });
        metrics.commands.inc({ subcommand: 'watch', outcome: 'ok' });
        break;
      }
      case 'unwatch': {
        await ack();
        const was = await unwatchGateway(watchDeps(rt), cmd.gateway);
        await respond({
          response_type: was ? 'in_channel' : 'ephemeral',
          text: was ? `:see_no_evil: <@${command.user_id}> stopped watching *${cmd.gateway}*.` : `*${cmd.gateway}* was not watched.`,
        });
        metrics.commands.inc({ subcommand: 'unwatch', outcome: was ? 'ok' : 'not-watched' });
        break;
      }
      case 'status': {
        await ack();
        const [watched, last, active, waiting, delayed] = await Promise.all([
          watchedViews(rt, cmd.gateway),
          rt.history.lastChecks(),
          rt.queues.check.getActive(),
          rt.queues.check.getWaiting(),
          rt.queues.apply.getActive(),
        ]);
        const running = [...active, ...waiting, ...delayed]
          .filter((j) => !cmd.gateway || j.data.gateway === cmd.gateway)
          .map((j) => ({ id: j.id ?? '?', gateway: j.data.gateway, name: j.name }));
        const lastChecks = cmd.gateway ? Object.fromEntries(Object.entries(last).filter(([g]) => g === cmd.gateway)) : last;
        await respond({ response_type: 'ephemeral', ...renderStatus({ gateway: cmd.gateway, lastChecks, running, watched }) });
        metrics.commands.inc({ subcommand: 'status', outcome: 'ok' });
        break;
      }
      case 'incident': {
        await ack();
        const outcome = await answerIncident(cmd, { rt, rules, client, userId: command.user_id, channelId: command.channel_id, respond });
        metrics.commands.inc({ subcommand: 'incident', outcome });
        break;
      }
      case 'history': {
        await ack();
        const records = await rt.history.list(cmd.gateway, 20, 5); // 20 decisions (never trimmed) and the 5 newest checks
        await respond({ response_type: 'ephemeral', ...renderHistory(cmd.gateway, records) });
        metrics.commands.inc({ subcommand: 'history', outcome: 'ok' });
        break;
      }
    }
  });
}

function watchDeps(rt: Runtime): WatchControlDeps {
  return { inventory: rt.inventory, watchList: rt.watchList, queues: rt.queues, defaultIntervalSeconds: rt.env.WATCH_INTERVAL_SECONDS };
}

async function watchedViews(rt: Runtime, gateway: string | null): Promise<WatchedView[]> {
  const entries = (await rt.watchList.all()).filter((e) => gateway === null || e.gateway === gateway);
  return Promise.all(
    entries.map(async (e) => {
      const s = await rt.watchStore.state(e.gateway);
      const ep = s.episode?.status === 'open' ? s.episode : null;
      return {
        gateway: e.gateway,
        intervalSeconds: e.intervalSeconds,
        lastPollAt: s.lastSample?.at ?? null,
        lastPercent: s.lastSample ? utilisationPercent(s.lastSample.count, s.lastSample.max) : null,
        pollError: s.pollFailing ? s.lastError : null,
        openEpisode: ep ? { level: ep.level, kind: ep.kind, openedAt: ep.openedAt, peakPercent: ep.peakPercent } : null,
      };
    }),
  );
}

/** `<gw>` or `all` -> inventory gateways, or what is wrong (unknown name, empty inventory). */
function resolveTargets(rt: Runtime, target: { all: true } | { all: false; gateway: string }): { ok: true; targets: string[] } | { ok: false; error: string } {
  const known = Object.keys(rt.inventory().gateways);
  const targets = target.all ? known : [target.gateway];
  if (targets.length === 0) return { ok: false, error: 'the inventory has no gateways' };
  const unknown = targets.find((g) => !known.includes(g));
  if (unknown !== undefined) return { ok: false, error: `unknown gateway "${unknown}". Known: ${known.join(', ') || 'none'}` };
  return { ok: true, targets };
}
