/**
 * The Redis settings at the boundary (src/config/env.ts, zod): one topology at a time, a
 * Sentinel set needs its master's name, a Cluster needs a hash tag in QUEUE_PREFIX (or
 * BullMQ's scripts fail with CROSSSLOT), seed lists are host:port; passwords never logged.
 */
import { describe, expect, it } from 'vitest';
import { loadEnv, redactedEnv } from '../../src/config/env.js';
import { redisTarget } from '../../src/infra/redis.js';

const refusal = (vars: Record<string, string>): string => {
  try {
    loadEnv(vars);
  } catch (err) {
    return (err as Error).message;
  }
  return 'accepted';
};

describe('Redis settings', () => {
  it('Sentinel: host:port list and the master name become a sentinel target', () => {
    const env = loadEnv({ REDIS_SENTINELS: '10.0.0.1:26379, sentinel-b.example:26380,[fd00::3]:26379', REDIS_SENTINEL_NAME: 'cto-main', REDIS_PASSWORD: 'data-secret', REDIS_SENTINEL_PASSWORD: 'sentinel-secret' });
    expect(redisTarget(env)).toEqual({
      kind: 'sentinel',
      name: 'cto-main',
      sentinels: [
        { host: '10.0.0.1', port: 26379 },
        { host: 'sentinel-b.example', port: 26380 },
        { host: 'fd00::3', port: 26379 },
      ],
      password: 'data-secret',
      sentinelPassword: 'sentinel-secret',
    });
    const logged = JSON.stringify(redactedEnv(env));
    expect(logged).not.toContain('data-secret');
    expect(logged).not.toContain('sentinel-secret');
  });

  it('Cluster: seed nodes with the default prefix {conntrack-ops}', () => {
    const env = loadEnv({ REDIS_CLUSTER_NODES: '127.0.0.1:7000,127.0.0.1:7001' });
    expect(redisTarget(env)).toEqual({ kind: 'cluster', nodes: [{ host: '127.0.0.1', port: 7000 }, { host: '127.0.0.1', port: 7001 }] });
    expect(env.QUEUE_PREFIX).toBe('{conntrack-ops}');
  });

  it('nothing set: the embedded Redis; REDIS_URL: that one Redis', () => {
    expect(redisTarget(loadEnv({}))).toEqual({ kind: 'embedded' });
    expect(redisTarget(loadEnv({ REDIS_URL: 'redis://:pw@10.0.0.9:6379/2' }))).toEqual({ kind: 'url', url: 'redis://:pw@10.0.0.9:6379/2' });
  });

  it('refuses what would break at run time, naming the variable', () => {
    expect(refusal({ REDIS_CLUSTER_NODES: '127.0.0.1:7000', QUEUE_PREFIX: 'conntrack-ops' })).toMatch(/QUEUE_PREFIX: on a Redis Cluster QUEUE_PREFIX must hold a hash tag/);
    expect(refusal({ REDIS_CLUSTER_NODES: '127.0.0.1:7000', QUEUE_PREFIX: 'a{}b' })).toMatch(/hash tag/);
    expect(refusal({ REDIS_CLUSTER_NODES: '127.0.0.1:7000', QUEUE_PREFIX: 'app:{cto}' })).toBe('accepted');
    expect(refusal({ REDIS_SENTINELS: '127.0.0.1:26379' })).toMatch(/REDIS_SENTINEL_NAME: REDIS_SENTINELS needs REDIS_SENTINEL_NAME/);
    expect(refusal({ REDIS_SENTINEL_NAME: 'm' })).toMatch(/REDIS_SENTINELS: REDIS_SENTINEL_NAME without REDIS_SENTINELS/);
    expect(refusal({ REDIS_URL: 'redis://127.0.0.1:6379', REDIS_CLUSTER_NODES: '127.0.0.1:7000' })).toMatch(/set one Redis topology, not REDIS_URL and REDIS_CLUSTER_NODES/);
    expect(refusal({ REDIS_CLUSTER_NODES: '127.0.0.1' })).toMatch(/REDIS_CLUSTER_NODES.*host:port/);
    expect(refusal({ REDIS_CLUSTER_NODES: '127.0.0.1:70000' })).toMatch(/port out of range/);
    expect(refusal({ REDIS_SENTINELS: 'a b:1', REDIS_SENTINEL_NAME: 'm' })).toMatch(/host:port/);
    expect(refusal({ REDIS_SENTINELS: '127.0.0.1:26379', REDIS_SENTINEL_NAME: 'm; FLUSHALL' })).toMatch(/Sentinel master name/);
  });
});
