/**
 * The apply job through BullMQ and a dying worker, on a real namespace lab gateway:
 * two enqueues of one approval run one apply; a worker killed (SIGKILL) in the middle
 * of an apply is never re-run, and its state is reported honestly and can be rolled back.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CheckReport, PlanStep } from '../../src/core/model.js';
import { gatewayExec, labDown, labUp, type Lab } from '../../lab/index.js';
import type { ApplyJob } from '../../src/queue/jobs.js';
import { enqueueApply } from '../../src/queue/producer.js';
import { approvedPlan, checkReport, openHarness, startApplyWorker, sysctlStep, type Harness } from './helpers/harness.js';

const TW = 'nf_conntrack_tcp_timeout_time_wait';
const CW = 'nf_conntrack_tcp_timeout_close_wait';
const FW = 'nf_conntrack_tcp_timeout_fin_wait';

let lab: Lab;
let h: Harness;
let report: CheckReport;

async function sysctl(key: string): Promise<number> {
  const r = await gatewayExec(lab, ['cat', `/proc/sys/net/netfilter/${key}`]);
  return Number(r.stdout.trim());
}

beforeAll(async () => {
  lab = await labUp({ clients: 1, sourcesPerClient: 1, firewall: 'nft' });
  h = await openHarness(lab.name, lab.inventoryEntry);
  report = await checkReport(h);
}, 180_000);

afterAll(async () => {
  await h?.close();
  if (lab) await labDown(lab);
});

describe('apply jobs', () => {
  it('two enqueues of the same approval run one apply job, once', async () => {
    const worker = startApplyWorker(h);
    try {
      const plan = await approvedPlan(h, report, [sysctlStep('tw', TW, 120, 40)]);
      const payload: ApplyJob = { action: 'apply', planId: plan.planId, gateway: lab.name, decidedBy: 'U-approver', origin: { kind: 'cli' } };
      const [a, b] = await Promise.all([enqueueApply(h.queues, payload), enqueueApply(h.queues, payload)]);
      expect(a).toBe(b);
      const job = await h.queues.apply.getJob(a);
      let state = await job?.getState();
      for (let i = 0; i < 300 && state !== 'completed' && state !== 'failed'; i += 1) {
        await new Promise((r) => setTimeout(r, 100));
        state = await job?.getState();
      }
      expect(state).toBe('completed');
      const done = await h.queues.apply.getJob(a);
      expect(done?.returnvalue.outcome).toBe('applied');
      expect(await h.records.runs(plan.planId, 'apply')).toBe(1);
      expect(await sysctl(TW)).toBe(40);
      // Roll back through the queue too.
      const rb = await enqueueApply(h.queues, { ...payload, action: 'rollback' });
      const rbJob = await h.queues.apply.getJob(rb);
      let rbState = await rbJob?.getState();
      for (let i = 0; i < 300 && rbState !== 'completed' && rbState !== 'failed'; i += 1) {
        await new Promise((r) => setTimeout(r, 100));
        rbState = await rbJob?.getState();
      }
      expect((await h.queues.apply.getJob(rb))?.returnvalue.outcome).toBe('rolled-back');
      expect(await sysctl(TW)).toBe(120);
    } finally {
      await worker.close();
    }
  });

  it('a worker killed mid-apply: no second apply, state reported honestly, roll back restores', async () => {
    const plan = await approvedPlan(h, report, [sysctlStep('tw', TW, 120, 33), sysctlStep('cw', CW, 60, 33), sysctlStep('fw', FW, 120, 33)]);
    // One process (node --import tsx), so SIGKILL kills the worker itself, not a wrapper.
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/apply/helpers/apply-child.ts'], {
      env: {
        ...process.env,
        CTO_REDIS_URL: h.redisHandle.url,
        CTO_PREFIX: h.prefix,
        CTO_GATEWAY: lab.name,
        CTO_CONFIG: JSON.stringify(lab.inventoryEntry),
        CTO_PLAN: plan.planId,
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`child did not reach a step: ${out}`)), 60_000);
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes('STEP-DONE')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => reject(new Error(`child exited ${code}: ${out}`)));
    });
    child.kill('SIGKILL');
    await once(child, 'exit');
    expect(out).toContain('STEP-DONE tw');
    expect((await h.plans.get(plan.planId))?.status).toBe('applying');
    expect(await sysctl(TW)).toBe(33);
    expect(await sysctl(CW)).toBe(60);

    // While the dead worker's lease has not expired, nobody touches the plan.
    const early = await h.engine.apply(plan.planId, { actor: 'U-approver' });
    expect(['busy']).toContain(early.outcome);

    await new Promise((r) => setTimeout(r, 3_500));
    const found = await h.engine.reconcileInterrupted();
    const mine = found.find((o) => o.planId === plan.planId);
    expect(mine?.outcome).toBe('interrupted');
    expect(mine?.steps.map((s) => s.status)).toEqual(['applied', 'not-run', 'not-run']);
    expect(mine?.canRollBack).toBe(true);
    expect(mine?.message).toMatch(/NOT re-run/);
    expect((await h.plans.get(plan.planId))?.status).toBe('apply-interrupted');
    // A retried job does not apply it again.
    const retry = await h.engine.apply(plan.planId, { actor: 'U-approver' });
    expect(retry.outcome).toBe('not-allowed');
    expect(await h.records.runs(plan.planId, 'apply')).toBe(1);
    expect(await sysctl(CW)).toBe(60);

    const rb = await h.engine.rollback(plan.planId, { actor: 'U-approver' });
    expect(rb.outcome, rb.message).toBe('rolled-back');
    expect(await sysctl(TW)).toBe(120);
    expect(await sysctl(CW)).toBe(60);
    expect(await sysctl(FW)).toBe(120);
  });

  it('NOTRACK with nft: our own table, rule added once, removed by roll back', async () => {
    const source = lab.inventoryEntry.managementSource ?? '';
    const step: PlanStep = {
      id: 'notrack-management',
      kind: 'notrack-management',
      key: `management SSH ${source}`,
      current: 'tracked',
      proposed: 'nft notrack',
      why: 'test',
      writable: true,
      optional: true,
      params: { backend: 'nft', family: 'ipv4', source, port: lab.inventoryEntry.port, tag: 'conntrack-ops:mgmt-ssh' },
    };
    const plan = await approvedPlan(h, report, [step]);
    const out = await h.engine.apply(plan.planId, { actor: 'U-approver', optionalSteps: ['notrack-management'] });
    expect(out.outcome, out.message).toBe('applied');
    const listed = (await gatewayExec(lab, ['nft', 'list', 'table', 'inet', 'conntrack_ops'])).stdout;
    expect(listed.match(/conntrack-ops:mgmt-ssh/g)?.length).toBe(2);
    const again = await approvedPlan(h, report, [step]);
    const second = await h.engine.apply(again.planId, { actor: 'U-approver', optionalSteps: ['notrack-management'] });
    expect(second.steps[0]?.status).toBe('unchanged');
    const rb = await h.engine.rollback(plan.planId, { actor: 'U-approver' });
    expect(rb.outcome, rb.message).toBe('rolled-back');
    const gone = await gatewayExec(lab, ['nft', 'list', 'table', 'inet', 'conntrack_ops'], { check: false });
    expect(gone.exitCode).not.toBe(0);
  });
});
