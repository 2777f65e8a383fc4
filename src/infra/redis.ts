/**
 * Redis for the queue: REDIS_URL when given (single node, Sentinel or Cluster via
 * ioredis), otherwise an embedded `redis-server` on a free port that lives as long
 * as this process (local demo and tests).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { logger } from './logger.js';

export interface RedisHandle {
  url: string;
  /** A new connection suitable for BullMQ (maxRetriesPerRequest: null). */
  connect(): Redis;
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

function connectionFactory(url: string): () => Redis {
  return () => {
    const conn = new Redis(url, { maxRetriesPerRequest: null, enableReadyCheck: true, lazyConnect: false });
    // ioredis reconnects by itself; without a listener every failed attempt is an "Unhandled error event".
    conn.on('error', (err: Error) => logger.debug({ err: err.message }, 'redis connection error'));
    return conn;
  };
}

async function waitForPing(url: string, child: ChildProcess, deadlineMs: number): Promise<void> {
  const until = Date.now() + deadlineMs;
  let lastError: unknown;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with code ${child.exitCode}`);
    const probe = new Redis(url, { maxRetriesPerRequest: 0, lazyConnect: true, retryStrategy: () => null });
    probe.on('error', () => undefined); // reported through connect()'s rejection
    try {
      await probe.connect();
      if ((await probe.ping()) === 'PONG') return;
    } catch (err) {
      lastError = err;
    } finally {
      probe.disconnect();
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`redis-server did not answer within ${deadlineMs} ms: ${String(lastError)}`);
}

export async function startEmbeddedRedis(): Promise<RedisHandle> {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'conntrack-ops-redis-'));
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no', '--loglevel', 'warning'],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const spawned = new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (err) =>
      reject(new Error(`cannot start redis-server (${err.message}); install it (apt-get install redis-server) or set REDIS_URL`)),
    );
  });
  await spawned;
  const url = `redis://127.0.0.1:${port}`;
  const stopChild = (): void => {
    if (child.exitCode === null) child.kill('SIGTERM');
  };
  process.once('exit', stopChild);
  await waitForPing(url, child, 10_000);
  return {
    url,
    connect: connectionFactory(url),
    async stop() {
      process.removeListener('exit', stopChild);
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export async function openRedis(redisUrl: string | undefined): Promise<RedisHandle> {
  if (!redisUrl) return startEmbeddedRedis();
  return { url: redisUrl, connect: connectionFactory(redisUrl), stop: async () => undefined };
}
