/**
 * Process configuration from the environment, validated with zod.
 * Secrets are read here and never logged (see `redactedEnv`).
 */
import { z } from 'zod';

const csv = z
  .string()
  .optional()
  .transform((v) => (v ? v.split(',').map((s) => s.trim()).filter(Boolean) : []));

/** `host:port` (a name, an IPv4 address or a bracketed IPv6 address), as Sentinel and Cluster seed lists use. */
export const hostPortSchema = z
  .string()
  .regex(/^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]{2,45}\]):\d{1,5}$/, 'expected host:port')
  .transform((v) => {
    const at = v.lastIndexOf(':');
    return { host: v.slice(0, at).replace(/^\[|\]$/g, ''), port: Number(v.slice(at + 1)) };
  })
  .refine((hp) => hp.port >= 1 && hp.port <= 65535, 'port out of range');
export type HostPort = z.output<typeof hostPortSchema>;

const hostPortList = z
  .string()
  .optional()
  .transform((v) => (v ? v.split(',').map((s) => s.trim()).filter(Boolean) : []))
  .pipe(z.array(hostPortSchema));

/**
 * A Redis Cluster hash tag: the text between the first `{` and the next `}`, not empty.
 * Every key the bot and BullMQ write starts with QUEUE_PREFIX, so with a tag they all
 * hash to one slot (Lua scripts and MULTI across them are legal on a Cluster).
 */
export function hasHashTag(prefix: string): boolean {
  return /^[^{]*\{[^}]+\}/.test(prefix);
}

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .optional()
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

/** `NAME=` (an env file's empty line, `docker run -e NAME=`) means unset, as it did before. */
function unsetWhenEmpty<T extends z.ZodType>(schema: T) {
  return z.preprocess((v) => (v === '' ? undefined : v), schema);
}

export const envSchema = z.object({
  SLACK_BOT_TOKEN: z.string().startsWith('xoxb-', 'SLACK_BOT_TOKEN must be a bot token (xoxb-...)').optional(),
  SLACK_SIGNING_SECRET: z.string().min(8).optional(),
  SLACK_APP_TOKEN: z.string().startsWith('xapp-', 'SLACK_APP_TOKEN must be an app-level token (xapp-...)').optional(),
  /** socket: Socket Mode (no public URL); http: Slack posts to PORT/slack/events. */
  SLACK_MODE: z.enum(['socket', 'http']).default('socket'),
  /** Only for tests and local development: the Slack Web API base URL. */
  SLACK_API_URL: z.string().url().optional(),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  /**
   * One Redis: redis://[:password@]host:port[/db] (rediss:// for TLS) or a unix socket path.
   * Unset together with REDIS_SENTINELS and REDIS_CLUSTER_NODES: the bot starts its own
   * private redis-server (unix socket in a 0700 directory, random password, AOF).
   */
  REDIS_URL: unsetWhenEmpty(z.string().min(1).optional()),
  /** Redis Sentinel: the Sentinels' host:port list; with REDIS_SENTINEL_NAME (the monitored master's name). */
  REDIS_SENTINELS: hostPortList,
  REDIS_SENTINEL_NAME: z.string().regex(/^[\w.-]{1,64}$/, 'a Sentinel master name (letters, digits, _ . -)').optional(),
  /** Redis Cluster: seed nodes host:port (any few of the cluster's nodes). QUEUE_PREFIX must hold a hash tag. */
  REDIS_CLUSTER_NODES: hostPortList,
  /** Password (requirepass / ACL default user) of the data nodes for REDIS_SENTINELS or REDIS_CLUSTER_NODES. */
  REDIS_PASSWORD: unsetWhenEmpty(z.string().min(1).optional()),
  /** Password of the Sentinels themselves (sentinel requirepass), if they have one. */
  REDIS_SENTINEL_PASSWORD: unsetWhenEmpty(z.string().min(1).optional()),
  /** Key prefix of every key (queues and stores); braces make it a Redis Cluster hash tag. */
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
  /**
   * A file shared in Slack is read as a saved file up to this many bytes (streamed, never held
   * whole); a larger one is refused with a reply. Default 2 GiB.
   */
  SAVED_FILE_MAX_BYTES: z.coerce.number().int().min(1024).max(64 * 1024 ** 3).default(2 * 1024 ** 3),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});
export type Env = z.infer<typeof envSchema>;

/** The fields' schema plus the rules across them (one Redis topology, a hash tag on a Cluster). */
const validEnvSchema = envSchema.superRefine((env, ctx) => {
  const chosen = [env.REDIS_URL ? 'REDIS_URL' : null, env.REDIS_SENTINELS.length ? 'REDIS_SENTINELS' : null, env.REDIS_CLUSTER_NODES.length ? 'REDIS_CLUSTER_NODES' : null].filter(Boolean);
  if (chosen.length > 1) ctx.addIssue({ code: 'custom', path: ['REDIS_URL'], message: `set one Redis topology, not ${chosen.join(' and ')}` });
  if (env.REDIS_SENTINELS.length && !env.REDIS_SENTINEL_NAME) ctx.addIssue({ code: 'custom', path: ['REDIS_SENTINEL_NAME'], message: 'REDIS_SENTINELS needs REDIS_SENTINEL_NAME (the master name the Sentinels monitor)' });
  if (env.REDIS_SENTINEL_NAME && !env.REDIS_SENTINELS.length) ctx.addIssue({ code: 'custom', path: ['REDIS_SENTINELS'], message: 'REDIS_SENTINEL_NAME without REDIS_SENTINELS' });
  if (env.REDIS_CLUSTER_NODES.length && !hasHashTag(env.QUEUE_PREFIX))
    ctx.addIssue({ code: 'custom', path: ['QUEUE_PREFIX'], message: `on a Redis Cluster QUEUE_PREFIX must hold a hash tag, e.g. {conntrack-ops} (got ${env.QUEUE_PREFIX})` });
});

export function loadEnv(source: NodeJS.ProcessEnv = process.env): Env {
  const result = validEnvSchema.safeParse(source);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  - ${i.path.join('.')}: ${i.message}`);
    throw new Error(`invalid environment:\n${lines.join('\n')}`);
  }
  return result.data;
}

const SECRET_KEYS = ['SLACK_BOT_TOKEN', 'SLACK_SIGNING_SECRET', 'SLACK_APP_TOKEN', 'REDIS_URL', 'REDIS_PASSWORD', 'REDIS_SENTINEL_PASSWORD', 'ALERTMANAGER_TOKEN'] as const;

/** The env with secrets replaced, safe to log. */
export function redactedEnv(env: Env): Record<string, unknown> {
  const copy: Record<string, unknown> = { ...env };
  for (const key of SECRET_KEYS) if (copy[key]) copy[key] = '[redacted]';
  return copy;
}
