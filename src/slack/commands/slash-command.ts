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

export function registerCommands(app: App, { rt }: CommandDeps): void {
  app.command('/conntrack', async ({ command, ack, respond }) => {
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
        const inventory = rt.inventory();
        const known = Object.keys(inventory.gateways);
        const targets = cmd.target.all ? known : [cmd.target.gateway];
        const unknown = targets.filter((g) => !inventory.gateways[g]);
        if (unknown.length || targets.length === 0) {
          metrics.commands.inc({ subcommand: 'check', outcome: 'unknown-gateway' });
          await ack({
            response_type: 'ephemeral',
            ...renderUsage(targets.length === 0 ? 'the inventory has no gateways' : `unknown gateway "${unknown[0]}". Known: ${known.join(', ') || 'none'}`),
          });
          return;
        }
        const origin = { kind: 'slack' as const, channel: command.channel_id };
        const jobIds = await Promise.all(
          targets.map((gateway) =>
            enqueueCheck(rt.queues, { gateway, requestedBy: command.user_id, requestId: requestIdFrom(command.trigger_id, gateway), origin }),
          ),
        );
        await ack({
          response_type: 'ephemeral',
          text:
            targets.length === 1
              ? `Queued a check of *${targets[0]}* (job \`${jobIds[0]}\`). Progress and findings will appear in this channel.`
              : `Queued checks of ${targets.length} gateways: ${targets.join(', ')}. Findings will appear in this channel.`,
        });
        metrics.commands.inc({ subcommand: 'check', outcome: 'queued' });
        metrics.ackSeconds.observe((performance.now() - started) / 1000);
        break;
      }
      case 'status': {
        await ack();
        const [last, active, waiting, delayed] = await Promise.all([
          rt.history.lastChecks(),
          rt.queues.check.getActive(),
          rt.queues.check.getWaiting(),
          rt.queues.apply.getActive(),
        ]);
        const running = [...active, ...waiting, ...delayed]
          .filter((j) => !cmd.gateway || j.data.gateway === cmd.gateway)
          .map((j) => ({ id: j.id ?? '?', gateway: j.data.gateway, name: j.name }));
        const lastChecks = cmd.gateway ? Object.fromEntries(Object.entries(last).filter(([g]) => g === cmd.gateway)) : last;
        await respond({ response_type: 'ephemeral', ...renderStatus({ gateway: cmd.gateway, lastChecks, running }) });
        metrics.commands.inc({ subcommand: 'status', outcome: 'ok' });
        break;
      }
      case 'history': {
        await ack();
        const records = await rt.history.list(cmd.gateway, 20);
        await respond({ response_type: 'ephemeral', ...renderHistory(cmd.gateway, records) });
        metrics.commands.inc({ subcommand: 'history', outcome: 'ok' });
        break;
      }
    }
  });
}
