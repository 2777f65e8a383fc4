/**
 * A gateway user that is not root, limited by exactly the sudoers file the README ships
 * (one line: the root-owned helper, docs/sudoers.conntrack-ops): the check reads the whole
 * table through the helper, the apply changes, verifies and rolls back through it (the
 * snapshot's gateway copy too), and anything else is refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GatewayConfig } from '../../src/config/inventory.js';
import type { CheckReport } from '../../src/core/model.js';
import { commands } from '../../src/gateway/commands.js';
import { readPoll } from '../../src/diagnostics/poll-script.js';
import { ensureRule, readNft, removeRule } from '../../src/apply/rules.js';
import { flowRules, managementRules } from '../../src/core/notrack.js';
import { readManaged, removeManaged, writeManaged } from '../../src/apply/gateway-io.js';
import { modprobeFileFor, sysctlFileFor } from '../../src/apply/persist.js';
import { conntrackCount, fillScenario, gatewayExec, labDown, labUp, sshExec, type Lab } from '../../lab/index.js';
import { GATEWAY_SNAPSHOT_DIR } from '../../src/gateway/sudo-helper/policy.js';
import { addHelperSudoUser } from '../support/sudo-gateway-user.js';
import { approvedPlan, checkReport, openHarness, type Harness } from './helpers/harness.js';

const USER = 'cto';
const EST = 'nf_conntrack_tcp_timeout_established';

let lab: Lab;
let h: Harness;
let config: GatewayConfig;
let report: CheckReport;

async function sysctl(key: string): Promise<string> {
  return (await gatewayExec(lab, ['cat', `/proc/sys/net/netfilter/${key}`])).stdout.trim();
}

async function mgmtRules(): Promise<number> {
  return (await gatewayExec(lab, ['iptables', '-t', 'raw', '-S'])).stdout.split('\n').filter((l) => l.includes('conntrack-ops:mgmt-ssh')).length;
}

beforeAll(async () => {
  lab = await labUp({ clients: 1, sourcesPerClient: 2 });
  await addHelperSudoUser(lab, USER);
  // 400 dead ESTABLISHED entries (under the sudo path's 500-entry cap) and some real traffic;
  // thresholds from 1 % so this small table counts as pressure and gets a plan.
  await fillScenario(lab, ['dead-established', 'timewait', 'healthy'], { dead: 400, timewait: 3000, established: 0 });
  config = { ...lab.inventoryEntry, user: USER, sudo: true, thresholds: { warnPercent: 1, critPercent: 95, heavyHitterShare: 0.25 } };
  h = await openHarness(lab.name, config);
  report = await checkReport(h);
}, 180_000);

afterAll(async () => {
  await h?.close();
  if (lab) await labDown(lab);
});

describe(`a non-root gateway user (${USER}) limited by the shipped sudoers (the helper only)`, () => {
  it('the check runs as that user and reads the whole table and the counters through sudo', async () => {
    const me = await h.pool.provider(lab.name, config);
    try {
      expect((await me.session.exec(commands.script('who am I (test)', 'id -un'))).stdout.trim()).toBe(USER);
      // The watch's poll runs its kernel-log read through the helper too.
      expect((await readPoll(me.session)).max).toBe(Number(await sysctl('nf_conntrack_max')));
    } finally {
      me.release();
    }
    const kernel = await conntrackCount(lab);
    expect(Math.abs(report.table.entries - kernel)).toBeLessThanOrEqual(Math.max(20, kernel * 0.05));
    expect(report.table.entries).toBeGreaterThanOrEqual(400);
    expect(report.states['tcp ESTABLISHED']).toBeGreaterThanOrEqual(400);
    expect(report.facts.writable[EST]).toBe(true);
    const est = report.plan.steps.find((s) => s.key === EST);
    expect(est?.writable).toBe(true);
    expect(report.plan.steps.some((s) => s.kind === 'delete-idle-entries' && s.writable)).toBe(true);
  });

  it('apply (timeout, deleting the dead entries, NOTRACK for management SSH), verify and roll back, all through sudo', async () => {
    const steps = report.plan.steps.filter((s) => s.writable && (s.key === EST || s.kind === 'delete-idle-entries' || s.kind === 'notrack-management'));
    expect(steps.map((s) => s.kind).sort()).toEqual(['delete-idle-entries', 'notrack-management', 'sysctl']);
    const plan = await approvedPlan(h, report, steps);
    const out = await h.engine.apply(plan.planId, { actor: 'U-approver', optionalSteps: steps.filter((s) => s.optional).map((s) => s.id) });
    expect(out.outcome, `${out.message}\n${out.problems.join('\n')}`).toBe('applied');
    expect(await sysctl(EST)).toBe(String(steps.find((s) => s.key === EST)?.proposed));
    expect(out.verifyReport?.deletes).toMatchObject({ method: 'conntrack-R', candidates: 400, deleted: 400, failed: 0 });
    expect(await mgmtRules()).toBe(2);
    expect(out.verifyReport?.ok).toBe(true);

    // The snapshot's gateway copy, written through the helper: root only, the same snapshot as Redis's.
    const file = `${GATEWAY_SNAPSHOT_DIR}/${plan.planId}.json`;
    const kept = await sshExec(lab, `stat -c '%a %U' ${GATEWAY_SNAPSHOT_DIR} ${file} && cat ${file}`);
    expect(kept.exitCode, kept.stderr).toBe(0);
    const [dirMode, fileMode, json] = kept.stdout.split('\n');
    expect([dirMode, fileMode]).toEqual(['700 root', '600 root']);
    expect(JSON.parse(json ?? '').snapshot).toEqual(await h.records.snapshot(plan.planId));
    const me = await h.pool.provider(lab.name, config);
    try {
      const direct = await me.session.exec(commands.script('read the copy as the bot user (test)', `cat ${file}`), { allowFailure: true });
      expect(direct.code).not.toBe(0);
    } finally {
      me.release();
    }

    // Redis loses the snapshot and the step record: the roll back restores the gateway's copy.
    await h.redis.hdel(h.records.key(plan.planId), 'snapshot', 'steps');
    const back = await h.engine.rollback(plan.planId, { actor: 'U-approver' });
    expect(back.outcome, `${back.message}\n${back.notes.join('\n')}`).toBe('rolled-back');
    expect(back.notes.join('\n')).toContain("the gateway's copy was restored");
    expect(await sysctl(EST)).toBe('432000');
    expect(await mgmtRules()).toBe(0);
    // Nothing left to roll back: the copy is gone.
    expect((await sshExec(lab, `test -e ${file}`)).exitCode).not.toBe(0);
  });

  it('the managed files through the helper: written, read back, loaded with sysctl -p, removed', async () => {
    const TW = 'nf_conntrack_tcp_timeout_time_wait';
    const before = await sysctl(TW);
    const me = await h.pool.provider(lab.name, config);
    try {
      const text = sysctlFileFor('plan-sudo-files', new Map([[TW, 61]]));
      await writeManaged(me.session, 'sysctl', text);
      expect((await readManaged(me.session, 'sysctl')).content).toBe(text);
      const loaded = await me.session.exec(commands.loadSysctlFile());
      expect(loaded.code).toBe(0);
      expect(await sysctl(TW)).toBe('61');
      await writeManaged(me.session, 'modprobe', modprobeFileFor('plan-sudo-files', 131072));
      await removeManaged(me.session, 'modprobe');
      await removeManaged(me.session, 'sysctl');
      expect((await readManaged(me.session, 'sysctl')).exists).toBe(false);
      // A file content the helper refuses never lands (and writeManaged says so).
      await expect(writeManaged(me.session, 'sysctl', 'kernel.core_pattern = |/tmp/x\n')).rejects.toThrow(/refused/);
      expect((await readManaged(me.session, 'sysctl')).exists).toBe(false);
    } finally {
      me.release();
      await gatewayExec(lab, ['sh', '-c', `echo ${before} > /proc/sys/net/netfilter/${TW}`]);
    }
  });

  it('the nft backend through the helper: our table, chains and rules added, found by handle, removed', async () => {
    const mgmt = managementRules({ family: 'ipv4', source: lab.inventoryEntry.managementSource ?? '', port: lab.inventoryEntry.port });
    const flow = flowRules({ family: 'ipv4', source: lab.clientIps[0] ?? '', destination: lab.serverAddress });
    const me = await h.pool.provider(lab.name, config);
    try {
      for (const r of [...mgmt, ...flow]) expect(await ensureRule(me.session, 'nft', r)).toBe(true);
      const root = await gatewayExec(lab, ['nft', '-a', 'list', 'table', 'inet', 'conntrack_ops']);
      expect(root.stdout.split('\n').filter((l) => l.includes('notrack comment')).length).toBe(6);
      for (const r of [...mgmt, ...flow]) expect(await removeRule(me.session, 'nft', r)).toBe(true);
      expect((await readNft(me.session)).rules).toEqual([]);
      await me.session.exec(commands.nftDeleteTable());
      expect((await readNft(me.session)).exists).toBe(false);
    } finally {
      me.release();
    }
  });

  it('anything but the helper is refused', async () => {
    const me = await h.pool.provider(lab.name, config);
    try {
      for (const cmd of ['sudo -n /bin/sh -c id', 'sudo -n /usr/sbin/conntrack -F', 'sudo -n /usr/bin/tee /etc/passwd', 'sudo -n /usr/bin/true', 'sudo -n /usr/bin/dmesg']) {
        const r = await me.session.exec(commands.script('outside the allow-list (test)', `${cmd} </dev/null`), { allowFailure: true });
        expect(r.code, cmd).not.toBe(0);
      }
    } finally {
      me.release();
    }
    expect(await conntrackCount(lab)).toBeGreaterThan(0);
  });
});
