/** The bot as the /metrics, /alertmanager and Prometheus tests run it: HTTP mode on loopback, Slack through the local API server. */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { App } from '@slack/bolt';
import { loadEnv, type Env } from '../../src/config/env.js';
import type { Runtime } from '../../src/runtime.js';
import { createSlackApp } from '../../src/slack/app.js';
import { slackPublishers, slackWebClient } from '../../src/slack/publish/index.js';
import { startWorkers, type RunningWorkers, type WorkerOptions } from '../../src/worker/start.js';
import type { SlackApiServer } from '../support/slack-api/index.js';

export interface ListenerVars {
  slack: SlackApiServer;
  redisUrl: string;
  inventory: string;
  incidentChannel: string;
}

/** HTTP mode against the local Slack API server; `extra` adds or overrides variables. */
export function listenerEnv(v: ListenerVars, extra: Record<string, string> = {}): Env {
  return loadEnv({
    SLACK_MODE: 'http',
    SLACK_BOT_TOKEN: v.slack.token,
    SLACK_SIGNING_SECRET: 'listener-test-signing-secret',
    SLACK_API_URL: v.slack.apiUrl,
    REDIS_URL: v.redisUrl,
    INVENTORY: v.inventory,
    INCIDENT_CHANNEL: v.incidentChannel,
    LOG_LEVEL: 'error',
    ...extra,
  });
}

/** The app on an ephemeral loopback port (HTTP mode: Bolt's server with our routes); no Slack retries. */
export async function startHttpListener(rt: Runtime, env: Env): Promise<{ app: App; base: string }> {
  const app = createSlackApp({ rt, env, clientOptions: { retryConfig: { retries: 0 } } });
  const server = (await app.start({ port: 0, host: '127.0.0.1' } as never)) as unknown as Server;
  return { app, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** Workers in this process posting to Slack (no retries). */
export function startSlackWorkers(rt: Runtime, env: Env, opts: Omit<WorkerOptions, 'publishers'> = {}): RunningWorkers {
  return startWorkers(rt, { ...opts, publishers: slackPublishers(rt, env, slackWebClient(env, { retryConfig: { retries: 0 } })) });
}
