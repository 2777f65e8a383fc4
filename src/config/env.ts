/**
 * Process configuration from the environment, validated with zod.
 * Secrets are read here and never logged (see `redactedEnv`).
 */
import { z } from 'zod';

const csv = z
  .string()
  .optional()
  .transform((v) => (v ? v.split(',').map((s) => s.trim()).filter(Boolean) : []));

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .optional()
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

export const envSchema = z.object({
  SLACK_BOT_TOKEN: z.string().startsWith('xoxb-', 'SLACK_BOT_TOKEN must be a bot token (xoxb-...)').optional(),
  SLACK_SIGNING_SECRET: z.string().min(8).optional(),
  SLACK_APP_TOKEN: z.string().startsWith('xapp-', 'SLACK_APP_TOKEN must be an app-level token (xapp-...)').optional(),
  /** socket: Socket Mode (no public URL); http: Slack posts to PORT/slack/events. */
  SLACK_MODE: z.enum(['socket', 'http']).default('socket'),
  /** Only for tests and local development: the Slack Web API base URL. */
  SLACK_API_URL: z.string().url().optional(),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  /** Unset: the bot starts its own redis-server on a free port (local/demo). */
  REDIS_URL: z.string().optional(),
  /** Key prefix for queues; braces make it a Redis Cluster hash tag. */
  QUEUE_PREFIX: z.string().regex(/^[{}\w:.-]+$/).default('{conntrack-ops}'),
  INVENTORY: z.string().default('inventory.yml'),
  /** Slack user ids allowed to approve plans. */
  APPROVERS: csv,
  /** Slack user group ids whose members may approve. */
  APPROVER_GROUPS: csv,
  ALLOW_SELF_APPROVAL: bool,
  PLAN_TTL_MINUTES: z.coerce.number().int().min(1).max(24 * 60).default(30),
  INCIDENT_CHANNEL: z.string().optional(),
  /** Seconds after a verified apply until the follow-up check that says whether drops stopped. */
  FOLLOW_UP_DELAY_SECONDS: z.coerce.number().int().min(1).max(24 * 3600).default(300),
  WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(4),
  /** The watch: default poll interval of a watched gateway (the inventory's watch.intervalSeconds overrides it). */
  WATCH_INTERVAL_SECONDS: z.coerce.number().int().min(1).max(3600).default(30),
  /**
   * The per-gateway lock's TTL (renewed every third of it): a worker paused or cut off from
   * Redis longer than this loses the gateway and writes nothing more to it.
   */
  GATEWAY_LOCK_TTL_SECONDS: z.coerce.number().int().min(1).max(600).default(30),
  /** How often every worker looks for interrupted applies and approvals whose job was never queued. */
  SWEEP_INTERVAL_SECONDS: z.coerce.number().int().min(1).max(600).default(10),
  /** On SIGTERM with Redis unreachable, the worker exits after at most this long (saying what it abandoned). */
  WORKER_STOP_SECONDS: z.coerce.number().int().min(1).max(600).default(10),
  /** On SIGTERM with Redis answering, a running apply gets this long to finish or restore. */
  WORKER_STOP_GRACE_SECONDS: z.coerce.number().int().min(1).max(3600).default(540),
  /** Polls one worker process runs at once (a poll is one light exec on a warm session). */
  WATCH_CONCURRENCY: z.coerce.number().int().min(1).max(256).default(16),
  /** An open episode's Slack message is refreshed (now %, growth) at most this often between events. */
  EPISODE_REFRESH_SECONDS: z.coerce.number().int().min(5).max(3600).default(60),
  /**
   * Bearer token Alertmanager sends to POST /alertmanager (webhook_configs http_config
   * authorization credentials_file). Unset: the route answers 503, not configured.
   */
  ALERTMANAGER_TOKEN: z.string().min(16, 'ALERTMANAGER_TOKEN must be at least 16 characters').optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});
export type Env = z.infer<typeof envSchema>;

export function loadEnv(source: NodeJS.ProcessEnv = process.env): Env {
  const result = envSchema.safeParse(source);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  - ${i.path.join('.')}: ${i.message}`);
    throw new Error(`invalid environment:\n${lines.join('\n')}`);
  }
  return result.data;
}

const SECRET_KEYS = ['SLACK_BOT_TOKEN', 'SLACK_SIGNING_SECRET', 'SLACK_APP_TOKEN', 'REDIS_URL', 'ALERTMANAGER_TOKEN'] as const;

/** The env with secrets replaced, safe to log. */
export function redactedEnv(env: Env): Record<string, unknown> {
  const copy: Record<string, unknown> = { ...env };
  for (const key of SECRET_KEYS) if (copy[key]) copy[key] = '[redacted]';
  return copy;
}
