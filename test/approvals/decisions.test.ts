/**
 * Decisions on a plan (src/approvals/decisions.ts) with real Redis (plans, history, the
 * apply queue) and a fake user-group lookup passed to the rules: requester vs approver,
 * ALLOW_SELF_APPROVAL, group members, non-approvers, an expired plan, a second decision,
 * optional steps, reject and roll back. Each decision is checked by its effect: the
 * plan's status, the apply job queued (or not) and the history.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approvePlan, rejectPlan, requestRollback } from '../../src/approvals/decisions.js';
import { ApprovalRules, type ApprovalPolicy } from '../../src/approvals/rules.js';
import { loadEnv } from '../../src/config/env.js';
import { openRuntime, type Runtime } from '../../src/runtime.js';
import type { PlanRecord } from '../../src/store/plan-store.js';
import { realisticReport } from '../slack/blocks/fixtures.js';

const ALICE = 'U0ALICE01'; // approver, and the requester of most plans here
const BOB = 'U0BOB0001'; // approver
const CAROL = 'U0CAROL01'; // approver through the user group
const MALLORY = 'U0MALLOR1'; // not an approver

let rt: Runtime;

beforeAll(async () => {
  const env = loadEnv({ QUEUE_PREFIX: `{cto-test-approvals-${process.pid}}`, LOG_LEVEL: 'error', ...(process.env['REDIS_URL'] ? { REDIS_URL: process.env['REDIS_URL'] } : {}), PATH: process.env['PATH'] });
  rt = await openRuntime(env, { inventory: { gateways: {} } });
}, 30_000);

afterAll(async () => {
  await rt?.queues.apply.obliterate({ force: true }).catch(() => undefined);
  await rt?.close();
});

/** Rules with a fake usergroups lookup: S0NETOPS1 holds Carol. */
function rules(over: Partial<ApprovalPolicy> = {}): ApprovalRules {
  const groups: Record<string, string[]> = { S0NETOPS1: [CAROL] };
  return new ApprovalRules({ approvers: [ALICE, BOB], approverGroups: ['S0NETOPS1'], allowSelfApproval: false, ...over }, async (g) => groups[g] ?? []);
}

function newPlan(opts: { requestedBy?: string; createdAt?: Date; ttlMinutes?: number } = {}): Promise<PlanRecord> {
  return rt.plans.create({ report: realisticReport(), requestedBy: opts.requestedBy ?? ALICE, origin: { kind: 'slack', channel: 'C0OPS0001' }, ttlMinutes: opts.ttlMinutes ?? 30, ...(opts.createdAt ? { now: opts.createdAt } : {}) });
}

async function applyJobsFor(planId: string): Promise<{ action: string; decidedBy: string; steps?: string[] }[]> {
  const jobs = await rt.queues.apply.getJobs(['waiting', 'delayed', 'active', 'completed', 'failed', 'prioritized']);
  return jobs.filter((j) => j.data.planId === planId).map((j) => j.data);
}

async function historyOf(planId: string, gateway: string): Promise<string[]> {
  return (await rt.history.list(gateway, 100)).filter((h) => h.planId === planId).map((h) => `${h.event} by ${h.actor}`);
}

describe('approvePlan', () => {
  it('another approver approves: the plan is approved and one apply job is queued for it', async () => {
    const plan = await newPlan();
    const d = await approvePlan(rt, rules(), plan.planId, BOB);
    expect(d).toMatchObject({ ok: true, plan: { status: 'approved', decidedBy: BOB } });
    expect((await rt.plans.get(plan.planId))?.status).toBe('approved');
    expect(await applyJobsFor(plan.planId)).toEqual([expect.objectContaining({ action: 'apply', decidedBy: BOB })]);
    expect(await historyOf(plan.planId, plan.gateway)).toEqual([`approved by ${BOB}`]);
  });

  it('the requester is refused (four-eyes) although an approver; nothing queued, still pending', async () => {
    const plan = await newPlan({ requestedBy: ALICE });
    const d = await approvePlan(rt, rules(), plan.planId, ALICE);
    expect(d).toMatchObject({ ok: false, reason: 'denied', message: expect.stringMatching(/someone else has to approve/) });
    expect((await rt.plans.get(plan.planId))?.status).toBe('pending');
    expect(await applyJobsFor(plan.planId)).toEqual([]);
  });

  it('with ALLOW_SELF_APPROVAL the requester (an approver) approves their own plan', async () => {
    const plan = await newPlan({ requestedBy: ALICE });
    expect(await approvePlan(rt, rules({ allowSelfApproval: true }), plan.planId, ALICE)).toMatchObject({ ok: true, plan: { decidedBy: ALICE } });
    expect(await applyJobsFor(plan.planId)).toHaveLength(1);
  });

  it('a non-approver is refused, even on their own plan with ALLOW_SELF_APPROVAL', async () => {
    const plan = await newPlan({ requestedBy: MALLORY });
    for (const r of [rules(), rules({ allowSelfApproval: true })]) {
      expect(await approvePlan(rt, r, plan.planId, MALLORY)).toMatchObject({ ok: false, reason: 'denied', message: expect.stringMatching(/Only configured approvers/) });
    }
    expect((await rt.plans.get(plan.planId))?.status).toBe('pending');
    expect(await applyJobsFor(plan.planId)).toEqual([]);
  });

  it('a member of an approver group approves', async () => {
    const plan = await newPlan();
    expect(await approvePlan(rt, rules(), plan.planId, CAROL)).toMatchObject({ ok: true, plan: { decidedBy: CAROL } });
  });

  it('an expired plan cannot be approved: it becomes expired, the attempt is recorded, nothing queued', async () => {
    const plan = await newPlan({ createdAt: new Date(Date.now() - 60 * 60_000), ttlMinutes: 30 });
    const d = await approvePlan(rt, rules(), plan.planId, BOB);
    expect(d).toMatchObject({ ok: false, reason: 'expired', message: expect.stringMatching(/expired at .*run `\/conntrack check /) });
    expect((await rt.plans.get(plan.planId))?.status).toBe('expired');
    expect(await applyJobsFor(plan.planId)).toEqual([]);
    expect(await historyOf(plan.planId, plan.gateway)).toEqual([`expired by ${BOB}`]);
    // Later clicks get the same answer (not "already decided"), each recorded.
    expect(await approvePlan(rt, rules(), plan.planId, CAROL)).toMatchObject({ ok: false, reason: 'expired' });
    expect(await historyOf(plan.planId, plan.gateway)).toEqual(expect.arrayContaining([`expired by ${BOB}`, `expired by ${CAROL}`]));
  });

  it('a second approval finds the plan decided: still one apply job', async () => {
    const plan = await newPlan();
    const [a, b] = await Promise.all([approvePlan(rt, rules(), plan.planId, BOB), approvePlan(rt, rules(), plan.planId, CAROL)]);
    expect([a.ok, b.ok].filter(Boolean)).toHaveLength(1);
    const loser = a.ok ? b : a;
    expect(loser).toMatchObject({ ok: false, reason: 'already-decided', message: expect.stringMatching(/already \*approved\* \(by U0(BOB0001|CAROL01)\)/) });
    expect(await applyJobsFor(plan.planId)).toHaveLength(1);
  });

  it('optional steps: only those the plan offers; "all" takes every approvable one; a made-up id is refused', async () => {
    const made = await newPlan();
    expect(await approvePlan(rt, rules(), made.planId, BOB, new Date(), { optionalSteps: ['s9'] })).toMatchObject({ ok: false, reason: 'unknown-step', message: expect.stringContaining('no optional step s9') });
    expect((await rt.plans.get(made.planId))?.status).toBe('pending');
    const some = await newPlan();
    await approvePlan(rt, rules(), some.planId, BOB, new Date(), { optionalSteps: ['s4', 's4'] });
    expect((await applyJobsFor(some.planId))[0]?.steps).toEqual(['s4']);
    const all = await newPlan();
    await approvePlan(rt, rules(), all.planId, BOB, new Date(), { optionalSteps: 'all' });
    expect((await applyJobsFor(all.planId))[0]?.steps).toEqual(['s4', 's5']);
  });

  it('an unknown plan', async () => {
    expect(await approvePlan(rt, rules(), '00000000-dead-beef-0000-000000000000', BOB)).toMatchObject({ ok: false, reason: 'unknown-plan', plan: null });
  });
});

describe('rejectPlan and requestRollback', () => {
  it('the requester may withdraw their plan; an approver may reject; a non-approver may not', async () => {
    const mine = await newPlan({ requestedBy: MALLORY });
    expect(await rejectPlan(rt, rules(), mine.planId, MALLORY)).toMatchObject({ ok: true, plan: { status: 'rejected', decidedBy: MALLORY } });
    const other = await newPlan({ requestedBy: ALICE });
    expect(await rejectPlan(rt, rules(), other.planId, MALLORY)).toMatchObject({ ok: false, reason: 'denied' });
    expect(await rejectPlan(rt, rules(), other.planId, CAROL)).toMatchObject({ ok: true });
    expect(await approvePlan(rt, rules(), other.planId, BOB)).toMatchObject({ ok: false, reason: 'already-decided' });
    expect(await applyJobsFor(other.planId)).toEqual([]);
  });

  it('roll back: approvers only, and only of an applied plan', async () => {
    const plan = await newPlan();
    expect(await requestRollback(rt, rules(), plan.planId, BOB)).toMatchObject({ ok: false, reason: 'not-applied', message: expect.stringContaining('*pending*') });
    await rt.plans.transition(plan.planId, ['pending'], 'applied', { actor: BOB });
    expect(await requestRollback(rt, rules(), plan.planId, MALLORY)).toMatchObject({ ok: false, reason: 'denied' });
    expect(await requestRollback(rt, rules(), plan.planId, CAROL)).toMatchObject({ ok: true });
    expect(await applyJobsFor(plan.planId)).toEqual([expect.objectContaining({ action: 'rollback', decidedBy: CAROL })]);
  });
});
