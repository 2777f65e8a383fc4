/**
 * At most one running job per gateway, across every worker on every machine:
 * a Redis lock (SET NX PX) owned by a random token, renewed while the job runs.
 *
 * Fair with priority: a change (apply, roll back) that finds the gateway busy registers in
 * the gateway's waiting set, and no check takes the gateway while a change waits there, so
 * a stream of checks cannot starve an approved apply. A waiting entry expires unless its
 * job keeps retrying (a dead worker does not block checks for ever).
 *
 * Ownership is tracked: a renewal that fails, or none confirmed within the TTL (a paused
 * process), marks the lock lost; `ensureHeld()` asks Redis before every gateway write.
 */
import { randomUUID } from 'node:crypto';
import type { RedisConnection } from '../infra/redis.js';

const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;
const EXTEND = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`;
// KEYS[1] lock, KEYS[2] waiting changes (zset member -> until ms)
// ARGV: token, ttl ms, priority ('change' | 'check'), holder, now ms, waiting entry ttl ms
// -> 1 taken, 0 busy, 2 refused: a change is waiting (checks yield)
const ACQUIRE = `
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[5])
if ARGV[3] == 'check' and redis.call('ZCARD', KEYS[2]) > 0 then return 2 end
if redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then
  redis.call('ZREM', KEYS[2], ARGV[4])
  return 1
end
if ARGV[3] == 'change' then redis.call('ZADD', KEYS[2], tonumber(ARGV[5]) + tonumber(ARGV[6]), ARGV[4]) end
return 0`;

export type LockPriority = 'change' | 'check';

export class GatewayLockLostError extends Error {
  override name = 'GatewayLockLostError';
}

export interface HeldLock {
  readonly holder: string;
  /** False once a renewal failed or none was confirmed within the TTL (no Redis round trip). */
  held(): boolean;
  /** Confirms (and extends) ownership in Redis; throws GatewayLockLostError when it is gone. */
  ensureHeld(what: string): Promise<void>;
  release(): Promise<void>;
}

export class GatewayLocks {
  constructor(
    private readonly redis: RedisConnection,
    private readonly prefix: string,
    readonly ttlMs = 30_000,
    /** How long a waiting change keeps checks off the gateway without retrying. */
    private readonly waitEntryMs = 15_000,
  ) {}

  private key(gateway: string): string {
    return `${this.prefix}:lock:${gateway}`;
  }

  private waitingKey(gateway: string): string {
    return `${this.prefix}:lock:${gateway}:changes-waiting`;
  }

  /** Who holds the gateway now (a job id), or null. */
  async holder(gateway: string): Promise<string | null> {
    const value = await this.redis.get(this.key(gateway));
    return value ? value.split('|')[0] ?? null : null;
  }

  /** Changes (apply, roll back) waiting for the gateway, by holder id. */
  async waitingChanges(gateway: string): Promise<string[]> {
    await this.redis.zremrangebyscore(this.waitingKey(gateway), '-inf', String(Date.now()));
    return this.redis.zrange(this.waitingKey(gateway), '0', '-1');
  }

  /** A change that gave up waiting lets checks run again. */
  async stopWaiting(gateway: string, holder: string): Promise<void> {
    await this.redis.zrem(this.waitingKey(gateway), holder);
  }

  /**
   * Try to take the gateway for `holder` (a job id); null when another job has it or, for a
   * check, when a change is waiting for it.
   */
  async tryAcquire(gateway: string, holder: string, priority: LockPriority = 'change'): Promise<HeldLock | null> {
    const token = `${holder}|${randomUUID()}`;
    const key = this.key(gateway);
    const sentAt = Date.now();
    const r = await this.redis.eval(ACQUIRE, 2, key, this.waitingKey(gateway), token, String(this.ttlMs), priority, holder, String(sentAt), String(this.waitEntryMs));
    if (Number(r) !== 1) return null;
    return this.ownership(key, token, holder, sentAt);
  }

  private ownership(key: string, token: string, holder: string, acquiredAt: number): HeldLock {
    let lost = false;
    let released = false;
    // When the last confirmed renewal was SENT: the lock lives at least ttl from then.
    let confirmedAt = acquiredAt;
    const extend = async (): Promise<boolean> => {
      const sentAt = Date.now();
      const r = await this.redis.eval(EXTEND, 1, key, token, String(this.ttlMs));
      if (Number(r) !== 1) {
        lost = true;
        return false;
      }
      if (!lost) confirmedAt = sentAt;
      return !lost;
    };
    const timer = setInterval(() => {
      // A failed call (Redis away) leaves confirmedAt as it was: the lock counts as lost after the TTL.
      void extend().catch(() => undefined);
    }, Math.max(100, Math.floor(this.ttlMs / 3)));
    timer.unref();
    const held = (): boolean => !lost && !released && Date.now() - confirmedAt < this.ttlMs;
    return {
      holder,
      held,
      ensureHeld: async (what: string) => {
        // Past the TTL without a confirmation another job may have taken it: never write then,
        // even if the key happens to be ours again.
        if (!held()) lost = true;
        else if (!(await extend())) lost = true;
        if (lost || !held()) {
          lost = true;
          throw new GatewayLockLostError(`lost the lock of the gateway before ${what} (paused or cut off from Redis longer than ${Math.round(this.ttlMs / 1000)} s, or another job took it): no further change`);
        }
      },
      release: async () => {
        clearInterval(timer);
        released = true;
        await this.redis.eval(RELEASE, 1, key, token);
      },
    };
  }
}
