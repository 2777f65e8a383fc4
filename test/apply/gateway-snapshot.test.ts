/**
 * The apply snapshot's copy on the gateway (issue 15, defect 13), root session: written
 * before the first change (root only: dir 0700, file 0600), used by the roll back when
 * Redis lost its copy (and the step record), removed once there is nothing left to roll
 * back (a roll back, or a failed apply whose restore succeeded), and no copy, no change:
 * when it cannot be written the apply changes nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatewayExec, labDown, labUp, sshExec, type Lab } from '../../lab/index.js';
import type { CheckReport } from '../../src/core/model.js';
import { GATEWAY_SNAPSHOT_DIR } from '../../src/gateway/sudo-helper/policy.js';
import { approvedPlan, checkReport, openHarness, sysctlStep, type Harness } from './helpers/harness.js';

const EST = 'nf_conntrack_tcp_timeout_established';

let lab: Lab;
let h: Harness;
let report: CheckReport;

async function established(): Promise<number> {
  return Number((await gatewayExec(lab, ['cat', `/proc/sys/net/netfilter/${EST}`])).stdout.trim());
}

/** `<mode> <owner>` of the copy, or null when there is none (read as root through the gateway's sshd). */
async function copyOf(planId: string): Promise<{ mode: string; json: string } | null> {
  const file = `${GATEWAY_SNAPSHOT_DIR}/${planId}.json`;
  const r = await sshExec(lab, `test -f ${file} && stat -c '%a %U' ${file} && cat ${file}`);
  if (r.exitCode !== 0) return null;
  const [mode, json] = r.stdout.split('\n');
  return { mode: mode ?? '', json: json ?? '' };
}

beforeAll(async () => {
  lab = await labUp({ clients: 1, sourcesPerClient: 1 });
  h = await openHarness(lab.name, lab.inventoryEntry);
  report = await checkReport(h);
}, 120_000);

afterAll(async () => {
  await h?.close();
  if (lab) await labDown(lab);
});

describe("the snapshot's gateway copy (root session)", () => {
  it('is written before the change, and the roll back restores it when Redis lost its own', async () => {
    const before = await established();
    const plan = await approvedPlan(h, report, [sysctlStep('est', EST, before, 3600)]);
    const out = await h.engine.apply(plan.planId, { actor: 'U-approver' });
    expect(out.outcome, out.message).toBe('applied');
    expect(await established()).toBe(3600);
    const copy = await copyOf(plan.planId);
    expect(copy?.mode).toBe('600 root');
    expect((await sshExec(lab, `stat -c '%a' ${GATEWAY_SNAPSHOT_DIR}`)).stdout.trim()).toBe('700');
    expect(JSON.parse(copy?.json ?? '{}')).toMatchObject({ version: 1, planId: plan.planId, gateway: lab.name, snapshot: { sysctl: { [EST]: before } } });

    await h.redis.hdel(h.records.key(plan.planId), 'snapshot', 'steps');
    expect(await h.records.snapshot(plan.planId)).toBeNull();
    const back = await h.engine.rollback(plan.planId, { actor: 'U-approver' });
    expect(back.outcome, `${back.message}\n${back.notes.join('\n')}`).toBe('rolled-back');
    expect(await established()).toBe(before);
    expect(back.steps.find((s) => s.stepId === 'est')?.status).toBe('rolled-back');
    expect(await copyOf(plan.planId)).toBeNull();
  });

  it('a copy that fails validation is not used (the roll back refuses and says why, nothing changes)', async () => {
    const before = await established();
    const plan = await approvedPlan(h, report, [sysctlStep('est', EST, before, 7200)]);
    expect((await h.engine.apply(plan.planId, { actor: 'U-approver' })).outcome).toBe('applied');
    await h.redis.hdel(h.records.key(plan.planId), 'snapshot', 'steps');
    // Someone edits the copy: it names another plan.
    await sshExec(lab, `sed -i 's/"planId":"${plan.planId}"/"planId":"other-plan-0001"/' ${GATEWAY_SNAPSHOT_DIR}/${plan.planId}.json`);
    const back = await h.engine.rollback(plan.planId, { actor: 'U-approver' });
    expect(back.outcome).toBe('not-allowed');
    expect(back.message).toMatch(/gateway's copy could not be read .*names plan other-plan-0001.*nothing was done/);
    expect((await h.plans.get(plan.planId))?.status).toBe('applied');
    expect(await established()).toBe(7200);
    // Put it right by hand (as an operator would) and leave the gateway as it was.
    await gatewayExec(lab, ['sh', '-c', `echo ${before} > /proc/sys/net/netfilter/${EST}`]);
  });

  it('is removed when a failed apply was restored; no copy, no change', async () => {
    const before = await established();
    const failing = await approvedPlan(h, report, [sysctlStep('est', EST, before, 1800)]);
    const out = await h.engine.apply(failing.planId, {
      actor: 'U-approver',
      afterStep: () => {
        throw new Error('injected after the first step');
      },
    });
    expect(out.outcome).toBe('apply-failed');
    expect(out.restore?.ok).toBe(true);
    expect(await established()).toBe(before);
    expect(await copyOf(failing.planId)).toBeNull();

    // The copy cannot be written (its directory is a file): the apply stops before any change.
    await sshExec(lab, `rm -rf ${GATEWAY_SNAPSHOT_DIR} && touch ${GATEWAY_SNAPSHOT_DIR}`);
    try {
      const plan = await approvedPlan(h, report, [sysctlStep('est', EST, before, 900)]);
      const blocked = await h.engine.apply(plan.planId, { actor: 'U-approver' });
      expect(blocked.outcome).toBe('apply-failed');
      expect(blocked.message).toMatch(/could not keep the snapshot on the gateway/);
      expect(await established()).toBe(before);
      expect(blocked.steps.every((s) => s.status === 'not-run')).toBe(true);
    } finally {
      await sshExec(lab, `rm -f ${GATEWAY_SNAPSHOT_DIR}`);
    }
  });
});
