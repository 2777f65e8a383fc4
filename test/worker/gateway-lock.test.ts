/**
 * The gateway lock on a real Redis: checks yield to a waiting change, a waiting entry expires
 * when its job stops retrying, and ownership is lost (ensureHeld throws) when the key was
 * taken over or when this process was blocked past the TTL, even if nobody took it yet.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedRedis, type RedisConnection, type RedisHandle } from '../../src/infra/redis.js';
import { GatewayLockLostError, GatewayLocks } from '../../src/store/gateway-lock.js';

let handle: RedisHandle;
let redis: RedisConnection;

beforeAll(async () => {
  handle = await startEmbeddedRedis();
  redis = handle.connect();
});

afterAll(async () => {
  redis?.disconnect();
  await handle?.stop();
});

const locksFor = (ttlMs = 1_000, waitEntryMs = 500): GatewayLocks => new GatewayLocks(redis, `{lock-test-${randomUUID().slice(0, 8)}}`, ttlMs, waitEntryMs);

/** Blocks this process's event loop (no timer, no renewal) like a SIGSTOP would. */
function blockFor(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

describe('GatewayLocks', () => {
  it('a change that found the gateway busy keeps checks off it until it gets it', async () => {
    const locks = locksFor(5_000, 2_000);
    const check = await locks.tryAcquire('gw', 'check-1', 'check');
    expect(check).not.toBeNull();
    expect(await locks.tryAcquire('gw', 'apply-p', 'change')).toBeNull();
    expect(await locks.waitingChanges('gw')).toEqual(['apply-p']);
    await check?.release();
    // Free, but a change waits: the next check is refused, the change gets it.
    expect(await locks.tryAcquire('gw', 'check-2', 'check')).toBeNull();
    const apply = await locks.tryAcquire('gw', 'apply-p', 'change');
    expect(apply).not.toBeNull();
    expect(await locks.waitingChanges('gw')).toEqual([]);
    await apply?.release();
    const next = await locks.tryAcquire('gw', 'check-2', 'check');
    expect(next).not.toBeNull();
    await next?.release();
  });

  it('a waiting change that stops retrying stops blocking checks', async () => {
    const locks = locksFor(5_000, 300);
    const holder = await locks.tryAcquire('gw', 'check-1', 'check');
    expect(await locks.tryAcquire('gw', 'apply-dead', 'change')).toBeNull();
    await holder?.release();
    expect(await locks.tryAcquire('gw', 'check-2', 'check')).toBeNull();
    await new Promise((r) => setTimeout(r, 400));
    const later = await locks.tryAcquire('gw', 'check-2', 'check');
    expect(later).not.toBeNull();
    await later?.release();
  });

  it('ownership: renewals keep it; a takeover or a block past the TTL loses it', async () => {
    const locks = locksFor(600);
    const lock = await locks.tryAcquire('gw', 'apply-a', 'change');
    expect(lock).not.toBeNull();
    await new Promise((r) => setTimeout(r, 1_500)); // renewed every 200 ms
    await expect(lock!.ensureHeld('step 1')).resolves.toBeUndefined();

    blockFor(800); // past the TTL with no renewal: nobody took it, yet it is not ours any more
    expect(lock!.held()).toBe(false);
    await expect(lock!.ensureHeld('step 2')).rejects.toBeInstanceOf(GatewayLockLostError);
    await lock!.release();

    const a = await locks.tryAcquire('gw', 'apply-a', 'change');
    blockFor(800);
    const b = await locks.tryAcquire('gw', 'apply-b', 'change');
    expect(b).not.toBeNull();
    await expect(a!.ensureHeld('step 2')).rejects.toThrow(/lost the lock of the gateway before step 2/);
    expect(await locks.holder('gw')).toBe('apply-b');
    await a!.release(); // releases nothing of b's
    expect(await locks.holder('gw')).toBe('apply-b');
    await b!.release();
  });
});
