/**
 * A busybox gateway (lab/vm with `userland: 'busybox'`): Debian's kernel, but every shell is
 * busybox ash (root's login shell and /bin/sh), ps / cat / grep / sysctl / dmesg / awk are
 * busybox applets, there is no bash, no dash, and no `conntrack` tool on PATH. The whole
 * check runs there (the table from /proc/net/nf_conntrack, the counters from
 * /proc/net/stat/nf_conntrack, the kernel log from busybox dmesg), then the check's own plan
 * is applied, verified and rolled back.
 *
 * Set CTO_SKIP_VM_TESTS=1 (or CONNTRACK_OPS_SKIP_VM=1) to skip, as the VM tests do.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CheckReport } from '../../src/core/model.js';
import { readManaged } from '../../src/apply/gateway-io.js';
import { renderReportText } from '../../src/cli/render-text.js';
import { vmUp, type VmGateway } from '../../lab/vm/index.js';
import { approvedPlan, checkReport, openHarness, type Harness } from './helpers/harness.js';

const skip = process.env.CTO_SKIP_VM_TESTS === '1' || process.env.CONNTRACK_OPS_SKIP_VM === '1';

let vm: VmGateway;
let h: Harness;
let report: CheckReport;

async function num(path: string): Promise<number> {
  return Number((await vm.run(`cat ${path}`)).trim());
}

describe.skipIf(skip)('busybox gateway (VM: ash, busybox tools, no conntrack tool)', () => {
  beforeAll(async () => {
    const t0 = Date.now();
    vm = await vmUp({ bootMax: 4096, hashsize: 1024, userland: 'busybox' });
    console.log(`[measure] busybox VM up (image cached or built + boot): ${Date.now() - t0} ms`);
    h = await openHarness(vm.name, { ...vm.inventoryEntry, managementSource: vm.managementSource });
  }, 300_000);

  afterAll(async () => {
    await h?.close();
    await vm?.down();
  });

  it('is a busybox system: the login shell and /bin/sh are ash, the tools are applets, no bash, no dash, no conntrack', async () => {
    const r = await vm.exec(
      [
        'readlink /bin/sh',
        'readlink /proc/$$/exe',
        'for t in ps cat grep sysctl dmesg awk; do printf "%s=%s\\n" "$t" "$(readlink -f "$(which "$t")")"; done',
        'for t in bash dash conntrack; do command -v "$t" || echo "no-$t"; done',
        'ls /proc/net/nf_conntrack /proc/net/stat/nf_conntrack',
      ].join('; '),
    );
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toBe('/usr/bin/busybox');
    expect(lines[1]).toBe('/usr/bin/busybox'); // the shell running this very command
    for (const t of ['ps', 'cat', 'grep', 'sysctl', 'dmesg', 'awk']) expect(lines, r.stdout).toContain(`${t}=/usr/bin/busybox`);
    expect(lines).toEqual(expect.arrayContaining(['no-bash', 'no-dash', 'no-conntrack', '/proc/net/nf_conntrack', '/proc/net/stat/nf_conntrack']));
  });

  it('the whole check on a saturated table: every entry read from /proc, drops from /proc/net/stat, "table full" from busybox dmesg', async () => {
    const fill = await vm.fill('saturated');
    expect(fill.drop).toBeGreaterThan(0);
    const t0 = Date.now();
    report = await checkReport(h);
    const checkMs = Date.now() - t0;
    const kernelCount = await num('/proc/sys/net/netfilter/nf_conntrack_count');
    const full = report.facts.kernelLog.filter((e) => e.kind === 'table-full');
    console.log(
      `[measure] busybox check: ${checkMs} ms; entries ${report.table.entries} (kernel count ${kernelCount}, max ${report.conntrack.max}), unparsed ${report.table.unparsed}; ` +
        `drop ${report.facts.stats.drop}; table-full lines ${full.length}; findings ${report.findings.map((f) => f.id).join(',')}; ` +
        `plan ${report.plan.steps.map((s) => `${s.id}${s.writable ? '' : '(not writable)'}`).join(',')}`,
    );
    expect(report.facts.hasConntrackTool).toBe(false);
    expect(report.table.unparsed).toBe(0);
    // The generator keeps the table at its max: the /proc dump holds every entry (within the SSH sessions' few).
    expect(report.table.entries).toBeGreaterThanOrEqual(report.conntrack.max - 8);
    expect(report.table.entries).toBeLessThanOrEqual(report.conntrack.max);
    expect(Math.abs(report.table.entries - kernelCount)).toBeLessThanOrEqual(8);
    expect(report.states['udp']).toBeGreaterThan(4000);
    expect(report.facts.stats.drop).toBeGreaterThan(0);
    expect(full.length).toBeGreaterThan(0);
    // busybox dmesg prints [seconds since boot]: dated from the gateway's clock minus its uptime,
    // so they count as "in the last 5 minutes" (they were not dated before)
    expect(full.every((e) => e.at !== null)).toBe(true);
    expect(report.drops.lastTableFullAt).not.toBeNull();
    expect(report.findings.find((f) => f.id === 'drops-observed')?.evidence['tableFullLast5Min']).toBe(full.length);
    expect(report.findings.find((f) => f.id === 'table-saturated')?.severity).toBe('critical');
    expect(report.findings.map((f) => f.id)).toContain('drops-observed');
    // Deleting entries needs conntrack (netlink): the plan says so instead of offering a step that would fail.
    const del = report.plan.steps.find((s) => s.kind === 'delete-idle-entries');
    if (del) {
      expect(del.writable).toBe(false);
      expect(del.whereToChange).toMatch(/install conntrack-tools/);
    }
    expect(renderReportText(report)).toContain('Conntrack table');
  });

  it("applies the check's plan (max, hashsize, sysctl.d, modprobe.d) with busybox tools, verifies, and rolls back", async () => {
    const steps = report.plan.steps.filter((s) => s.writable);
    const max = steps.find((s) => s.key === 'nf_conntrack_max');
    const hash = steps.find((s) => s.kind === 'hashsize');
    expect(max, JSON.stringify(report.plan)).toBeDefined();
    expect(hash).toBeDefined();
    const maxBefore = await num('/proc/sys/net/netfilter/nf_conntrack_max');
    const hashBefore = await num('/sys/module/nf_conntrack/parameters/hashsize');
    const plan = await approvedPlan(h, report, steps);
    const t0 = Date.now();
    const out = await h.engine.apply(plan.planId, { actor: 'U-approver', optionalSteps: steps.filter((s) => s.optional).map((s) => s.id) });
    console.log(`[measure] busybox apply: ${Date.now() - t0} ms; ${out.steps.map((s) => `${s.stepId}=${s.status}`).join(', ')}; verify ${out.verify.map((c) => `${c.name}:${c.ok ? 'ok' : 'NO'}`).join(',')}; drops ${JSON.stringify(out.verifyReport?.drops)}`);
    expect(out.outcome, `${out.message}\n${out.problems.join('\n')}\n${JSON.stringify(out.steps, null, 1)}`).toBe('applied');
    expect(out.steps.every((s) => s.status === 'applied' || s.status === 'unchanged')).toBe(true);
    expect(await num('/proc/sys/net/netfilter/nf_conntrack_max')).toBe(Number(max?.proposed));
    expect(await num('/sys/module/nf_conntrack/parameters/hashsize')).toBe(Number(hash?.proposed));
    const lease = await h.pool.provider(h.gateway, h.config);
    try {
      expect((await readManaged(lease.session, 'sysctl')).content).toContain(`net.netfilter.nf_conntrack_max = ${max?.proposed}`);
      expect((await readManaged(lease.session, 'modprobe')).content).toContain(`options nf_conntrack hashsize=${hash?.proposed}`);
      expect(out.verifyReport?.max).toEqual({ before: maxBefore, after: Number(max?.proposed) });
      expect(out.verify.filter((c) => !c.ok && c.name !== 'count/max')).toEqual([]);
    // Without conntrack -S the verify reads the kernel's /proc counters: drops are still compared.
    expect(out.verifyReport?.drops?.before.drop).toBeGreaterThan(0);
    expect(out.verify.find((c) => c.name === 'drops since the snapshot')).toBeDefined();
    // busybox dmesg has no --time-format: the "table full" lines are read with its own stamps.
    expect((await h.records.snapshot(plan.planId))?.tableFullLines.length).toBeGreaterThan(0);

      // busybox's fill is not all long-lived: the table may already be below the old max here, so the
      // guard's refusal is asserted on the Debian VM (apply-vm.test.ts); free the table, then roll back.
      await vm.stopTraffic();
      const rb = await h.engine.rollback(plan.planId, { actor: 'U-approver' });
      expect(rb.outcome, rb.message).toBe('rolled-back');
      expect(rb.restore?.ok).toBe(true);
      expect(await num('/proc/sys/net/netfilter/nf_conntrack_max')).toBe(maxBefore);
      expect(await num('/sys/module/nf_conntrack/parameters/hashsize')).toBe(hashBefore);
      expect((await readManaged(lease.session, 'sysctl')).exists).toBe(false);
      expect((await readManaged(lease.session, 'modprobe')).exists).toBe(false);
    } finally {
      lease.release();
    }
  });
});
