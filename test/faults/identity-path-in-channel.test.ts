/**
 * Fault: a gateway whose identity file cannot be read (defect 19). The real listener's
 * workers (in this process, real Redis, BullMQ) run a check queued from Slack; the SSH
 * key path is local detail: the channel reads "the identity file of <gw> cannot be
 * read", the job's failed reason (logs, terminal) keeps the path.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRedis, type RedisHandle } from '../../src/infra/redis.js';
import { enqueueCheck } from '../../src/queue/producer.js';
import { openRuntime, type Runtime } from '../../src/runtime.js';
import type { RunningWorkers } from '../../src/worker/start.js';
import { listenerEnv, startSlackWorkers } from '../metrics/listener.js';
import { writeUnreachableInventory } from './inventory-file.js';
import { startSlackApi, type SlackApiServer } from '../support/slack-api/index.js';
import { waitUntil } from '../support/wait-until.js';

const CHANNEL = 'C0OPS0001';
const GW = 'gw-3';
let slack: SlackApiServer;
let redis: RedisHandle;
let dir: string;
let keyPath: string;
let rt: Runtime;
let workers: RunningWorkers;

beforeAll(async () => {
  slack = await startSlackApi({ channels: [{ id: CHANNEL, name: 'ops' }] });
  redis = await openRedis(undefined);
  dir = await mkdtemp(join(tmpdir(), 'cto-idpath-'));
  keyPath = join(dir, 'secret-keys', 'gw-3-ed25519');
  const inventory = await writeUnreachableInventory(dir, GW, keyPath);
  const env = listenerEnv({ slack, redisUrl: redis.url, inventory, incidentChannel: 'C0INCIDENT1' });
  rt = await openRuntime(env);
  workers = startSlackWorkers(rt, env);
}, 60_000);

afterAll(async () => {
  await workers?.close();
  await rt?.close();
  await redis?.stop();
  await slack?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('an unreadable identity file', () => {
  it('the channel is told whose identity file cannot be read, never its path; the failed reason keeps the path', async () => {
    const jobId = await enqueueCheck(rt.queues, { gateway: GW, requestedBy: 'U0ALICE01', requestId: `idpath-${Date.now()}`, origin: { kind: 'slack', channel: CHANNEL } });
    const message = await waitUntil('the failure in the channel', () => slack.messages(CHANNEL).find((m) => m.text.startsWith(`Check of ${GW} failed`)), 30_000);
    expect(message.text).toContain(`the identity file of ${GW} cannot be read`);
    const everything = slack.calls().map((c) => JSON.stringify(c.args)).join('\n');
    expect(everything).toContain(`the identity file of ${GW} cannot be read (ENOENT)`);
    expect(everything).not.toContain(keyPath);
    expect(everything).not.toContain('secret-keys');
    const job = await waitUntil('the job failed', async () => {
      const j = await rt.queues.check.getJob(jobId);
      return j && (await j.isFailed()) ? j : null;
    }, 30_000);
    expect(job.failedReason).toContain(keyPath);
  }, 60_000);
});
