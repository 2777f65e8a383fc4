/**
 * The per-plan apply record in Redis, next to the plan (same prefix):
 *
 *   <prefix>:apply:<planId>         hash: snapshot, steps, outcome, followUp, runs
 *   <prefix>:apply:<planId>:lease   the token of the one run that may write (SET NX PX, renewed)
 *
 * Every write made during a run is a compare-and-set on the lease: a run that lost
 * its lease (stalled worker, a second job) cannot overwrite the state, and stops
 * before touching the gateway again.
 */
import { randomUUID } from 'node:crypto';
import type { RedisConnection } from '../infra/redis.js';
import { z } from 'zod';
import { jsonOrNull } from '../infra/json.js';
import {
  applyOutcomeSchema,
  applyStepStateSchema,
  followUpSchema,
  snapshotSchema,
  type ApplyOutcome,
  type ApplyStepState,
  type FollowUp,
  type Snapshot,
} from './model.js';
import type { TransitionAlso } from '../store/plan-store.js';

const SET_IF_OWNER = `
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1`;
const EXTEND = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;

/** Kept as long as the plan itself (PlanStore keeps plans 14 days: the roll back needs both). */
const RETENTION_SECONDS = 14 * 24 * 3600;

export class LeaseLostError extends Error {
  override name = 'LeaseLostError';
}

export interface ApplyLease {
  readonly token: string;
  /** True while the lease is ours (renewals succeed). */
  held(): boolean;
  release(): Promise<void>;
}

const stepsSchema = z.array(applyStepStateSchema);
const inflightSchema = z.object({ action: z.enum(['apply', 'rollback']), at: z.number() });


export class ApplyRecordStore {
  constructor(
    private readonly redis: RedisConnection,
    private readonly prefix: string,
    private readonly leaseMs = 30_000,
  ) {}

  key(planId: string): string {
    return `${this.prefix}:apply:${planId}`;
  }

  private leaseKey(planId: string): string {
    return `${this.key(planId)}:lease`;
  }

  /** Take the plan's lease for one run, or null when another run holds it. */
  async acquire(planId: string): Promise<ApplyLease | null> {
    const token = randomUUID();
    const key = this.leaseKey(planId);
    const ok = await this.redis.set(key, token, 'PX', this.leaseMs, 'NX');
    if (ok !== 'OK') return null;
    let held = true;
    const timer = setInterval(() => {
      this.redis
        .eval(EXTEND, 1, key, token, String(this.leaseMs))
        .then((r) => {
          if (Number(r) !== 1) held = false;
        })
        .catch(() => undefined);
    }, Math.floor(this.leaseMs / 3));
    timer.unref();
    return {
      token,
      held: () => held,
      release: async () => {
        clearInterval(timer);
        held = false;
        await this.redis.eval(RELEASE, 1, key, token);
      },
    };
  }

  /** Whether some run holds the plan's lease right now. */
  async leaseHeld(planId: string): Promise<boolean> {
    return (await this.redis.exists(this.leaseKey(planId))) === 1;
  }

  private async setIfOwner(planId: string, lease: ApplyLease, field: string, value: string): Promise<void> {
    const ok = await this.redis.eval(SET_IF_OWNER, 2, this.key(planId), this.leaseKey(planId), lease.token, field, value, String(RETENTION_SECONDS));
    if (Number(ok) !== 1) throw new LeaseLostError(`lost the apply lease of plan ${planId}: another run owns it now; stopping without further changes`);
  }

  async saveSnapshot(planId: string, lease: ApplyLease, snapshot: Snapshot): Promise<void> {
    await this.setIfOwner(planId, lease, 'snapshot', JSON.stringify(snapshotSchema.parse(snapshot)));
  }

  async saveSteps(planId: string, lease: ApplyLease, steps: ApplyStepState[]): Promise<void> {
    await this.setIfOwner(planId, lease, 'steps', JSON.stringify(stepsSchema.parse(steps)));
  }

  async saveOutcome(planId: string, lease: ApplyLease, outcome: ApplyOutcome): Promise<void> {
    await this.setIfOwner(planId, lease, `outcome:${outcome.action}`, JSON.stringify(applyOutcomeSchema.parse(outcome)));
  }

  async saveFollowUp(planId: string, lease: ApplyLease, followUp: FollowUp): Promise<void> {
    await this.setIfOwner(planId, lease, 'followUp', JSON.stringify(followUpSchema.parse(followUp)));
  }

  /** Outcome written outside a run (interrupted runs are reported by the next one). */
  async saveOutcomeUnowned(planId: string, outcome: ApplyOutcome): Promise<void> {
    await this.redis
      .multi()
      .hset(this.key(planId), `outcome:${outcome.action}`, JSON.stringify(applyOutcomeSchema.parse(outcome)))
      .expire(this.key(planId), RETENTION_SECONDS)
      .exec();
  }

  async snapshot(planId: string): Promise<Snapshot | null> {
    const raw = await this.redis.hget(this.key(planId), 'snapshot');
    return raw ? snapshotSchema.parse(JSON.parse(raw)) : null;
  }

  async steps(planId: string): Promise<ApplyStepState[] | null> {
    const raw = await this.redis.hget(this.key(planId), 'steps');
    return raw ? stepsSchema.parse(JSON.parse(raw)) : null;
  }

  async outcome(planId: string, action: 'apply' | 'rollback'): Promise<ApplyOutcome | null> {
    const raw = await this.redis.hget(this.key(planId), `outcome:${action}`);
    return raw ? applyOutcomeSchema.parse(JSON.parse(raw)) : null;
  }

  async followUp(planId: string): Promise<FollowUp | null> {
    const raw = await this.redis.hget(this.key(planId), 'followUp');
    return raw ? followUpSchema.parse(JSON.parse(raw)) : null;
  }

  private get inflightKey(): string {
    return `${this.prefix}:apply:inflight`;
  }

  /**
   * Plans with a run in progress (for finding runs whose worker died): written in the same
   * atomic step as the plan's move to 'applying' / 'rolling-back' (PlanStore.transition `also`).
   */
  inflightEntry(planId: string, action: 'apply' | 'rollback', now = Date.now()): TransitionAlso {
    return { key: this.inflightKey, field: planId, set: JSON.stringify(inflightSchema.parse({ action, at: now })) };
  }

  /** Before the in-flight hash, runs were a set: read it too, so a run in flight across an upgrade is still found. */
  private get legacyActiveKey(): string {
    return `${this.prefix}:apply:active`;
  }

  async clearActive(planId: string): Promise<void> {
    await this.redis.multi().hdel(this.inflightKey, planId).srem(this.legacyActiveKey, planId).exec();
  }

  async active(): Promise<{ planId: string; action: 'apply' | 'rollback'; at: number }[]> {
    const raw = await this.redis.hgetall(this.inflightKey);
    const out: { planId: string; action: 'apply' | 'rollback'; at: number }[] = [];
    for (const [planId, value] of Object.entries(raw)) {
      if (!/^[A-Za-z0-9-]{8,64}$/.test(planId)) continue;
      const parsed = inflightSchema.safeParse(jsonOrNull(value));
      out.push(parsed.success ? { planId, ...parsed.data } : { planId, action: 'apply', at: 0 });
    }
    for (const planId of await this.redis.smembers(this.legacyActiveKey)) {
      if (/^[A-Za-z0-9-]{8,64}$/.test(planId) && !out.some((r) => r.planId === planId)) out.push({ planId, action: 'apply', at: 0 });
    }
    return out;
  }

  /** Counts runs that reached the gateway (tests and the report: "applied once"). */
  async countRun(planId: string, action: 'apply' | 'rollback'): Promise<number> {
    const n = await this.redis.hincrby(this.key(planId), `runs:${action}`, 1);
    await this.redis.expire(this.key(planId), RETENTION_SECONDS);
    return n;
  }

  async runs(planId: string, action: 'apply' | 'rollback'): Promise<number> {
    return Number((await this.redis.hget(this.key(planId), `runs:${action}`)) ?? '0');
  }
}
