/**
 * Apply on the QEMU VM gateway (lab/vm): the init network namespace, where
 * nf_conntrack_max and the hash size ARE writable. A saturated table, a REAL check and
 * its REAL plan (computePlan): raise max and hashsize, persist in sysctl.d and
 * modprobe.d; verify; roll back restores values and files.
 *
 * Set CTO_SKIP_VM_TESTS=1 (or CONNTRACK_OPS_SKIP_VM=1) to skip, as the VM tests do.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readManaged } from '../../src/apply/gateway-io.js';
import { vmUp, type VmGateway } from '../../lab/vm/index.js';
import { approvedPlan, checkReport, openHarness, rollBackAfterFreeingTable, type Harness } from './helpers/harness.js';

const skip = process.env.CTO_SKIP_VM_TESTS === '1' || process.env.CONNTRACK_OPS_SKIP_VM === '1';

let vm: VmGateway;
let h: Harness;

async function num(path: string): Promise<number> {
  return Number((await vm.run(`cat ${path}`)).trim());
}

describe.skipIf(skip)('apply on the VM gateway (init netns: max and hashsize writable)', () => {
  beforeAll(async () => {
    vm = await vmUp({ bootMax: 4096, hashsize: 1024 });
    h = await openHarness(vm.name, { ...vm.inventoryEntry, managementSource: vm.managementSource });
  }, 300_000);

  afterAll(async () => {
    await h?.close();
    await vm?.down();
  });

  it('raises max and hashsize, persists sysctl.d + modprobe.d, verifies; roll back restores all', async () => {
    const fill = await vm.fill('saturated');
    expect(fill.drop).toBeGreaterThan(0);
    const report = await checkReport(h);
    const steps = report.plan.steps;
    const max = steps.find((s) => s.key === 'nf_conntrack_max');
    const hash = steps.find((s) => s.kind === 'hashsize');
    const modprobe = steps.find((s) => s.kind === 'persist-modprobe');
    const sysctlFile = steps.find((s) => s.kind === 'persist-sysctl');
    expect(max?.writable, JSON.stringify(report.plan.notes)).toBe(true);
    expect(hash?.writable).toBe(true);
    expect(modprobe).toBeDefined();
    expect(sysctlFile?.writable).toBe(true);
    const maxBefore = await num('/proc/sys/net/netfilter/nf_conntrack_max');
    const hashBefore = await num('/sys/module/nf_conntrack/parameters/hashsize');

    const plan = await approvedPlan(h, report, steps);
    const t0 = performance.now();
    const out = await h.engine.apply(plan.planId, { actor: 'U-approver' });
    console.log(`[measure] VM apply of the real plan (${steps.filter((s) => !s.optional).length} default steps): ${Math.round(performance.now() - t0)} ms`);
    expect(out.outcome, `${out.message}\n${JSON.stringify(out.steps, null, 1)}`).toBe('applied');
    expect(await num('/proc/sys/net/netfilter/nf_conntrack_max')).toBe(Number(max?.proposed));
    expect(await num('/sys/module/nf_conntrack/parameters/hashsize')).toBe(Number(hash?.proposed));
    const lease = await h.pool.provider(h.gateway, h.config);
    const mp = await readManaged(lease.session, 'modprobe');
    expect(mp.content).toContain(`options nf_conntrack hashsize=${hash?.proposed}`);
    expect(mp.content).toContain(`# managed by conntrack-ops, plan ${plan.planId}`);
    const sf = await readManaged(lease.session, 'sysctl');
    expect(sf.content).toContain(`net.netfilter.nf_conntrack_max = ${max?.proposed}`);
    expect(out.verifyReport?.max).toEqual({ before: maxBefore, after: Number(max?.proposed) });
    expect(out.verify.filter((c) => !c.ok && c.name !== 'count/max')).toEqual([]);

    // The table is still full: the old max is below the live count, so the roll back refuses first.
    const rb = await rollBackAfterFreeingTable(h, plan.planId, vm);
    expect(rb.outcome, rb.message).toBe('rolled-back');
    expect(await num('/proc/sys/net/netfilter/nf_conntrack_max')).toBe(maxBefore);
    expect(await num('/sys/module/nf_conntrack/parameters/hashsize')).toBe(hashBefore);
    expect((await readManaged(lease.session, 'modprobe')).exists).toBe(false);
    expect((await readManaged(lease.session, 'sysctl')).exists).toBe(false);
  });

  it('pre-flight refuses a max the memory cannot hold', async () => {
    const report = await checkReport(h);
    const current = report.conntrack.max;
    const huge = 2 ** 31 - 1;
    const plan = await approvedPlan(h, report, [
      { id: 'conntrack-max', kind: 'sysctl', key: 'nf_conntrack_max', current: String(current), proposed: String(huge), why: 'test', writable: true, optional: false, params: { value: huge, current } },
    ]);
    const out = await h.engine.apply(plan.planId, { actor: 'U-approver' });
    expect(out.outcome).toBe('refused');
    expect(out.problems.join('\n')).toMatch(/MiB when full.*refused/);
    expect(await num('/proc/sys/net/netfilter/nf_conntrack_max')).toBe(current);
  });
});
