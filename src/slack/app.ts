/**
 * The Slack listener: Bolt in Socket Mode (no public URL) or HTTP mode, chosen by
 * SLACK_MODE. It only parses, authorises, enqueues and answers; SSH happens in workers.
 */
import { App, LogLevel } from '@slack/bolt';
import type { App as BoltApp } from '@slack/bolt';
import type { WebClientOptions } from '@slack/web-api';
import type { Env } from '../config/env.js';
import { registry } from '../metrics/registry.js';
import type { Runtime } from '../runtime.js';
import { ApprovalRules } from '../approvals/rules.js';
import { registerCommands } from './commands/slash-command.js';
import { registerActions } from './actions/plan-buttons.js';
import { registerEpisodeActions } from './actions/episode-buttons.js';


export class MissingSlackConfigError extends Error {
  override name = 'MissingSlackConfigError';
}

/** Exactly which variables are missing for the chosen mode, and where to find them. */
export function missingSlackConfig(env: Env): string[] {
  const missing: string[] = [];
  if (!env.SLACK_BOT_TOKEN) missing.push('SLACK_BOT_TOKEN (xoxb-...): api.slack.com/apps -> your app -> OAuth & Permissions -> Bot User OAuth Token');
  if (env.SLACK_MODE === 'http' && !env.SLACK_SIGNING_SECRET) missing.push('SLACK_SIGNING_SECRET: api.slack.com/apps -> your app -> Basic Information -> App Credentials -> Signing Secret');
  if (env.SLACK_MODE === 'socket' && !env.SLACK_APP_TOKEN) missing.push('SLACK_APP_TOKEN (xapp-..., scope connections:write): api.slack.com/apps -> your app -> Basic Information -> App-Level Tokens (or set SLACK_MODE=http)');
  return missing;
}

export interface SlackAppDeps {
  rt: Runtime;
  env: Env;
  clientOptions?: WebClientOptions;
}

export function createSlackApp({ rt, env, clientOptions }: SlackAppDeps): BoltApp {
  const missing = missingSlackConfig(env);
  if (missing.length) {
    throw new MissingSlackConfigError(`Slack is not configured. Set:\n${missing.map((m) => `  - ${m}`).join('\n')}\nCreate the app from manifest.yml (README, "Slack app").`);
  }
  const customRoutes = [
    {
      path: '/healthz',
      method: ['GET'],
      handler: (_req: unknown, res: import('node:http').ServerResponse) => {
        rt.redis.ping().then(
          () => res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n'),
          (err: Error) => res.writeHead(503, { 'content-type': 'text/plain' }).end(`redis: ${err.message}\n`),
        );
      },
    },
    {
      path: '/metrics',
      method: ['GET'],
      handler: (_req: unknown, res: import('node:http').ServerResponse) => {
        registry.metrics().then((body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body));
      },
    },
  ];
  const mergedClientOptions: WebClientOptions = {
    ...(env.SLACK_API_URL ? { slackApiUrl: env.SLACK_API_URL } : {}),
    ...clientOptions,
  };
  const common = {
    token: env.SLACK_BOT_TOKEN,
    clientOptions: mergedClientOptions,
    // No conversation state is used: skip Bolt's per-request conversation-store middleware.
    convoStore: false as const,
    logLevel: env.LOG_LEVEL === 'debug' || env.LOG_LEVEL === 'trace' ? LogLevel.DEBUG : LogLevel.WARN,
  };
  const app =
    env.SLACK_MODE === 'socket'
      ? // Socket Mode needs no inbound HTTP; the routes get their own server on PORT (the container health check).
        new App({ ...common, appToken: env.SLACK_APP_TOKEN, socketMode: true, customRoutes, port: env.PORT })
      : new App({ ...common, signingSecret: env.SLACK_SIGNING_SECRET, customRoutes, processBeforeResponse: false });
  const rules = new ApprovalRules(
    { approvers: env.APPROVERS, approverGroups: env.APPROVER_GROUPS, allowSelfApproval: env.ALLOW_SELF_APPROVAL },
    async (usergroup) => (await app.client.usergroups.users.list({ usergroup })).users ?? [],
  );
  registerCommands(app, { rt, rules });
  registerActions(app, { rt, rules });
  registerEpisodeActions(app, { rt });
  return app;
}
