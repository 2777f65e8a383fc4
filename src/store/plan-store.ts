/**
 * Plans live in Redis; Slack buttons carry only the plan id.
 * Status changes are compare-and-set in Lua, so two approvers clicking at once,
 * a double click or a replayed payload produce exactly one transition.
 */
import { randomUUID } from 'node:crypto';
import type { RedisConnection } from '../infra/redis.js';
import { z } from 'zod';
import { checkReportSchema, type CheckReport } from '../core/model.js';
import { originSchema, type Origin } from '../queue/jobs.js';

export const planStatusSchema = z.enum([
  'pending',
  'approved',
  'rejected',
  'expired',
  'applying',
  'applied',
  'apply-failed',
  /** The worker running the apply died, paused or lost its lock: what ran is reported, roll back restores. */
  'apply-interrupted',
  'rolling-back',
  'rolled-back',
  'rollback-failed',
]);
export type PlanStatus = z.infer<typeof planStatusSchema>;

export const slackMessageRefSchema = z.object({ channel: z.string(), ts: z.string() });
export type SlackMessageRef = z.infer<typeof slackMessageRefSchema>;

const storedPlanSchema = z.object({
  planId: z.string(),
  gateway: z.string(),
  requestedBy: z.string(),
  createdAt: z.string(),
  expiresAt: z.string(),
  origin: originSchema,
  report: checkReportSchema,
});

export interface PlanRecord extends z.infer<typeof storedPlanSchema> {
  status: PlanStatus;
  decidedBy: string | null;
  decidedAt: string | null;
  message: SlackMessageRef | null;
}

// KEYS[1] plan hash, KEYS[2] (optional) a hash written in the same step;
// ARGV: expected statuses (comma list), new status, actor, now ISO, now ms, check expiry (1/0),
// then for KEYS[2]: 'set' or 'del', field, value.
const TRANSITION = `
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {0, 'missing'} end
local allowed = false
for s in string.gmatch(ARGV[1], '[^,]+') do if s == status then allowed = true end end
if not allowed then return {0, status} end
if ARGV[6] == '1' then
  local exp = tonumber(redis.call('HGET', KEYS[1], 'expiresAtMs'))
  if exp and tonumber(ARGV[5]) > exp then
    redis.call('HSET', KEYS[1], 'status', 'expired')
    return {0, 'expired'}
  end
end
redis.call('HSET', KEYS[1], 'status', ARGV[2])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'decidedBy', ARGV[3], 'decidedAt', ARGV[4]) end
if KEYS[2] then
  if ARGV[7] == 'set' then redis.call('HSET', KEYS[2], ARGV[8], ARGV[9]) else redis.call('HDEL', KEYS[2], ARGV[8]) end
end
return {1, status}
`;

/**
 * A write that must happen in the same atomic step as a transition (the apply outbox entry
 * with the approval, the in-flight entry with 'applying'): a crash never leaves one without
 * the other. The hash must share the plan's hash slot (the prefix is a Cluster hash tag).
 */
export type TransitionAlso = { key: string; field: string; set: string } | { key: string; field: string; del: true };

export type TransitionResult = { ok: true; from: PlanStatus } | { ok: false; current: PlanStatus | 'missing' };

/** Plans are kept well beyond their approval window: the roll back needs them. */
const RETENTION_SECONDS = 14 * 24 * 3600;

export class PlanStore {
  constructor(
    private readonly redis: RedisConnection,
    private readonly prefix: string,
  ) {}

  private key(planId: string): string {
    return `${this.prefix}:plan:${planId}`;
  }

  async create(input: { report: CheckReport; requestedBy: string; origin: Origin; ttlMinutes: number; now?: Date }): Promise<PlanRecord> {
    const now = input.now ?? new Date();
    const expires = new Date(now.getTime() + input.ttlMinutes * 60_000);
    const stored = storedPlanSchema.parse({
      planId: randomUUID(),
      gateway: input.report.gateway,
      requestedBy: input.requestedBy,
      createdAt: now.toISOString(),
      expiresAt: expires.toISOString(),
      origin: input.origin,
      report: input.report,
    });
    const key = this.key(stored.planId);
    await this.redis
      .multi()
      .hset(key, { record: JSON.stringify(stored), status: 'pending', expiresAtMs: String(expires.getTime()) })
      .expire(key, RETENTION_SECONDS)
      .exec();
    return { ...stored, status: 'pending', decidedBy: null, decidedAt: null, message: null };
  }

  async get(planId: string): Promise<PlanRecord | null> {
    if (!/^[A-Za-z0-9-]{8,64}$/.test(planId)) return null;
    const h = await this.redis.hgetall(this.key(planId));
    if (!h['record'] || !h['status']) return null;
    const stored = storedPlanSchema.parse(JSON.parse(h['record']));
    const message = h['message'] ? slackMessageRefSchema.parse(JSON.parse(h['message'])) : null;
    return {
      ...stored,
      status: planStatusSchema.parse(h['status']),
      decidedBy: h['decidedBy'] ?? null,
      decidedAt: h['decidedAt'] ?? null,
      message,
    };
  }

  async setMessage(planId: string, message: SlackMessageRef): Promise<void> {
    await this.redis.hset(this.key(planId), 'message', JSON.stringify(message));
  }

  /**
   * Atomically move a plan from one of `from` to `to`. With `checkExpiry`, a plan past
   * its expiry becomes 'expired' instead (and the transition fails).
   */
  async transition(
    planId: string,
    from: PlanStatus[],
    to: PlanStatus,
    opts: { actor?: string; checkExpiry?: boolean; now?: Date; also?: TransitionAlso } = {},
  ): Promise<TransitionResult> {
    const now = opts.now ?? new Date();
    const also = opts.also;
    const alsoArgs = also ? ('set' in also ? ['set', also.field, also.set] : ['del', also.field, '']) : [];
    const [ok, status] = (await this.redis.eval(
      TRANSITION,
      also ? 2 : 1,
      this.key(planId),
      ...(also ? [also.key] : []),
      from.join(','),
      to,
      opts.actor ?? '',
      now.toISOString(),
      String(now.getTime()),
      opts.checkExpiry ? '1' : '0',
      ...alsoArgs,
    )) as [number, string];
    if (ok === 1) return { ok: true, from: planStatusSchema.parse(status) };
    return { ok: false, current: status === 'missing' ? 'missing' : planStatusSchema.parse(status) };
  }
}
