/**
 * Fault: Redis dies under a running listener (defect 19). A real redis-server, started
 * here so it can be killed with SIGKILL; the bot's real HTTP listener (Bolt, our routes).
 * /healthz must answer 503 within a bounded time (ioredis would queue the PING and retry
 * forever) with a generic body: the endpoint is public, the Redis error is for the logs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { App } from '@slack/bolt';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/infra/redis.js';
import { openRuntime, type Runtime } from '../../src/runtime.js';
import { listenerEnv, startHttpListener } from '../metrics/listener.js';
import { writeUnreachableInventory } from './inventory-file.js';
import { startSlackApi, type SlackApiServer } from '../support/slack-api/index.js';
import { waitUntil } from '../support/wait-until.js';

let redisServer: ChildProcess;
let redisPort: number;
let slack: SlackApiServer;
let dir: string;
let rt: Runtime;
let app: App;
let base: string;

async function healthz(): Promise<{ status: number; body: string; ms: number }> {
  const t0 = performance.now();
  const res = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(20_000) });
  const body = await res.text();
  return { status: res.status, body, ms: performance.now() - t0 };
}

beforeAll(async () => {
  redisPort = await freePort();
  redisServer = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const probe = new Redis({ port: redisPort, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => 100 });
  await waitUntil('redis-server up', async () => (await probe.ping().catch(() => '')) === 'PONG', 10_000);
  probe.disconnect();
  slack = await startSlackApi({});
  dir = await mkdtemp(join(tmpdir(), 'cto-healthz-'));
  const inventory = await writeUnreachableInventory(dir, 'gw-1');
  const env = listenerEnv({ slack, redisUrl: `redis://127.0.0.1:${redisPort}`, inventory, incidentChannel: 'C0INCIDENT1' });
  rt = await openRuntime(env);
  ({ app, base } = await startHttpListener(rt, env));
}, 60_000);

afterAll(async () => {
  await app?.stop().catch(() => undefined);
  // Redis is gone: closing the runtime's connections may wait on it, so do not wait long.
  await Promise.race([rt?.close().catch(() => undefined), new Promise((r) => setTimeout(r, 3_000))]);
  redisServer?.kill('SIGKILL');
  await slack?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('/healthz during a Redis outage', () => {
  it('ok while Redis is up; 503 in under 3 s with a generic body once redis-server is killed, again and again', async () => {
    const up = await healthz();
    expect(up).toMatchObject({ status: 200, body: 'ok\n' });

    const exited = new Promise((r) => redisServer.once('exit', r));
    redisServer.kill('SIGKILL');
    await exited;
    for (let i = 0; i < 3; i++) {
      const down = await healthz();
      expect(down.status).toBe(503);
      expect(down.ms).toBeLessThan(3_000);
      expect(down.body).toBe('redis unavailable\n');
      expect(down.body).not.toMatch(/ECONNREFUSED|127\.0\.0\.1|connect|Connection|status/);
    }
  }, 60_000);
});
