/**
 * The bot's own HTTP endpoints on PORT, one implementation each, served by Bolt's custom
 * routes in HTTP mode and by a small node:http server in Socket Mode (./server.ts):
 *   GET /healthz       Redis reachable
 *   GET /metrics       the bot's metrics and the fleet's, read from Redis (src/metrics/)
 *   POST /alertmanager Alertmanager's webhook (./alertmanager-route.ts)
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Registry } from 'prom-client';
import { logger } from '../infra/logger.js';
import { fleetRegistry } from '../metrics/fleet.js';
import { registry as botRegistry } from '../metrics/registry.js';
import { AlertmanagerReceiver } from '../monitor/alertmanager-receiver.js';
import { enqueueCheck } from '../queue/producer.js';
import type { Env } from '../config/env.js';
import type { Runtime } from '../runtime.js';
import type { EpisodePublisher } from '../worker/ports.js';
import { alertmanagerHandler } from './alertmanager-route.js';
import { sendText } from './respond.js';

export interface HttpRoute {
  path: string;
  method: 'GET' | 'POST';
  handler: (req: IncomingMessage, res: ServerResponse) => void;
}

/** A handler that may reject: a failure is answered 500 and logged, never an unhandled rejection. */
function guarded(path: string, run: (req: IncomingMessage, res: ServerResponse) => Promise<void>): HttpRoute['handler'] {
  return (req, res) => {
    run(req, res).catch((err: unknown) => {
      logger.error({ path, err: (err as Error).message }, 'http route failed');
      if (!res.headersSent) sendText(res, 500, 'internal error\n');
      else res.end();
    });
  };
}

/** How long /healthz waits for Redis (ioredis queues commands and retries while it reconnects). */
export const HEALTH_TIMEOUT_MS = 2_000;

/** PING that fails after `ms` instead of waiting for a reconnect that may never come. */
async function pingWithin(redis: Runtime['redis'], ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no PING reply within ${ms} ms (redis status: ${redis.status})`)), ms);
  });
  const ping = redis.ping();
  ping.catch(() => undefined); // a late rejection after the timeout is not unhandled
  try {
    await Promise.race([ping, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export interface RouteDeps {
  rt: Runtime;
  /** The listener's configuration (ALERTMANAGER_TOKEN, INCIDENT_CHANNEL). */
  env: Env;
  /** Shows alerts in their episode (the Slack episode publisher). */
  episodes: EpisodePublisher;
}

export function httpRoutes({ rt, env, episodes }: RouteDeps): HttpRoute[] {
  const scrape = Registry.merge([botRegistry, fleetRegistry(rt)]);
  const receiver = new AlertmanagerReceiver({
    inventory: rt.inventory,
    redis: rt.redis,
    prefix: rt.env.QUEUE_PREFIX,
    watchStore: rt.watchStore,
    watchList: rt.watchList,
    publisher: episodes,
    enqueueCheck: (job) => enqueueCheck(rt.queues, job),
    incidentChannel: env.INCIDENT_CHANNEL ?? null,
  });
  return [
    {
      path: '/healthz',
      method: 'GET',
      handler: guarded('/healthz', async (_req, res) => {
        try {
          await pingWithin(rt.redis, HEALTH_TIMEOUT_MS);
          sendText(res, 200, 'ok\n');
        } catch (err) {
          // The detail is for the logs: the endpoint is public.
          logger.warn({ err: (err as Error).message }, 'healthz: redis not reachable');
          sendText(res, 503, 'redis unavailable\n');
        }
      }),
    },
    {
      path: '/metrics',
      method: 'GET',
      handler: guarded('/metrics', async (_req, res) => sendText(res, 200, await scrape.metrics(), scrape.contentType)),
    },
    { path: '/alertmanager', method: 'POST', handler: guarded('/alertmanager', alertmanagerHandler(receiver, env.ALERTMANAGER_TOKEN)) },
  ];
}
