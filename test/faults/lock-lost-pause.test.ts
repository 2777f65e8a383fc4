/**
 * Defect 8: a worker paused (SIGSTOP) past the gateway lock's TTL while another worker takes
 * the gateway must not write when it resumes. Two real worker processes (lock TTL 3 s), real
 * Redis, a lab gateway over real sshd, the local Slack API server.
 *
 * Plan A is applied by worker 1; while the gateway is slow on its first write (GatewayHolds)
 * worker 1 is paused with SIGSTOP and the write is let through (it was sent while A owned the
 * gateway). 5 s later plan B (another key) is approved and worker 2 takes the gateway (its
 * write held in turn); SIGCONT worker 1. The engine's write guard asks Redis before A's next
 * step: the lock is gone, A stops without writing, A's plan is `apply-interrupted` with a
 * message saying so; B completes.
 *
 * Figure: gateway writes by the resumed worker = 0.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approvePlan } from '../../src/approvals/decisions.js';
import { ApplyRecordStore } from '../../src/apply/store.js';
import { sysctlStep } from '../apply/helpers/harness.js';
import { waitUntil } from '../support/wait-until.js';
import { BOB, CHANNEL, bodyOf, openWorkerLab, pidRunning, spawnWorker, stopWorker, type WorkerLab, type WorkerProcess } from './worker-fixture.js';

const TW = 'nf_conntrack_tcp_timeout_time_wait';
const CW = 'nf_conntrack_tcp_timeout_close_wait';
const FW = 'nf_conntrack_tcp_timeout_fin_wait';
const UDP = 'nf_conntrack_udp_timeout';

let w: WorkerLab;
const workers: WorkerProcess[] = [];
const logs = (): string => workers.map((p, i) => `--- worker ${i} (pid ${p.child.pid}) ---\n${p.log().slice(-3000)}`).join('\n');

beforeAll(async () => {
  w = await openWorkerLab();
  for (let i = 0; i < 2; i++) {
    workers.push(spawnWorker({ redisUrl: w.redis.url, slackApiUrl: w.slack.apiUrl, token: w.slack.token, inventory: w.inventoryPath, env: { GATEWAY_LOCK_TTL_SECONDS: '3' } }));
  }
  await waitUntil('both workers started', () => workers.every((p) => p.log().includes('worker started')), 60_000, { context: logs });
}, 240_000);

afterAll(async () => {
  for (const p of workers) if (p.child.pid) process.kill(p.child.pid, 'SIGCONT');
  for (const key of [TW, UDP]) await w?.holds.release(key);
  for (const p of workers) await stopWorker(p, 'SIGKILL');
  await w?.close();
});

describe('a worker paused past the lock TTL while another takes the gateway', () => {
  it('does not write when it resumes; its plan is apply-interrupted and the channel is told', async () => {
    const original = { tw: await w.sysctl(TW), cw: await w.sysctl(CW), fw: await w.sysctl(FW), udp: await w.sysctl(UDP) };
    const a = await w.slackPlan([sysctlStep('tw', TW, original.tw, 46), sysctlStep('cw', CW, original.cw, 36), sysctlStep('fw', FW, original.fw, 56)]);
    await w.holds.hold(TW);
    expect((await approvePlan(w.rt, w.rules, a.planId, BOB)).ok).toBe(true);
    await waitUntil("A's first write hanging on the gateway", () => w.holds.waitingWrite(TW), 60_000, { everyMs: 50, context: logs });
    const pid = pidRunning(workers, a.planId);
    expect(pid, logs()).not.toBeNull();
    process.kill(pid!, 'SIGSTOP');
    const stoppedAt = Date.now();
    // The write A sent while it owned the gateway completes; A reads its answer on SIGCONT.
    await w.holds.release(TW);
    await waitUntil("A's first write done", async () => (await w.sysctl(TW)) === 46, 10_000);

    await new Promise((r) => setTimeout(r, 5_000));
    const b = await w.slackPlan([sysctlStep('udp', UDP, original.udp, 25)]);
    await w.holds.hold(UDP);
    expect((await approvePlan(w.rt, w.rules, b.planId, BOB)).ok).toBe(true);
    await waitUntil("B's write hanging on the gateway", () => w.holds.waitingWrite(UDP), 60_000, { everyMs: 50, context: logs });
    expect(await w.rt.locks.holder(w.lab.name)).toBe(`apply-${b.planId}`);

    const cwBefore = await w.sysctl(CW);
    const fwBefore = await w.sysctl(FW);
    process.kill(pid!, 'SIGCONT');
    const pausedMs = Date.now() - stoppedAt;
    const told = await waitUntil(
      "A's stop in the channel",
      () => w.slack.messages(CHANNEL).find((m) => m.ts === a.message?.ts && /lost the lock of the gateway/.test(bodyOf(m))),
      30_000,
      { context: logs },
    );
    // B still holds the gateway: whatever A wrote since SIGCONT is visible now.
    expect(await w.rt.locks.holder(w.lab.name)).toBe(`apply-${b.planId}`);
    const writes = [(await w.sysctl(CW)) !== cwBefore, (await w.sysctl(FW)) !== fwBefore].filter(Boolean).length;
    console.log(`[faults] worker paused ${pausedMs} ms (lock TTL 3 s) while another apply took the gateway: gateway writes by the resumed worker = ${writes}`);
    expect(writes).toBe(0);
    expect(await w.sysctl(CW)).toBe(original.cw);
    expect(await w.sysctl(FW)).toBe(original.fw);
    expect(bodyOf(told)).toContain(`Applied before it stopped: ${TW}`);
    expect((await w.rt.plans.get(a.planId))?.status).toBe('apply-interrupted');
    const records = new ApplyRecordStore(w.rt.redis, w.rt.env.QUEUE_PREFIX);
    expect((await records.steps(a.planId))?.map((s) => s.status)).toEqual(['applied', 'not-run', 'not-run']);

    await w.holds.release(UDP);
    await waitUntil('B applied', async () => (await w.rt.plans.get(b.planId))?.status === 'applied', 60_000, { context: logs });
    expect(await w.sysctl(UDP)).toBe(25);
    // Both can be rolled back (each restores its own snapshot).
    expect((await w.rt.plans.get(a.planId))?.status).toBe('apply-interrupted');
  }, 180_000);
});
