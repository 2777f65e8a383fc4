/**
 * A network-namespace gateway without conntrack-tools (lab option `withoutTools:
 * ['conntrack']`: the binary does not exist for the gateway's sshd). The check takes the
 * /proc path end to end: the table from /proc/net/nf_conntrack, the counters from
 * /proc/net/stat/nf_conntrack; deleting idle entries is not offered as writable (it needs
 * netlink); a timeout change is applied, verified (drops through /proc) and rolled back; and
 * the gateway never had to look for a command it lacks.
 *
 * warnPercent 1 in this gateway's inventory entry: a few thousand entries are "high".
 */
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatewayConfigSchema } from '../../src/config/inventory.js';
import { conntrackCount, fillScenario, gatewayExec, labDown, labUp, notFoundLogPath, sshExec, type Lab } from '../../lab/index.js';
import { approvedPlan, checkReport, openHarness, type Harness } from '../apply/helpers/harness.js';

let lab: Lab;
let h: Harness;

beforeAll(async () => {
  lab = await labUp({ clients: 1, sourcesPerClient: 2, withoutTools: ['conntrack'] });
  h = await openHarness(lab.name, gatewayConfigSchema.parse({ ...lab.inventoryEntry, thresholds: { warnPercent: 1 } }));
}, 120_000);

afterAll(async () => {
  await h?.close();
  if (lab) await labDown(lab);
});

describe('gateway without the conntrack tool (the /proc fallback end to end)', () => {
  it('check, apply, verify and roll back read /proc; idle deletes are not offered as doable', async () => {
    expect((await sshExec(lab, 'PATH="$PATH:/usr/sbin:/sbin"; command -v conntrack; ls /proc/net/nf_conntrack')).stdout.trim()).toBe('/proc/net/nf_conntrack');
    await fillScenario(lab, ['healthy', 'dead-established']);
    const before = await conntrackCount(lab);
    const report = await checkReport(h);
    const after = await conntrackCount(lab);
    console.log(`[measure] no conntrack tool: check ${report.table.entries} entries, kernel ${before}/${after}, unparsed ${report.table.unparsed}; plan ${report.plan.steps.map((s) => `${s.id}${s.writable ? '' : '(not writable)'}`).join(',')}`);
    expect(report.facts.hasConntrackTool).toBe(false);
    expect(report.table.unparsed).toBe(0);
    expect(report.table.entries).toBeGreaterThanOrEqual(Math.min(before, after) - 2);
    expect(report.table.entries).toBeLessThanOrEqual(Math.max(before, after) + 2);
    const del = report.plan.steps.find((s) => s.kind === 'delete-idle-entries');
    expect(del?.writable).toBe(false);
    expect(del?.whereToChange).toMatch(/install conntrack-tools/);

    const steps = report.plan.steps.filter((s) => s.writable && s.kind === 'sysctl');
    expect(steps.length).toBeGreaterThan(0);
    const plan = await approvedPlan(h, report, steps);
    const out = await h.engine.apply(plan.planId, { actor: 'U-approver' });
    expect(out.outcome, `${out.message}\n${out.problems.join('\n')}`).toBe('applied');
    expect(out.verifyReport?.drops).not.toBeNull();
    expect(out.verify.find((c) => c.name === 'drops since the snapshot')?.ok).toBe(true);
    for (const s of steps) expect(Number((await gatewayExec(lab, ['cat', `/proc/sys/net/netfilter/${s.key}`])).stdout.trim())).toBe(Number(s.proposed));
    const rb = await h.engine.rollback(plan.planId, { actor: 'U-approver' });
    expect(rb.outcome, rb.message).toBe('rolled-back');
    for (const s of steps) expect(Number((await gatewayExec(lab, ['cat', `/proc/sys/net/netfilter/${s.key}`])).stdout.trim())).toBe(Number(s.current));
    expect(await readFile(notFoundLogPath(lab.dir), 'utf8')).toBe('');
  });
});
