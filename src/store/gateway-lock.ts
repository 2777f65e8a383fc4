/**
 * At most one running job per gateway, across every worker on every machine:
 * a Redis lock (SET NX PX) owned by a random token, renewed while the job runs.
 */
import { randomUUID } from 'node:crypto';
import type { RedisConnection } from '../infra/redis.js';

const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;
const EXTEND = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`;

export interface HeldLock {
  readonly holder: string;
  release(): Promise<void>;
}

export class GatewayLocks {
  constructor(
    private readonly redis: RedisConnection,
    private readonly prefix: string,
    private readonly ttlMs = 60_000,
  ) {}

  private key(gateway: string): string {
    return `${this.prefix}:lock:${gateway}`;
  }

  /** Who holds the gateway now (a job id), or null. */
  async holder(gateway: string): Promise<string | null> {
    const value = await this.redis.get(this.key(gateway));
    return value ? value.split('|')[0] ?? null : null;
  }

  /** Try to take the gateway for `holder` (a job id); null when another job has it. */
  async tryAcquire(gateway: string, holder: string): Promise<HeldLock | null> {
    const token = `${holder}|${randomUUID()}`;
    const key = this.key(gateway);
    const ok = await this.redis.set(key, token, 'PX', this.ttlMs, 'NX');
    if (ok !== 'OK') return null;
    const timer = setInterval(() => {
      void this.redis.eval(EXTEND, 1, key, token, String(this.ttlMs)).catch(() => undefined);
    }, Math.floor(this.ttlMs / 3));
    timer.unref();
    return {
      holder,
      release: async () => {
        clearInterval(timer);
        await this.redis.eval(RELEASE, 1, key, token);
      },
    };
  }
}
