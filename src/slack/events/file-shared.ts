/**
 * `file_shared` (Events API or Socket Mode; bot scope files:read): a file shared in a
 * conversation the bot is in. The listener only validates the event and queues a saved-file
 * job (src/worker/saved-file-processor.ts does the download and the analysis), so Slack gets
 * its ack at once (Bolt acks events itself; a slow ack makes Slack retry the event, and a
 * retry, with the same event_ts, is the same job: savedFileJobId). Files the bot shared
 * itself (the overflow detail, the incident chart) are not queued.
 *
 * Why this event and not `/conntrack analyze <file id>`: sharing the file is all a user does,
 * Slack gives no easy way to see a file's id, and files:read is the only scope it needs
 * (a `message` event with `files` would need channels:history and deliver every message).
 */
import type { App } from '@slack/bolt';
import { z } from 'zod';
import { logger } from '../../infra/logger.js';
import { metrics } from '../../metrics/registry.js';
import { enqueueSavedFile } from '../../queue/producer.js';
import { savedFileJobSchema, slackFileIdSchema } from '../../queue/jobs.js';
import type { Runtime } from '../../runtime.js';

/** The fields of file_shared (docs.slack.dev/reference/events/file_shared) the bot reads. */
const fileSharedSchema = z.object({
  type: z.literal('file_shared'),
  file_id: slackFileIdSchema,
  user_id: z.string().min(1).max(32),
  channel_id: z.string().min(1).max(32),
  event_ts: z.string().min(1).max(32),
});

export function registerFileShared(app: App, { rt }: { rt: Runtime }): void {
  app.event('file_shared', async ({ event, context }) => {
    const started = performance.now();
    const parsed = fileSharedSchema.safeParse(event);
    if (!parsed.success) {
      logger.warn({ issue: parsed.error.issues[0]?.message }, 'file_shared event with an unexpected shape: ignored');
      return;
    }
    const e = parsed.data;
    if (context.botUserId !== undefined && e.user_id === context.botUserId) return;
    const job = savedFileJobSchema.safeParse({ fileId: e.file_id, channel: e.channel_id, sharedBy: e.user_id, eventTs: e.event_ts });
    if (!job.success) {
      logger.warn({ issue: job.error.issues[0]?.message }, 'file_shared event not queued');
      return;
    }
    await enqueueSavedFile(rt.queues, job.data);
    metrics.commands.inc({ subcommand: 'saved-file', outcome: 'queued' });
    metrics.ackSeconds.observe((performance.now() - started) / 1000);
  });
}
