/** Slack publishers for workers: jobs that came from Slack report back to their channel, through one message writer. */
import { WebClient, type WebClientOptions } from '@slack/web-api';
import type { Env } from '../../config/env.js';
import type { ApplyJob, CheckJob } from '../../queue/jobs.js';
import type { Runtime } from '../../runtime.js';
import { silentApplyPublisher, silentCheckPublisher, type ApplyPublisher, type CheckPublisher, type EpisodePublisher } from '../../worker/ports.js';
import { SlackApplyPublisher } from './apply-message.js';
import { SlackCheckPublisher } from './check-message.js';
import { SlackEpisodePublisher } from './episode-message.js';
import { SlackMessageWriter } from './message-writer.js';
import { JobMessageStore } from '../../store/job-messages.js';

export function slackWebClient(env: Env, options: WebClientOptions = {}): WebClient {
  return new WebClient(env.SLACK_BOT_TOKEN, { ...(env.SLACK_API_URL ? { slackApiUrl: env.SLACK_API_URL } : {}), ...options });
}

export function slackPublishers(
  rt: Runtime,
  env: Env,
  client: WebClient = slackWebClient(env),
): { check: (job: CheckJob, jobId: string) => CheckPublisher; apply: (job: ApplyJob) => ApplyPublisher; episode: EpisodePublisher } {
  const writer = new SlackMessageWriter(client);
  const jobMessages = new JobMessageStore(rt.redis, env.QUEUE_PREFIX);
  return {
    check: (job, jobId) => (job.origin.kind === 'slack' ? new SlackCheckPublisher(writer, job.origin, { store: jobMessages, jobId }) : silentCheckPublisher),
    apply: (job) => (job.origin.kind === 'slack' ? new SlackApplyPublisher(writer, rt.plans, job.action) : silentApplyPublisher),
    episode: new SlackEpisodePublisher(writer, rt.watchStore, env.INCIDENT_CHANNEL ?? null, env.EPISODE_REFRESH_SECONDS * 1000),
  };
}
