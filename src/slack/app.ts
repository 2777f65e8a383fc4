/**
 * The Slack listener: Bolt in Socket Mode (no public URL) or HTTP mode, chosen by
 * SLACK_MODE. It only parses, authorises, enqueues and answers; SSH happens in workers.
 */
import type { Server } from 'node:http';
import { App, LogLevel } from '@slack/bolt';
import type { App as BoltApp } from '@slack/bolt';
import type { WebClientOptions } from '@slack/web-api';
import type { Env } from '../config/env.js';
import { httpRoutes, type HttpRoute } from '../http/routes.js';
import { close, listen, routesServer } from '../http/server.js';
import type { Runtime } from '../runtime.js';
import type { EpisodePublisher } from '../worker/ports.js';
import { SlackEpisodePublisher } from './publish/episode-message.js';
import { SlackMessageWriter } from './publish/message-writer.js';
import { ApprovalRules } from '../approvals/rules.js';
import { registerCommands } from './commands/slash-command.js';
import { registerActions } from './actions/plan-buttons.js';
import { registerEpisodeActions } from './actions/episode-buttons.js';
import { registerFileShared } from './events/file-shared.js';
import { slackClientOptions } from './publish/publishers.js';
import { HandoverSocketModeReceiver, type HandoverReceiverOptions } from './socket-mode-receiver.js';


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
  // The routes need the episode publisher, which needs the app's client: bound once the app exists.
  let episodes: EpisodePublisher | null = null;
  const routes = httpRoutes({ rt, env, episodes: { publish: (update) => (episodes ? episodes.publish(update) : Promise.resolve(null)) } });
  // Explicit timeout and retries on Bolt's client and on the Socket Mode client's (apps.connections.open).
  const mergedClientOptions: WebClientOptions = slackClientOptions(env, clientOptions);
  const common = {
    token: env.SLACK_BOT_TOKEN,
    clientOptions: mergedClientOptions,
    // No conversation state is used: skip Bolt's per-request conversation-store middleware.
    convoStore: false as const,
    logLevel: env.LOG_LEVEL === 'debug' || env.LOG_LEVEL === 'trace' ? LogLevel.DEBUG : LogLevel.WARN,
  };
  const app =
    env.SLACK_MODE === 'socket'
      ? new App({
          ...common,
          receiver: new SocketModeWithRoutes({ appToken: env.SLACK_APP_TOKEN ?? '', logLevel: common.logLevel, clientOptions: mergedClientOptions }, routes, env.PORT),
        })
      : new App({ ...common, signingSecret: env.SLACK_SIGNING_SECRET, customRoutes: routes, processBeforeResponse: false });
  episodes = new SlackEpisodePublisher(new SlackMessageWriter(app.client), rt.watchStore, env.INCIDENT_CHANNEL ?? null, env.EPISODE_REFRESH_SECONDS * 1000);
  const rules = new ApprovalRules(
    { approvers: env.APPROVERS, approverGroups: env.APPROVER_GROUPS, allowSelfApproval: env.ALLOW_SELF_APPROVAL },
    async (usergroup) => (await app.client.usergroups.users.list({ usergroup })).users ?? [],
  );
  registerCommands(app, { rt, rules });
  registerActions(app, { rt, rules });
  registerEpisodeActions(app, { rt });
  registerFileShared(app, { rt });
  return app;
}

/**
 * Socket Mode (handed over to a new connection when Slack refreshes it: socket-mode-receiver.ts)
 * plus the bot's HTTP routes (/healthz, /metrics, /alertmanager) on PORT: Socket
 * Mode itself listens nowhere, but Prometheus and Alertmanager still need to reach the bot.
 * `app.start({ port, host })` may override where (tests: port 0 on loopback).
 */
class SocketModeWithRoutes extends HandoverSocketModeReceiver {
  private readonly server: Server;

  constructor(
    options: HandoverReceiverOptions,
    routes: readonly HttpRoute[],
    private readonly port: number,
  ) {
    super(options);
    this.server = routesServer(routes);
  }

  override async start(where: { port?: number; host?: string } = {}): Promise<unknown> {
    await listen(this.server, where.port ?? this.port, where.host);
    try {
      return await super.start();
    } catch (err) {
      await close(this.server);
      throw err;
    }
  }

  override async stop(): Promise<void> {
    await close(this.server);
    await super.stop();
  }
}
