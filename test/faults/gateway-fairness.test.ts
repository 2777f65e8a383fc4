/**
 * Defect 5: the gateway lock is fair, with priority. Two real worker processes, real Redis,
 * a lab gateway over real sshd, the local Slack API server.
 *
 * 200 checks of one gateway are queued at once by 200 requesters, and a plan of that gateway
 * is approved while the first check runs. Sampled every 20 ms: the gateway's lock holder and
 * the SSH connections established to the gateway's sshd (its namespace's TCP table: each job
 * opens its own connection, the gateway is not watched). Figures: maximum concurrent jobs on
 * the gateway (1), check runs started between the approval and the apply (0), the apply's
 * start delay after the approval (ms), check runs for 200 requests, findings messages (200).
 *
 * A change that gives up waiting (the gateway held for the whole wait) leaves the plan where
 * the user can act (expired: check again) and says so in the channel.
 */
import { readFile } from 'node:fs/promises';
import { Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../lab/exec.js';
import { approvePlan, requestRollback } from '../../src/approvals/decisions.js';
import { ApplyRecordStore } from '../../src/apply/store.js';
import type { ApplyOutcome } from '../../src/apply/model.js';
import { loadEnv } from '../../src/config/env.js';
import { freshSessions } from '../../src/gateway/session-pool.js';
import { QUEUES, type ApplyJob, type CheckResult } from '../../src/queue/jobs.js';
import { enqueueCheck } from '../../src/queue/producer.js';
import { openRuntime } from '../../src/runtime.js';
import { slackPublishers } from '../../src/slack/publish/index.js';
import { createApplyProcessor } from '../../src/worker/apply-processor.js';
import { sysctlStep } from '../apply/helpers/harness.js';
import { waitUntil } from '../support/wait-until.js';
import { BOB, CHANNEL, bodyOf, openWorkerLab, spawnWorker, stopWorker, type WorkerLab, type WorkerProcess } from './worker-fixture.js';

const TW = 'nf_conntrack_tcp_timeout_time_wait';
const CHECKS = 200;

let w: WorkerLab;
const workers: WorkerProcess[] = [];
const logs = (): string => workers.map((p, i) => `--- worker ${i} ---\n${p.log().slice(-2500)}`).join('\n');

async function netnsPids(ns: string): Promise<number[]> {
  const out = (await run('ip', ['netns', 'pids', ns], { check: false })).stdout;
  return out.split('\n').map((l) => Number(l.trim())).filter((n) => Number.isInteger(n) && n > 0);
}

/** SSH connections established to the gateway's sshd, from its namespace's TCP tables (/proc/<pid>/net/tcp*). */
function sshConnections(pid: number, port: number): () => Promise<number> {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  return async () => {
    let n = 0;
    for (const file of ['tcp', 'tcp6']) {
      const text = await readFile(`/proc/${pid}/net/${file}`, 'utf8').catch(() => '');
      for (const line of text.split('\n').slice(1)) {
        const cols = line.trim().split(/\s+/);
        if (cols.length > 3 && cols[1]?.endsWith(`:${hexPort}`) && cols[3] === '01') n += 1;
      }
    }
    return n;
  };
}

beforeAll(async () => {
  w = await openWorkerLab();
  for (let i = 0; i < 2; i++) workers.push(spawnWorker({ redisUrl: w.redis.url, slackApiUrl: w.slack.apiUrl, token: w.slack.token, inventory: w.inventoryPath, env: { LOG_LEVEL: 'warn' } }));
  await new Promise((r) => setTimeout(r, 5_000));
}, 240_000);

afterAll(async () => {
  for (const p of workers) await stopWorker(p, 'SIGKILL');
  await w?.close();
});

describe('200 queued checks and one approval on one gateway', () => {
  it('one job at a time on the gateway, the apply goes first, duplicate checks merged', async () => {
    const original = await w.sysctl(TW);
    const plan = await w.slackPlan([sysctlStep('tw', TW, original, 44)]);
    const gwPid = (await netnsPids(w.lab.namespaces.gateway))[0];
    expect(gwPid).toBeTruthy();
    const ssh = sshConnections(gwPid!, w.lab.inventoryEntry.port ?? 22);

    // Sampler: the lock holder and the SSH connections, every 20 ms.
    const samples: { at: number; holder: string | null; ssh: number }[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const [holder, n] = await Promise.all([w.rt.locks.holder(w.lab.name), ssh()]);
        samples.push({ at: Date.now(), holder, ssh: n });
        await new Promise((r) => setTimeout(r, 20));
      }
    })();

    const ids = await Promise.all(
      Array.from({ length: CHECKS }, (_, i) =>
        enqueueCheck(w.rt.queues, { gateway: w.lab.name, requestedBy: `U0REQ${String(i).padStart(4, '0')}`, requestId: `fair-${i}`, origin: { kind: 'slack', channel: CHANNEL } }),
      ),
    );
    const firstRun = await waitUntil(
      'the first check run',
      async () => {
        const holder = await w.rt.locks.holder(w.lab.name);
        return holder?.startsWith('check-') ? holder : null;
      },
      60_000,
      { everyMs: 10, context: logs },
    );
    // New checks keep arriving (every 100 ms) while the apply waits: they cannot be merged into
    // the run already going, so without priority they would take the gateway before the apply.
    let arriving = true;
    const late: string[] = [];
    const arrivals = (async () => {
      for (let i = 0; arriving; i++) {
        late.push(await enqueueCheck(w.rt.queues, { gateway: w.lab.name, requestedBy: `U0LATE${String(i).padStart(4, '0')}`, requestId: `late-${i}`, origin: { kind: 'slack', channel: CHANNEL } }));
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const approvedAt = Date.now();
    const approved = await approvePlan(w.rt, w.rules, plan.planId, BOB);
    expect(approved.ok).toBe(true);
    await waitUntil('the apply', async () => (await w.rt.plans.get(plan.planId))?.status === 'applied', 120_000, { context: logs });
    await new Promise((r) => setTimeout(r, 1_000));
    arriving = false;
    await arrivals;
    ids.push(...late);
    await waitUntil(
      'every check answered',
      async () => ((await w.rt.queues.check.getJobCounts('completed')).completed ?? 0) >= ids.length,
      240_000,
      { everyMs: 500, context: logs },
    );
    sampling = false;
    await sampler;

    const maxSsh = Math.max(...samples.map((s) => s.ssh));
    const applySample = samples.find((s) => s.holder === `apply-${plan.planId}`);
    expect(applySample).toBeTruthy();
    const startDelayMs = applySample!.at - approvedAt;
    const checksBeforeApply = new Set(samples.filter((s) => s.at > approvedAt && s.at < applySample!.at && s.holder?.startsWith('check-')).map((s) => s.holder));
    // The run that held the gateway at the approval may finish; no other check may start before the apply.
    checksBeforeApply.delete(firstRun);
    const results = (await Promise.all(ids.map(async (id) => (await w.rt.queues.check.getJob(id))?.returnvalue as CheckResult | undefined))).filter((r): r is CheckResult => r !== undefined);
    const runs = results.filter((r) => r.sharedRunOf === undefined).length;
    // Every requester's findings: the message stored with their plan, present in the channel.
    const shown = new Set(w.slack.messages(CHANNEL).map((m) => m.ts));
    const plans = await Promise.all(results.map((r) => w.rt.plans.get(r.planId)));
    const findingsMessages = plans.filter((p) => p?.message && shown.has(p.message.ts) && /conntrack|findings|entries/i.test(bodyOf(w.slack.messages(CHANNEL).find((m) => m.ts === p.message?.ts)!))).length;
    const holders = new Set(samples.map((s) => s.holder).filter(Boolean));
    console.log(
      `[faults] ${CHECKS} queued checks + 1 approval on one gateway: max concurrent SSH connections (jobs) on the gateway = ${maxSsh} ` +
        `(${samples.length} samples, ${holders.size} distinct lock holders), check runs started between approval and apply = ${checksBeforeApply.size}, ` +
        `apply start delay after approval = ${startDelayMs} ms, check runs for ${results.length} requests (${CHECKS} at once + ${late.length} arriving every 100 ms) = ${runs}, findings messages = ${findingsMessages}`,
    );
    expect(maxSsh).toBe(1);
    expect(checksBeforeApply.size).toBe(0);
    expect(results).toHaveLength(ids.length);
    expect(new Set(results.map((r) => r.planId)).size).toBe(ids.length); // each requester has a plan of their own
    expect(findingsMessages).toBe(ids.length);
    expect(runs).toBeLessThan(ids.length / 4);
    // Every requester's check is in the gateway's history, also when another run answered it:
    // one entry per request, each naming the requester's own plan (the recent list keeps the
    // newest 200 records, the approval and the apply among them; before: one per run, 3-7).
    const checked = (await w.rt.history.list(w.lab.name, 0, 200)).filter((h) => h.event === 'check');
    expect(checked.length).toBeGreaterThanOrEqual(Math.min(200, results.length) - 5);
    const requesterOf = new Map(plans.map((p) => [p?.planId, p?.requestedBy]));
    for (const h of checked) expect(requesterOf.get(h.planId ?? ''), JSON.stringify(h)).toBe(h.actor);
    expect(await w.sysctl(TW)).toBe(44);
    const records = new ApplyRecordStore(w.rt.redis, w.rt.env.QUEUE_PREFIX);
    expect(await records.runs(plan.planId, 'apply')).toBe(1);
    expect((await requestRollback(w.rt, w.rules, plan.planId, BOB)).ok).toBe(true);
    await waitUntil('the roll back', async () => (await w.rt.plans.get(plan.planId))?.status === 'rolled-back', 60_000, { context: logs });
    expect(await w.sysctl(TW)).toBe(original);
  }, 420_000);
});

describe('a change that gives up waiting', () => {
  it('the plan expires (check again) and the channel is told; checks may run again', async () => {
    // Its own queue prefix: the apply processor under test, in this process, with a 3 s wait.
    const env = loadEnv({ REDIS_URL: w.redis.url, QUEUE_PREFIX: '{cto-giveup}', INVENTORY: w.inventoryPath, SLACK_BOT_TOKEN: w.slack.token, SLACK_API_URL: w.slack.apiUrl, LOG_LEVEL: 'error', PATH: process.env['PATH'] });
    const rt = await openRuntime(env);
    const publishers = slackPublishers(rt, env);
    const connection = rt.redisHandle.connect();
    const worker = new Worker<ApplyJob, ApplyOutcome>(
      QUEUES.apply,
      createApplyProcessor({ inventory: rt.inventory, sessions: freshSessions(), plans: rt.plans, history: rt.history, locks: rt.locks, redis: rt.redis, prefix: env.QUEUE_PREFIX, publisherFor: publishers.apply, busyRetryMs: 500, busyGiveUpMs: 3_000 }),
      { connection, prefix: env.QUEUE_PREFIX, concurrency: 1, maxStalledCount: 0 },
    );
    // Another job holds the gateway for the whole wait.
    const blocker = await rt.locks.tryAcquire(w.lab.name, 'check-blocker', 'check');
    expect(blocker).not.toBeNull();
    try {
      const plan = await rt.plans.create({ report: { ...w.report, plan: { steps: [sysctlStep('tw', TW, await w.sysctl(TW), 45)], notes: [] } }, requestedBy: 'U0ALICE01', origin: { kind: 'slack', channel: CHANNEL }, ttlMinutes: 30 });
      const posted = await w.writer.post({ channel: CHANNEL }, { text: `plan ${plan.planId}`, blocks: [] });
      await rt.plans.setMessage(plan.planId, posted);
      expect((await approvePlan(rt, w.rules, plan.planId, BOB)).ok).toBe(true);
      await waitUntil('the apply waiting', async () => (await rt.locks.waitingChanges(w.lab.name)).includes(`apply-${plan.planId}`), 10_000);
      // While it waits, checks yield.
      expect(await rt.locks.tryAcquire(w.lab.name, 'check-other', 'check')).toBeNull();
      const told = await waitUntil('the give-up message', () => w.slack.messages(CHANNEL).find((m) => m.ts === posted.ts && /Gave up after waiting/.test(bodyOf(m))), 30_000);
      expect(bodyOf(told)).toMatch(/Nothing was changed/);
      expect(bodyOf(told)).toContain(`/conntrack check ${w.lab.name}`);
      expect((await rt.plans.get(plan.planId))?.status).toBe('expired');
      expect((await rt.history.list(w.lab.name)).some((r) => r.event === 'expired' && r.planId === plan.planId)).toBe(true);
      expect(await rt.locks.waitingChanges(w.lab.name)).toEqual([]);
      await blocker?.release();
      const next = await rt.locks.tryAcquire(w.lab.name, 'check-after', 'check');
      expect(next).not.toBeNull();
      await next?.release();
    } finally {
      await blocker?.release();
      await worker.close();
      connection.disconnect();
      await rt.close();
    }
  }, 60_000);
});
