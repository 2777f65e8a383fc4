/**
 * Redis for the queue and the stores, in one of four topologies (src/config/env.ts):
 *  - REDIS_URL: one Redis (redis://, rediss:// or a unix socket path);
 *  - REDIS_SENTINELS + REDIS_SENTINEL_NAME: the master the Sentinels name, followed
 *    across failovers (ioredis asks the Sentinels again on every reconnect);
 *  - REDIS_CLUSTER_NODES: a Redis Cluster (every key starts with QUEUE_PREFIX, whose hash
 *    tag puts them all in one slot: BullMQ's scripts and ours stay legal);
 *  - none: the embedded private redis-server (embedded-redis.ts).
 * Every connection waits for Redis instead of failing a command (maxRetriesPerRequest:
 * null, which BullMQ's workers require), so a failover pauses the bot, it does not fail it.
 */
import { createServer } from 'node:net';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { Env, HostPort } from '../config/env.js';
import { startEmbeddedRedisServer } from './embedded-redis.js';
import { logger } from './logger.js';

/** A connection the stores and BullMQ use: one Redis (also via Sentinel) or a Cluster. */
export type RedisConnection = Redis | Cluster;

export type RedisTarget =
  | { kind: 'embedded' }
  | { kind: 'url'; url: string }
  | { kind: 'sentinel'; sentinels: HostPort[]; name: string; password?: string; sentinelPassword?: string }
  | { kind: 'cluster'; nodes: HostPort[]; password?: string };

export interface RedisHandle {
  /**
   * For the embedded Redis and REDIS_URL: the URL another process uses as REDIS_URL (it may
   * hold a password: never log it). For Sentinel and Cluster: a description without secrets.
   */
  url: string;
  target: RedisTarget;
  /** A new connection suitable for BullMQ (maxRetriesPerRequest: null). */
  connect(): RedisConnection;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Which Redis the environment names (loadEnv has already refused two at once). */
export function redisTarget(env: Pick<Env, 'REDIS_URL' | 'REDIS_SENTINELS' | 'REDIS_SENTINEL_NAME' | 'REDIS_CLUSTER_NODES' | 'REDIS_PASSWORD' | 'REDIS_SENTINEL_PASSWORD'>): RedisTarget {
  const password = env.REDIS_PASSWORD ? { password: env.REDIS_PASSWORD } : {};
  if (env.REDIS_CLUSTER_NODES.length) return { kind: 'cluster', nodes: env.REDIS_CLUSTER_NODES, ...password };
  if (env.REDIS_SENTINELS.length && env.REDIS_SENTINEL_NAME)
    return {
      kind: 'sentinel',
      sentinels: env.REDIS_SENTINELS,
      name: env.REDIS_SENTINEL_NAME,
      ...password,
      ...(env.REDIS_SENTINEL_PASSWORD ? { sentinelPassword: env.REDIS_SENTINEL_PASSWORD } : {}),
    };
  if (env.REDIS_URL) return { kind: 'url', url: env.REDIS_URL };
  return { kind: 'embedded' };
}

/** Whether this process shares a Redis with others (a worker needs one), as opposed to the embedded one. */
export function hasSharedRedis(env: Parameters<typeof redisTarget>[0]): boolean {
  return redisTarget(env).kind !== 'embedded';
}

const hostList = (nodes: HostPort[]): string => nodes.map((n) => `${n.host}:${n.port}`).join(',');

/** How each topology's connection retries: forever, briefly spaced (a failover takes seconds). */
const RECONNECT: Pick<RedisOptions, 'maxRetriesPerRequest' | 'enableReadyCheck' | 'retryStrategy'> = {
  maxRetriesPerRequest: null,
  enableReadyCheck: true,
  retryStrategy: (times: number) => Math.min(100 + times * 100, 2_000),
};

function withErrorListener<T extends RedisConnection>(conn: T): T {
  // ioredis reconnects by itself; without a listener every failed attempt is an "Unhandled error event".
  conn.on('error', (err: Error) => logger.debug({ err: err.message }, 'redis connection error'));
  return conn;
}

function connectionFactory(target: Exclude<RedisTarget, { kind: 'embedded' }>): () => RedisConnection {
  switch (target.kind) {
    case 'url':
      return () => withErrorListener(new Redis(target.url, RECONNECT));
    case 'sentinel':
      return () =>
        withErrorListener(
          new Redis({
            ...RECONNECT,
            sentinels: target.sentinels,
            name: target.name,
            role: 'master',
            ...(target.password ? { password: target.password } : {}),
            ...(target.sentinelPassword ? { sentinelPassword: target.sentinelPassword } : {}),
            // No failoverDetector: on +switch-master it drops the connection with commands in
            // flight ("Connection is closed."), which failed an apply job mid-run in the fault
            // suite; the dead primary's socket closes anyway and ioredis asks the Sentinels again.
            sentinelRetryStrategy: (times: number) => Math.min(100 + times * 100, 2_000),
          }),
        );
    case 'cluster': {
      const options: ClusterOptions = {
        redisOptions: { ...(target.password ? { password: target.password } : {}), maxRetriesPerRequest: null },
        enableReadyCheck: true,
        // A killed primary: commands are retried (slots re-read) until its replica is promoted.
        retryDelayOnFailover: 300,
        retryDelayOnClusterDown: 300,
        retryDelayOnTryAgain: 300,
        maxRedirections: 100,
        slotsRefreshInterval: 2_000,
        clusterRetryStrategy: (times: number) => Math.min(100 + times * 100, 2_000),
      };
      return () => withErrorListener(new Cluster(target.nodes, options));
    }
  }
}

function describeTarget(target: Exclude<RedisTarget, { kind: 'embedded' }>): string {
  switch (target.kind) {
    case 'url':
      return target.url;
    case 'sentinel':
      return `sentinel ${target.name} via ${hostList(target.sentinels)}`;
    case 'cluster':
      return `cluster via ${hostList(target.nodes)}`;
  }
}

export async function startEmbeddedRedis(): Promise<RedisHandle> {
  const server = await startEmbeddedRedisServer();
  const target = { kind: 'url', url: server.url } as const;
  return { url: server.url, target: { kind: 'embedded' }, connect: connectionFactory(target), stop: () => server.stop() };
}

/** The Redis `target` names (a REDIS_URL string or undefined for the embedded one, as before). */
export async function openRedis(target: RedisTarget | string | undefined): Promise<RedisHandle> {
  const t: RedisTarget = typeof target === 'string' ? { kind: 'url', url: target } : (target ?? { kind: 'embedded' });
  if (t.kind === 'embedded') return startEmbeddedRedis();
  return { url: describeTarget(t), target: t, connect: connectionFactory(t), stop: async () => undefined };
}
