/**
 * Defect 4: a worker killed mid-apply. Two real worker processes (`jobs/worker.ts`) on real
 * Redis, a lab gateway over real sshd, the local Slack API server. The approval goes through
 * the real decision code; the gateway is slow to write the second step's key (GatewayHolds),
 * and while that write hangs the worker running the apply is killed with SIGKILL. The other worker's
 * sweep finds the run gone while it runs (no restart needed), tells the plan's channel which
 * steps ran, and the plan becomes `apply-interrupted`; it is never re-run, and Roll back
 * (through the queue, run by the surviving worker) restores the snapshot.
 *
 * Figures: applies run = 1 (not 2); delay from the kill to the message in the channel (< 60 s).
 *
 * Defect 9, on the same workers: the crash windows of approve (compare-and-set, then enqueue)
 * and of apply ('applying', then the first step). Each first write is one atomic Redis step
 * carrying the entry the sweep reads (the apply outbox, the in-flight entry); the half state a
 * crash leaves is written into the real Redis exactly as that step writes it, and the sweep
 * of the running workers repairs it: the approval's job is queued under its one id (applies
 * run = 1), the started-but-dead apply is reported (`apply-interrupted`, nothing changed).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approvePlan, requestRollback } from '../../src/approvals/decisions.js';
import { ApplyRecordStore } from '../../src/apply/store.js';
import type { ApplyJob } from '../../src/queue/jobs.js';
import { enqueueApply } from '../../src/queue/producer.js';
import { ApplyOutbox } from '../../src/store/apply-outbox.js';
import { sysctlStep } from '../apply/helpers/harness.js';
import { waitUntil } from '../support/wait-until.js';
import { BOB, CHANNEL, bodyOf, openWorkerLab, pidRunning, spawnWorker, stopWorker, type WorkerLab, type WorkerProcess } from './worker-fixture.js';

const TW = 'nf_conntrack_tcp_timeout_time_wait';
const CW = 'nf_conntrack_tcp_timeout_close_wait';
const FW = 'nf_conntrack_tcp_timeout_fin_wait';

let w: WorkerLab;
const workers: WorkerProcess[] = [];
const logs = (): string => workers.map((p, i) => `--- worker ${i} (pid ${p.child.pid}) ---\n${p.log().slice(-3000)}`).join('\n');

beforeAll(async () => {
  w = await openWorkerLab();
  for (let i = 0; i < 2; i++) workers.push(spawnWorker({ redisUrl: w.redis.url, slackApiUrl: w.slack.apiUrl, token: w.slack.token, inventory: w.inventoryPath }));
  await waitUntil('both workers started', () => workers.every((p) => p.log().includes('worker started')), 60_000, { context: logs });
}, 240_000);

afterAll(async () => {
  await w?.holds.release(CW);
  for (const p of workers) await stopWorker(p, 'SIGKILL');
  await w?.close();
});

describe('a worker killed (SIGKILL) mid-apply with a second worker alive', () => {
  it('is reported in the channel within 60 s, never re-run, and Roll back restores', async () => {
    const original = { tw: await w.sysctl(TW), cw: await w.sysctl(CW), fw: await w.sysctl(FW) };
    const plan = await w.slackPlan([sysctlStep('tw', TW, original.tw, 41), sysctlStep('cw', CW, original.cw, 31), sysctlStep('fw', FW, original.fw, 51)]);
    // The gateway hangs on the second step's write: the apply is in the middle of it.
    await w.holds.hold(CW);
    const approved = await approvePlan(w.rt, w.rules, plan.planId, BOB);
    expect(approved.ok).toBe(true);
    const hanging = await waitUntil('the second write hanging on the gateway', () => w.holds.waitingWrite(CW), 60_000, { everyMs: 50, context: logs });
    const records = new ApplyRecordStore(w.rt.redis, w.rt.env.QUEUE_PREFIX);
    expect((await records.steps(plan.planId))?.map((s) => s.status)).toEqual(['applied', 'running', 'pending']);
    const pid = pidRunning(workers, plan.planId);
    expect(pid, logs()).not.toBeNull();
    const victim = workers.find((p) => p.child.pid === pid);
    expect(victim).toBeTruthy();
    const killedAt = Date.now();
    await stopWorker(victim!, 'SIGKILL');
    // The dead worker's command dies with it (sshd does not hang up a command without a tty).
    process.kill(hanging, 'SIGKILL');
    await w.holds.release(CW);
    expect((await w.rt.plans.get(plan.planId))?.status).toBe('applying');

    const told = await waitUntil(
      'the interrupted apply in the channel',
      () => w.slack.messages(CHANNEL).find((m) => /was interrupted/.test(bodyOf(m))),
      90_000,
      { everyMs: 200, context: logs },
    );
    const delayMs = Date.now() - killedAt;
    const text = bodyOf(told);
    expect(text).toMatch(/NOT re-run/);
    expect(text).toContain(`Applied before it stopped: ${TW}`);
    expect(text).toContain(`State unknown: ${CW}`);
    expect(text).toMatch(/roll back restores it/);
    expect(text).toContain('Roll back'); // the button
    expect((await w.rt.plans.get(plan.planId))?.status).toBe('apply-interrupted');

    // Nothing re-runs it: wait two more sweeps and the stalled-job check.
    await new Promise((r) => setTimeout(r, 25_000));
    const applies = await records.runs(plan.planId, 'apply');
    console.log(`[faults] worker kill -9 mid-apply, second worker alive: applies run = ${applies}; channel told ${delayMs} ms after the kill`);
    expect(applies).toBe(1);
    expect(delayMs).toBeLessThan(60_000);
    expect(await w.sysctl(TW)).toBe(41);
    expect(await w.sysctl(CW)).toBe(original.cw);
    expect(await w.sysctl(FW)).toBe(original.fw);
    expect((await w.rt.queues.apply.getJob(`apply-${plan.planId}`))?.attemptsMade ?? 0).toBeLessThanOrEqual(1);

    // Roll back of the interrupted plan, through the queue (the surviving worker runs it).
    const rb = await requestRollback(w.rt, w.rules, plan.planId, BOB);
    expect(rb.ok).toBe(true);
    await waitUntil('the roll back', async () => (await w.rt.plans.get(plan.planId))?.status === 'rolled-back', 60_000, { context: logs });
    expect(await w.sysctl(TW)).toBe(original.tw);
    expect(await w.sysctl(CW)).toBe(original.cw);
    expect(await records.runs(plan.planId, 'apply')).toBe(1);
  }, 240_000);
});

describe('crash windows of approve and apply (defect 9)', () => {
  it('approved, job never queued: the sweep queues it under its one id; it runs once', async () => {
    const original = await w.sysctl(TW);
    const plan = await w.slackPlan([sysctlStep('tw', TW, original, 42)]);
    const job: ApplyJob = { action: 'apply', planId: plan.planId, gateway: w.lab.name, decidedBy: BOB, origin: plan.origin };
    const outbox = new ApplyOutbox(w.rt.redis, w.rt.env.QUEUE_PREFIX);
    // approvePlan's first write, and then the approver "dies": no enqueue.
    const crashedAt = Date.now();
    const t = await w.rt.plans.transition(plan.planId, ['pending'], 'approved', { actor: BOB, checkExpiry: true, also: outbox.entry(job) });
    expect(t.ok).toBe(true);
    expect(await w.rt.queues.apply.getJob(`apply-${plan.planId}`)).toBeUndefined();

    await waitUntil('the apply job queued by the sweep', () => w.rt.queues.apply.getJob(`apply-${plan.planId}`), 60_000, { context: logs });
    const queuedMs = Date.now() - crashedAt;
    await waitUntil('the apply', async () => (await w.rt.plans.get(plan.planId))?.status === 'applied', 60_000, { context: logs });
    // A late enqueue by the "revived" approver and two more sweeps change nothing.
    expect(await enqueueApply(w.rt.queues, job)).toBe(`apply-${plan.planId}`);
    await new Promise((r) => setTimeout(r, 22_000));
    const records = new ApplyRecordStore(w.rt.redis, w.rt.env.QUEUE_PREFIX);
    const applies = await records.runs(plan.planId, 'apply');
    console.log(`[faults] approval with no job (crash between approve and enqueue): queued by the sweep after ${queuedMs} ms; applies run = ${applies}`);
    expect(applies).toBe(1);
    expect(await outbox.all()).toEqual([]);
    expect(await w.sysctl(TW)).toBe(42);
    const rb = await requestRollback(w.rt, w.rules, plan.planId, BOB);
    expect(rb.ok).toBe(true);
    await waitUntil('the roll back', async () => (await w.rt.plans.get(plan.planId))?.status === 'rolled-back', 60_000, { context: logs });
    expect(await w.sysctl(TW)).toBe(original);
  }, 180_000);

  it("'applying' written, worker gone before the first step: reported interrupted, nothing changed, not re-run", async () => {
    const original = await w.sysctl(TW);
    const plan = await w.slackPlan([sysctlStep('tw', TW, original, 43)]);
    const records = new ApplyRecordStore(w.rt.redis, w.rt.env.QUEUE_PREFIX);
    await w.rt.plans.transition(plan.planId, ['pending'], 'approved', { actor: BOB });
    // The engine's first write of a run, and then the worker "dies" (no lease, no job, no lock).
    const t = await w.rt.plans.transition(plan.planId, ['approved'], 'applying', { actor: BOB, also: records.inflightEntry(plan.planId, 'apply') });
    expect(t.ok).toBe(true);
    const told = await waitUntil(
      'the interrupted apply in the channel',
      () => w.slack.messages(CHANNEL).find((m) => m.ts === plan.message?.ts && /was interrupted/.test(bodyOf(m))),
      60_000,
      { context: logs },
    );
    expect(bodyOf(told)).toMatch(/No step had completed/);
    expect((await w.rt.plans.get(plan.planId))?.status).toBe('apply-interrupted');
    expect(await records.runs(plan.planId, 'apply')).toBe(0);
    expect(await w.sysctl(TW)).toBe(original);
  }, 120_000);

  it("'rolling-back' written, worker gone: reported in the channel, rollback-failed, roll back can run again", async () => {
    const original = await w.sysctl(TW);
    const plan = await w.slackPlan([sysctlStep('tw', TW, original, 47)]);
    const records = new ApplyRecordStore(w.rt.redis, w.rt.env.QUEUE_PREFIX);
    expect((await approvePlan(w.rt, w.rules, plan.planId, BOB)).ok).toBe(true);
    await waitUntil('the apply', async () => (await w.rt.plans.get(plan.planId))?.status === 'applied', 60_000, { context: logs });
    // A roll back's first write, and then its worker "dies".
    await records.countRun(plan.planId, 'rollback');
    const t = await w.rt.plans.transition(plan.planId, ['applied'], 'rolling-back', { actor: BOB, also: records.inflightEntry(plan.planId, 'rollback') });
    expect(t.ok).toBe(true);
    await waitUntil(
      'the interrupted roll back in the channel',
      () => w.slack.messages(CHANNEL).find((m) => m.ts === plan.message?.ts && /roll back of plan .* was interrupted/i.test(bodyOf(m))),
      60_000,
      { context: logs },
    );
    expect((await w.rt.plans.get(plan.planId))?.status).toBe('rollback-failed');
    expect(await w.sysctl(TW)).toBe(47);
    expect((await requestRollback(w.rt, w.rules, plan.planId, BOB)).ok).toBe(true);
    await waitUntil('the roll back', async () => (await w.rt.plans.get(plan.planId))?.status === 'rolled-back', 60_000, { context: logs });
    expect(await w.sysctl(TW)).toBe(original);
  }, 120_000);
});
