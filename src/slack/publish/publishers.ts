/** Slack publishers for workers: jobs that came from Slack report back to their channel, through one message writer. */
import { WebClient, type WebClientOptions } from '@slack/web-api';
import type { Env } from '../../config/env.js';
import type { ApplyJob, CheckJob } from '../../queue/jobs.js';
import type { Runtime } from '../../runtime.js';
import { silentApplyPublisher, silentCheckPublisher, type ApplyPublisher, type CheckPublisher } from '../../worker/ports.js';
import { SlackApplyPublisher } from './apply-message.js';
import { SlackCheckPublisher } from './check-message.js';
import { SlackMessageWriter } from './message-writer.js';

export function slackWebClient(env: Env, options: WebClientOptions = {}): WebClient {
  return new WebClient(env.SLACK_BOT_TOKEN, { ...(env.SLACK_API_URL ? { slackApiUrl: env.SLACK_API_URL } : {}), ...options });
}

export function slackPublishers(
  rt: Runtime,
  env: Env,
  client: WebClient = slackWebClient(env),
): { check: (job: CheckJob) => CheckPublisher; apply: (job: ApplyJob) => ApplyPublisher } {
  const writer = new SlackMessageWriter(client);
  return {
    check: (job) => (job.origin.kind === 'slack' ? new SlackCheckPublisher(writer, job.origin) : silentCheckPublisher),
    apply: (job) => (job.origin.kind === 'slack' ? new SlackApplyPublisher(writer, rt.plans, job.action) : silentApplyPublisher),
  };
}
