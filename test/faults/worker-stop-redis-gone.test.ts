/**
 * Defect 18: a worker whose Redis has gone away stops on SIGTERM in bounded time and says
 * what it abandoned. Real `jobs/worker.ts` processes, each on its own real redis-server,
 * each running a check of a gateway that accepts TCP and never says a word (the check waits
 * for the SSH banner for 120 s); the redis-server is killed (SIGKILL), and the worker gets
 * SIGTERM 2, 15 and 45 s later (three workers side by side). Figure: time from SIGTERM to
 * exit, every time within WORKER_STOP_SECONDS (10 s); the log names the abandoned check.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/infra/redis.js';
import { openQueues } from '../../src/queue/producer.js';
import { enqueueCheck } from '../../src/queue/producer.js';
import { waitUntil } from '../support/wait-until.js';
import { spawnWorker, stopWorker, type WorkerProcess } from './worker-fixture.js';

const GATEWAY = 'gw-gone';
const BOUND_MS = 10_000;
const started: { redis: ChildProcess; worker: WorkerProcess | null; dir: string }[] = [];
const sockets: Socket[] = [];
let mute: Server;

/** A "gateway" that accepts the TCP connection and never sends the SSH banner. */
async function muteGateway(): Promise<number> {
  if (mute?.listening) return (mute.address() as { port: number }).port;
  mute = createServer((s) => sockets.push(s));
  await new Promise<void>((r) => mute.listen(0, '127.0.0.1', r));
  return (mute.address() as { port: number }).port;
}

async function inventoryFor(dir: string, port: number): Promise<string> {
  const key = join(dir, 'key');
  await new Promise<void>((res, rej) => spawn('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]).on('exit', (c) => (c === 0 ? res() : rej(new Error(`ssh-keygen ${c}`)))));
  const path = join(dir, 'inventory.yml');
  await writeFile(path, `gateways:\n  ${GATEWAY}:\n    host: 127.0.0.1\n    port: ${port}\n    user: ops\n    identityFile: ${key}\n    hostKey: "SHA256:${'A'.repeat(43)}"\n    connectTimeoutMs: 120000\n`);
  return path;
}

async function startRedis(dir: string): Promise<{ child: ChildProcess; url: string }> {
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  const url = `redis://127.0.0.1:${port}`;
  await waitUntil('redis-server', async () => {
    const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => undefined);
    try {
      await probe.connect();
      return (await probe.ping()) === 'PONG';
    } catch {
      return false;
    } finally {
      probe.disconnect();
    }
  }, 10_000);
  return { child, url };
}

/**
 * One round: worker up with a job, Redis killed, SIGTERM after `delayMs`; how long the worker
 * took to exit. `entry: 'start'`: the same for `conntrack-ops start` (listener + in-process worker).
 */
async function round(delayMs: number, port: number, entry_: 'worker' | 'start' = 'worker'): Promise<{ delayMs: number; exitMs: number; code: number | null; said: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'cto-stop-'));
  const redis = await startRedis(dir);
  const entry: (typeof started)[number] = { redis: redis.child, worker: null, dir };
  started.push(entry);
  const inventory = await inventoryFor(dir, port);
  const listener = entry_ === 'start' ? { SLACK_MODE: 'http', SLACK_SIGNING_SECRET: 'stop-test-signing-secret', PORT: String(await freePort()) } : undefined;
  const worker = spawnWorker({ redisUrl: redis.url, slackApiUrl: 'http://127.0.0.1:9/api/', token: 'xoxb-unused', inventory, entry: entry_, ...(listener ? { env: listener } : {}) });
  entry.worker = worker;
  const startedLine = entry_ === 'start' ? 'conntrack-ops listening' : 'worker started';
  await waitUntil(startedLine, () => worker.log().includes(startedLine), 60_000, { context: () => worker.log() });
  // A job in flight: the check of a gateway that does not answer.
  const conn = new Redis(redis.url, { maxRetriesPerRequest: null });
  const queues = openQueues(conn, '{conntrack-ops}');
  await enqueueCheck(queues, { gateway: GATEWAY, requestedBy: 'U0ALICE01', requestId: `stop-${delayMs}`, origin: { kind: 'cli' } });
  await waitUntil('the check running', () => /check job started|ssh/.test(worker.log()) || sockets.length >= started.length, 15_000).catch(() => undefined);
  await new Promise((r) => setTimeout(r, 1_000));
  await queues.close();
  conn.disconnect();

  redis.child.kill('SIGKILL');
  await new Promise((r) => setTimeout(r, delayMs));
  const termAt = Date.now();
  worker.child.kill('SIGTERM');
  const exit = await Promise.race([worker.exited, new Promise<null>((r) => setTimeout(() => r(null), 60_000))]);
  const exitMs = exit ? exit.at - termAt : Number.POSITIVE_INFINITY;
  const said = worker.log().split('\n').filter((l) => /stopping|abandoned|stopped cleanly|exiting/.test(l)).join('\n');
  return { delayMs, exitMs, code: exit?.code ?? null, said };
}

afterAll(async () => {
  for (const s of sockets) s.destroy();
  mute?.close();
  for (const s of started) {
    if (s.worker) await stopWorker(s.worker, 'SIGKILL');
    if (s.redis.exitCode === null && s.redis.signalCode === null) s.redis.kill('SIGKILL');
    await rm(s.dir, { recursive: true, force: true });
  }
});

describe('SIGTERM to a worker whose Redis is gone', () => {
  it('exits within the bound every time (Redis killed 2, 15, 45 s before the signal) and says what it abandoned', async () => {
    const port = await muteGateway();
    const rounds = await Promise.all([2_000, 15_000, 45_000].map((d) => round(d, port)));
    console.log(`[faults] worker SIGTERM with its Redis killed before: ${rounds.map((r) => `${r.delayMs / 1000} s before -> exit after ${r.exitMs} ms (code ${r.code})`).join('; ')}`);
    console.log(`[faults] what the worker said (Redis killed ${rounds[0]?.delayMs} ms before):\n${rounds[0]?.said}`);
    for (const r of rounds) {
      expect(r.exitMs, r.said).toBeLessThan(BOUND_MS + 3_000);
      expect(r.said).toMatch(/redis.*unreachable/);
      expect(r.said).toMatch(/abandoned 1 job\(s\)/);
      expect(r.said).toContain(`check job check-${GATEWAY}-stop-${r.delayMs} (${GATEWAY})`);
    }
  }, 180_000);
});

describe('SIGTERM to `conntrack-ops start` (listener + in-process worker) whose Redis is gone', () => {
  it('stops the listener and exits within the same bound, naming the abandoned check', async () => {
    const port = await muteGateway();
    const r = await round(5_000, port, 'start');
    console.log(`[faults] conntrack-ops start SIGTERM with its Redis killed 5 s before: exit after ${r.exitMs} ms (code ${r.code})\n${r.said}`);
    expect(r.exitMs, r.said).toBeLessThan(BOUND_MS + 3_000);
    expect(r.said).toMatch(/redis.*unreachable/);
    expect(r.said).toMatch(/abandoned 1 job\(s\)/);
    expect(r.said).toContain(`check job check-${GATEWAY}-stop-${r.delayMs} (${GATEWAY})`);
  }, 120_000);
});
