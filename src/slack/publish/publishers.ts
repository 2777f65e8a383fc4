/** Slack publishers for workers: jobs that came from Slack report back to their channel, through one message writer. */
import { WebClient, type RetryOptions, type WebClientOptions } from '@slack/web-api';
import type { Env } from '../../config/env.js';
import { ApplyRecordStore } from '../../apply/store.js';
import { defaultChartRenderer, type ChartRenderer } from '../../incident/chart-port.js';
import { IncidentMessageStore } from '../../incident/message-store.js';
import type { ApplyJob, CheckJob } from '../../queue/jobs.js';
import type { Runtime } from '../../runtime.js';
import type { HistoryStore } from '../../store/history-store.js';
import { silentApplyPublisher, silentCheckPublisher, type ApplyPublisher, type CheckPublisher, type EpisodePublisher } from '../../worker/ports.js';
import { SlackApplyPublisher } from './apply-message.js';
import { SlackCheckPublisher } from './check-message.js';
import { SlackCheckAllPublisher } from './check-all-message.js';
import { CheckAllStore } from './check-all-store.js';
import { SlackEpisodePublisher } from './episode-message.js';
import { SlackIncidentSummary } from './incident-summary.js';
import { SlackMessageWriter } from './message-writer.js';
import { JobMessageStore } from '../../store/job-messages.js';
import type { SavedFileWork } from '../../worker/start.js';
import { SlackSharedFileSource } from '../files/shared-file-source.js';
import { SlackSavedFilePublisher } from './saved-file-message.js';

/** One Slack call (one attempt) gives up after this long; the SDK's default is never. */
export const SLACK_CALL_TIMEOUT_MS = 15_000;

/**
 * Retries of a failed call (network error, timeout, HTTP 5xx, 429). A 429 waits its
 * `Retry-After` first (the client pauses all its calls meanwhile), then this backoff:
 * seven tries over at most about two minutes, instead of the SDK's ten over half an hour.
 */
export const SLACK_RETRY_CONFIG: RetryOptions = { retries: 6, factor: 2, minTimeout: 500, maxTimeout: 20_000, randomize: true };

/** Options of every WebClient the bot makes (Bolt's client, the Socket Mode client's, the publishers'). */
export function slackClientOptions(env: Env, overrides: WebClientOptions = {}): WebClientOptions {
  return {
    ...(env.SLACK_API_URL ? { slackApiUrl: env.SLACK_API_URL } : {}),
    timeout: SLACK_CALL_TIMEOUT_MS,
    retryConfig: SLACK_RETRY_CONFIG,
    // Rate-limited calls wait and are retried, never dropped.
    rejectRateLimitedCalls: false,
    ...overrides,
  };
}

export function slackWebClient(env: Env, options: WebClientOptions = {}): WebClient {
  return new WebClient(env.SLACK_BOT_TOKEN, slackClientOptions(env, options));
}

export interface IncidentSummaryOptions {
  /** Draws the episode chart posted in the summary's thread (default: src/incident/chart.ts). */
  chart?: ChartRenderer;
  debounceMs?: number;
}

/** One incident summary per history store (a process that runs the listener and a worker wires it once). */
const summaries = new WeakMap<HistoryStore, SlackIncidentSummary>();

/**
 * The incident summaries of this process: edited after every history record of a gateway
 * (checks, decisions, applies, roll backs, follow-ups, closes), from whichever part recorded it.
 */
export function incidentSummaries(rt: Runtime, env: Env, client: WebClient, opts: IncidentSummaryOptions = {}): SlackIncidentSummary {
  const known = summaries.get(rt.history);
  if (known) return known;
  const summary = new SlackIncidentSummary({
    writer: new SlackMessageWriter(client),
    stores: { watchStore: rt.watchStore, history: rt.history, plans: rt.plans, applies: new ApplyRecordStore(rt.redis, env.QUEUE_PREFIX) },
    messages: new IncidentMessageStore(rt.redis, env.QUEUE_PREFIX),
    watchList: rt.watchList,
    inventory: rt.inventory,
    incidentChannel: env.INCIDENT_CHANNEL ?? null,
    chart: opts.chart ?? defaultChartRenderer,
    ...(opts.debounceMs !== undefined ? { debounceMs: opts.debounceMs } : {}),
    refreshMs: env.EPISODE_REFRESH_SECONDS * 1000,
  });
  rt.history.onRecord((record) => summary.afterRecord(record));
  summaries.set(rt.history, summary);
  return summary;
}

/**
 * The workers' Slack publishers. Applies and roll backs write through a WebClient of
 * their own (`opts.applyClient`): a client that got a 429 holds all its calls until the
 * Retry-After has passed, so checks (`check all`, follow-ups) rate-limited on
 * chat.postMessage never hold an apply's progress.
 */
export function slackPublishers(
  rt: Runtime,
  env: Env,
  client: WebClient = slackWebClient(env),
  opts: { incident?: IncidentSummaryOptions; applyClient?: WebClient } = {},
): { check: (job: CheckJob, jobId: string) => CheckPublisher; apply: (job: ApplyJob) => ApplyPublisher; episode: EpisodePublisher; incident: SlackIncidentSummary; savedFile: SavedFileWork } {
  const writer = new SlackMessageWriter(client);
  const applyWriter = new SlackMessageWriter(opts.applyClient ?? slackWebClient(env));
  const jobMessages = new JobMessageStore(rt.redis, env.QUEUE_PREFIX);
  const checkAllRuns = new CheckAllStore(rt.redis, env.QUEUE_PREFIX);
  const episodes = new SlackEpisodePublisher(writer, rt.watchStore, env.INCIDENT_CHANNEL ?? null, env.EPISODE_REFRESH_SECONDS * 1000);
  const incident = incidentSummaries(rt, env, client, opts.incident);
  return {
    check: (job, jobId) => {
      if (job.origin.kind !== 'slack') return silentCheckPublisher;
      const { checkAll, threadTs, channel } = job.origin;
      if (checkAll && threadTs) return new SlackCheckAllPublisher(writer, checkAllRuns, checkAll, { channel, threadTs });
      return new SlackCheckPublisher(writer, job.origin, { store: jobMessages, jobId });
    },
    apply: (job) => (job.origin.kind === 'slack' ? new SlackApplyPublisher(applyWriter, rt.plans, job.action) : silentApplyPublisher),
    // The episode message, then the incident summary of the same episode (two messages: see incident-summary.ts).
    episode: {
      async publish(update) {
        try {
          return await episodes.publish(update);
        } finally {
          incident.afterPoll(update);
        }
      },
    },
    incident,
    // Files shared in Slack: read with files.info and the bot token, answered in the file's thread.
    savedFile: { source: new SlackSharedFileSource(client, env.SLACK_BOT_TOKEN ?? '', env.SLACK_API_URL), publisher: new SlackSavedFilePublisher(writer) },
  };
}
