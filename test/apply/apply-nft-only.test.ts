/**
 * An nft-only gateway (lab option `withoutTools: ['iptables']`, NAT in nftables): no
 * iptables binary of any flavour exists for the gateway's sshd, so for anything the bot
 * runs. Check, plan, apply, verify and roll back over real SSH, with the plan the check
 * computed. What a user notices: the findings and the plan speak nft, the NOTRACK step
 * shows `nft add rule inet conntrack_ops ...`, the rules are in the gateway's nft table
 * after the apply and the table is gone after the roll back, and the gateway never had
 * to look for a command it does not have (its not-found tripwire stays empty).
 *
 * Pressure: this gateway's inventory entry sets warnPercent to 1 (a few thousand real
 * flows through the NAT are then "high"), so the check offers the management NOTRACK
 * step without filling 80 % of the host-wide 262,144.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CheckReport } from '../../src/core/model.js';
import { gatewayConfigSchema, type GatewayConfig } from '../../src/config/inventory.js';
import { renderReportText } from '../../src/cli/render-text.js';
import { renderFindings } from '../../src/slack/blocks/findings.js';
import { fillScenario, gatewayExec, labDown, labUp, sshExec, type Lab } from '../../lab/index.js';
import { notFoundLogPath } from '../../lab/hidden-tools.js';
import { approvedPlan, checkReport, openHarness, type Harness } from './helpers/harness.js';

const IPTABLES_FLAVOURS = ['iptables', 'ip6tables', 'iptables-save', 'ip6tables-save', 'iptables-legacy-save', 'iptables-nft', 'xtables-nft-multi', 'iptables-restore'];

let lab: Lab;
let h: Harness;
let config: GatewayConfig;
let report: CheckReport;

async function notFound(): Promise<string> {
  return readFile(notFoundLogPath(lab.dir), 'utf8');
}

async function ourNftTable(): Promise<{ exists: boolean; text: string }> {
  const r = await gatewayExec(lab, ['nft', 'list', 'table', 'inet', 'conntrack_ops'], { check: false });
  return { exists: r.exitCode === 0, text: r.stdout + r.stderr };
}

async function sysctl(key: string): Promise<number> {
  return Number((await gatewayExec(lab, ['cat', `/proc/sys/net/netfilter/${key}`])).stdout.trim());
}

beforeAll(async () => {
  lab = await labUp({ clients: 1, sourcesPerClient: 2, firewall: 'nft', withoutTools: ['iptables'] });
  config = gatewayConfigSchema.parse({ ...lab.inventoryEntry, thresholds: { warnPercent: 1 } });
  h = await openHarness(lab.name, config);
}, 120_000);

afterAll(async () => {
  await h?.close();
  if (lab) await labDown(lab);
});

describe('nft-only gateway (no iptables binary at all)', () => {
  it("the bot's commands cannot find any iptables, however PATH is set; nft is there; the tripwire catches a missing command", async () => {
    const plain = await sshExec(lab, 'command -v iptables');
    expect(plain.exitCode).toBe(1);
    expect(plain.stdout).toBe('');
    const wide = await sshExec(lab, `PATH="$PATH:/usr/sbin:/sbin:/usr/bin:/bin"; for t in ${IPTABLES_FLAVOURS.join(' ')} nft; do command -v "$t"; done; ls /usr/sbin /usr/bin | grep -c tables`);
    expect(wide.stdout.trim().split('\n')).toEqual(['/usr/sbin/nft', '0']);
    // The NAT is nftables' (the host's own iptables, in the lab's namespace, sees no rule).
    expect((await gatewayExec(lab, ['nft', 'list', 'table', 'ip', 'nat'])).stdout).toContain('oifname "wan0" masquerade');
    // The tripwire: a command the gateway does not have is logged, then the log is emptied.
    const called = await sshExec(lab, 'iptables -t raw -S');
    expect(called.exitCode).toBe(127);
    expect(await notFound()).toBe('iptables -t raw -S\n');
    await writeFile(notFoundLogPath(lab.dir), '');
  });

  it('check: the firewall is nft, the findings and the plan speak nft only, NOTRACK is `nft add rule inet conntrack_ops ...`', async () => {
    // Real flows through the NAT (nft masquerade): TIME_WAIT churn and idle ESTABLISHED.
    await fillScenario(lab, ['timewait']);
    report = await checkReport(h);
    expect(report.facts.firewallBackend).toBe('nft');
    expect(report.facts.natRules.length).toBeGreaterThan(0);
    expect(report.facts.natRules.every((r) => r.backend === 'nft' && r.kind === 'masquerade')).toBe(true);
    expect(report.facts.externalAddresses).toContain(lab.externalAddress);
    expect(report.findings.map((f) => f.id)).toContain('table-high');
    expect(report.findings.map((f) => f.id)).toContain('management-ssh-tracked');

    const step = report.plan.steps.find((s) => s.kind === 'notrack-management');
    expect(step, JSON.stringify(report.plan)).toBeDefined();
    const src = lab.mgmt.hostAddress;
    expect(step?.key).toBe(`management SSH ${src} -> :22/tcp (nft)`);
    expect(step?.proposed.split('\n')).toEqual([
      `nft add rule inet conntrack_ops prerouting ip saddr ${src} tcp dport 22 notrack comment "conntrack-ops:mgmt-ssh"`,
      `nft add rule inet conntrack_ops output ip daddr ${src} tcp sport 22 notrack comment "conntrack-ops:mgmt-ssh"`,
    ]);

    // What people read: the terminal report and the Slack message name nft, never iptables.
    const text = renderReportText(report);
    const slack = JSON.stringify(
      renderFindings(report, { planId: 'p-nftonly1', requestedBy: 'U1', expiresAt: new Date(Date.now() + 600_000).toISOString(), approvable: true }),
    );
    for (const shown of [text, slack, JSON.stringify(report.findings), JSON.stringify(report.plan)]) {
      expect(shown).not.toMatch(/iptables/i);
    }
    expect(text).toContain('nft add rule inet conntrack_ops prerouting');
    expect(slack).toContain('nft add rule inet conntrack_ops prerouting');
    expect(await notFound()).toBe('');
  });

  let planId = '';
  let sysctlSteps: { key: string; current: number; proposed: number }[] = [];

  it("apply: the plan's NOTRACK step (and its timeout steps) land in the gateway's nft table, verified; a fresh check sees them", async () => {
    const steps = report.plan.steps.filter((s) => s.writable);
    expect(steps.map((s) => s.kind)).toContain('notrack-management');
    sysctlSteps = steps.filter((s) => s.kind === 'sysctl').map((s) => ({ key: s.key, current: Number(s.current), proposed: Number(s.proposed) }));
    expect(sysctlSteps.length).toBeGreaterThan(0);
    const plan = await approvedPlan(h, report, steps);
    planId = plan.planId;
    const before = await ourNftTable();
    expect(before.exists).toBe(false);
    const out = await h.engine.apply(plan.planId, { actor: 'U-approver', optionalSteps: steps.filter((s) => s.optional).map((s) => s.id) });
    expect(out.outcome, `${out.message}\n${out.problems.join('\n')}`).toBe('applied');
    console.log(`[measure] nft-only apply: ${out.steps.map((s) => `${s.stepId}=${s.status}`).join(', ')}`);
    const notrack = out.steps.find((s) => s.stepId === 'notrack-management');
    expect(notrack?.status).toBe('applied');
    expect(notrack?.detail).toContain('nft inet conntrack_ops prerouting');
    expect(out.verifyReport?.ok).toBe(true);
    expect(out.verify.find((c) => c.name === 'notrack-management')?.detail).toBe('2/2 NOTRACK rules present (nft)');
    for (const s of sysctlSteps) expect(await sysctl(s.key), s.key).toBe(s.proposed);

    const table = await ourNftTable();
    expect(table.exists).toBe(true);
    expect(table.text).toMatch(new RegExp(`chain prerouting \\{[^}]*ip saddr ${lab.mgmt.hostAddress.replace(/\./g, '\\.')} tcp dport 22 notrack comment "conntrack-ops:mgmt-ssh"`));
    expect(table.text).toMatch(new RegExp(`chain output \\{[^}]*ip daddr ${lab.mgmt.hostAddress.replace(/\./g, '\\.')} tcp sport 22 notrack comment "conntrack-ops:mgmt-ssh"`));
    expect(table.text.match(/conntrack-ops:mgmt-ssh/g)).toHaveLength(2);

    // The next check reads our rules from `nft list ruleset`: management SSH is exempt now.
    const after = await checkReport(h);
    expect(after.facts.managedNotrackRules).toHaveLength(2);
    expect(after.findings.map((f) => f.id)).not.toContain('management-ssh-tracked');
    expect(after.plan.steps.find((s) => s.kind === 'notrack-management')).toBeUndefined();
    expect(await notFound()).toBe('');
  });

  it('roll back: our nft table is gone, the timeouts are back, and the gateway never looked for a command it lacks', async () => {
    const out = await h.engine.rollback(planId, { actor: 'U-approver' });
    expect(out.outcome, out.message).toBe('rolled-back');
    expect(out.restore?.ok).toBe(true);
    const table = await ourNftTable();
    expect(table.exists).toBe(false);
    expect(table.text).toMatch(/No such file or directory/);
    for (const s of sysctlSteps) expect(await sysctl(s.key), s.key).toBe(s.current);
    // The lab's NAT is untouched (the roll back drops only the bot's own table).
    expect((await gatewayExec(lab, ['nft', 'list', 'table', 'ip', 'nat'])).stdout).toContain('masquerade');
    expect((await h.plans.get(planId))?.status).toBe('rolled-back');
    expect(await notFound()).toBe('');
  });
});
