/**
 * "Run full check" on an episode message: a full check of that gateway, into the episode's
 * thread. The button value is a gateway name, validated against the inventory; anyone in the
 * channel may ask for a read-only check (the plan still needs an approver).
 */
import type { App, BlockAction, ButtonAction } from '@slack/bolt';
import { z } from 'zod';
import { gatewayNameSchema } from '../../config/inventory.js';
import { metrics } from '../../metrics/registry.js';
import { enqueueCheck } from '../../queue/producer.js';
import type { Runtime } from '../../runtime.js';
import { EPISODE_ACTION_IDS } from '../blocks/episode.js';

const clickSchema = z.object({
  gateway: gatewayNameSchema,
  userId: z.string().regex(/^[UW][A-Z0-9]{2,}$/),
  channel: z.string().regex(/^[CDG][A-Z0-9]{2,}$/),
  ts: z.string().regex(/^\d+\.\d+$/),
  actionTs: z.string().regex(/^\d+\.\d+$/),
});

export function registerEpisodeActions(app: App, { rt }: { rt: Runtime }): void {
  app.action<BlockAction<ButtonAction>>(EPISODE_ACTION_IDS.runCheck, async ({ ack, body, action, respond }) => {
    await ack();
    const click = clickSchema.safeParse({
      gateway: action.value ?? '',
      userId: body.user.id,
      channel: body.channel?.id ?? body.container?.channel_id ?? '',
      ts: body.message?.ts ?? body.container?.message_ts ?? '',
      actionTs: action.action_ts,
    });
    if (!click.success || !Object.hasOwn(rt.inventory().gateways, click.data.gateway)) {
      metrics.commands.inc({ subcommand: 'episode-check', outcome: 'malformed' });
      await respond({ response_type: 'ephemeral', replace_original: false, text: 'That button does not name a gateway of the inventory.' });
      return;
    }
    const c = click.data;
    const jobId = await enqueueCheck(rt.queues, {
      gateway: c.gateway,
      requestedBy: c.userId,
      // one check per click (a retried delivery of the same click has the same action_ts)
      requestId: `episode.${c.actionTs.replace('.', '_')}`,
      origin: { kind: 'slack', channel: c.channel, threadTs: c.ts },
    });
    metrics.commands.inc({ subcommand: 'episode-check', outcome: 'queued' });
    await respond({ response_type: 'ephemeral', replace_original: false, text: `Queued a full check of *${c.gateway}* (job \`${jobId}\`); findings follow in the episode's thread.` });
  });
}
