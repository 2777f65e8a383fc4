/** Slack publishers for workers: jobs that came from Slack report back to their channel. */
import { WebClient, type WebClientOptions } from '@slack/web-api';
import type { Env } from '../../config/env.js';
import type { ApplyJob, CheckJob } from '../../queue/jobs.js';
import type { Runtime } from '../../runtime.js';
import type { ApplyPublisher } from '../../worker/apply-publisher.js';
import { silentApplyPublisher } from '../../worker/apply-publisher.js';
import { silentPublisher, type CheckPublisher } from '../../worker/publisher.js';
import { SlackApplyPublisher } from './apply-publisher.js';
import { SlackCheckPublisher } from './check-publisher.js';

export function slackWebClient(env: Env, options: WebClientOptions = {}): WebClient {
  return new WebClient(env.SLACK_BOT_TOKEN, { ...(env.SLACK_API_URL ? { slackApiUrl: env.SLACK_API_URL } : {}), ...options });
}

export function slackPublishers(
  rt: Runtime,
  env: Env,
  client: WebClient = slackWebClient(env),
): { check: (job: CheckJob) => CheckPublisher; apply: (job: ApplyJob) => ApplyPublisher } {
  return {
    check: (job) => (job.origin.kind === 'slack' ? new SlackCheckPublisher(client, job.origin) : silentPublisher),
    apply: (job) => (job.origin.kind === 'slack' ? new SlackApplyPublisher(client, rt.plans) : silentApplyPublisher),
  };
}
