/**
 * A gateway with flow offload, for real: the VM gateway (lab/vm, Debian kernel 6.1) booted
 * with `flowOffload: true` has a software nft flowtable on its LAN and WAN links, and
 * `fill('offload')` holds long-lived TCP and UDP flows through its MASQUERADE that the kernel
 * offloads (`[OFFLOAD]`, no timeout, no state). This machine's kernel has no flow tables
 * (CONFIG_NF_FLOW_TABLE is not set), so only the VM can produce them.
 *
 * The real check runs over SSH and is compared with what the gateway says at the same moment:
 * its entry count with the kernel's, its offloaded count with the `[OFFLOAD]` lines of a raw
 * `cat /proc/net/nf_conntrack`, the NAT address's port use, and none of them counted as idle.
 *
 * Set CTO_SKIP_VM_TESTS=1 (or CONNTRACK_OPS_SKIP_VM=1) to skip, as the VM tests do.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderReportText } from '../../../src/cli/render-text.js';
import { VM_ADDRESSES, vmUp, type FillResult, type VmGateway } from '../../../lab/vm/index.js';
import { applyAndRollBackTimeout, checkReport, openHarness, type Harness } from '../../apply/helpers/harness.js';

const skip = process.env.CTO_SKIP_VM_TESTS === '1' || process.env.CONNTRACK_OPS_SKIP_VM === '1';

const TCP_FLOWS = 64;
const UDP_FLOWS = 64;
/** Entries that may come and go between two reads: the check's own SSH sessions. */
const TOLERANCE = 4;

let vm: VmGateway;
let h: Harness;
let fill: FillResult;

/** What the gateway itself says, in one exec: the kernel's count and the raw [OFFLOAD] lines. */
async function gatewayCounts(): Promise<{ count: number; offloadLines: number; conntrackC: number }> {
  const out = await vm.run(
    "cat /proc/sys/net/netfilter/nf_conntrack_count; grep -c 'OFFLOAD\\]' /proc/net/nf_conntrack; conntrack -C",
  );
  const [count, offloadLines, conntrackC] = out.trim().split('\n').map(Number);
  return { count: count as number, offloadLines: offloadLines as number, conntrackC: conntrackC as number };
}

describe.skipIf(skip)('flow offload on the VM gateway (nft flowtable, Debian kernel)', () => {
  beforeAll(async () => {
    const t0 = Date.now();
    vm = await vmUp({ bootMax: 4096, hashsize: 1024, flowOffload: true });
    console.log(`[measure] flow-offload VM up (image cached or built + boot): ${Date.now() - t0} ms (boot ${vm.state.bootMs} ms, kernel ${vm.state.kernel.kver})`);
    h = await openHarness(vm.name, { ...vm.inventoryEntry, managementSource: vm.managementSource });
    fill = await vm.fill('offload', { tcpFlows: TCP_FLOWS, flows: UDP_FLOWS });
    console.log(`[measure] fill offload: ${fill.durationMs} ms; tcp ${fill.tcpAnswered}/${fill.tcpFlows} answered, udp ${fill.assured}/${fill.flows}; count ${fill.count}, [OFFLOAD] ${fill.offloaded}`);
  }, 300_000);

  afterAll(async () => {
    await h?.close();
    await vm?.down();
  });

  it('the flowtable is there and the long-lived flows are offloaded by the kernel', async () => {
    const ruleset = await vm.run('nft list flowtables; nft list chain inet cto_offload forward');
    expect(ruleset).toMatch(/flowtable ft \{/);
    expect(ruleset).toMatch(/devices = \{ lan0, wan0 \}/);
    expect(ruleset).toMatch(/flow add @ft/);
    expect(fill.tcpAnswered).toBe(TCP_FLOWS);
    expect(fill.assured).toBe(UDP_FLOWS);
    expect(fill.offloaded).toBeGreaterThanOrEqual(TCP_FLOWS + UDP_FLOWS - TOLERANCE);
  });

  it('the check counts every entry and every offloaded one, with their NAT port use, none as idle', async () => {
    const before = await gatewayCounts();
    const t0 = Date.now();
    const report = await checkReport(h);
    const checkMs = Date.now() - t0;
    const after = await gatewayCounts();
    const offloaded = report.table.offloaded ?? { total: -1, hardware: -1 };
    console.log(
      `[measure] flow-offload check: ${checkMs} ms; entries ${report.table.entries} (kernel count ${before.count}/${after.count}, conntrack -C ${before.conntrackC}/${after.conntrackC}); ` +
        `offloaded ${offloaded.total} (raw [OFFLOAD] lines ${before.offloadLines}/${after.offloadLines}); unparsed ${report.table.unparsed}; ` +
        `states ${JSON.stringify(report.states)}; findings ${report.findings.map((f) => f.id).join(',')}`,
    );
    expect(report.table.unparsed, report.table.unparsedSample.join('\n')).toBe(0);
    // entries = the kernel's count (conntrack -C and /proc), within the SSH sessions that come and go
    for (const k of [before.count, after.count, before.conntrackC, after.conntrackC]) {
      expect(Math.abs(report.table.entries - k)).toBeLessThanOrEqual(TOLERANCE);
    }
    // offloaded entries are counted, as many as the raw dump's [OFFLOAD] lines
    expect(offloaded.total).toBeGreaterThan(0);
    expect(offloaded.hardware).toBe(0);
    expect(Math.abs(offloaded.total - before.offloadLines)).toBeLessThanOrEqual(TOLERANCE);
    expect(Math.abs(offloaded.total - after.offloadLines)).toBeLessThanOrEqual(TOLERANCE);
    expect(report.states['tcp OFFLOAD']).toBeGreaterThanOrEqual(TCP_FLOWS - TOLERANCE);
    expect(report.states['udp OFFLOAD']).toBeGreaterThanOrEqual(UDP_FLOWS - TOLERANCE);
    // their NAT address (the WAN side, MASQUERADE) and its port use per destination
    const portUse = (dport: number, proto: string) =>
      report.table.topPortUse.find((p) => p.natSource === VM_ADDRESSES.wanGateway && p.dst === VM_ADDRESSES.wanServer && p.dport === dport && p.proto === proto);
    expect(portUse(5001, 'tcp')?.count).toBe(TCP_FLOWS);
    expect(portUse(7, 'udp')?.count).toBe(UDP_FLOWS);
    expect(report.table.topSources.find((s) => s.key === VM_ADDRESSES.lanClient)?.count).toBeGreaterThanOrEqual(TCP_FLOWS + UDP_FLOWS - TOLERANCE);
    // not idle: offloaded TCP entries have no timeout to judge; only the management SSH entries are ESTABLISHED
    const idle = report.table.establishedIdle;
    expect(idle.total).toBe(report.states['tcp ESTABLISHED'] ?? 0);
    expect(idle.total).toBeLessThanOrEqual(TOLERANCE);
    expect(Object.values(idle.idleAtLeast).every((n) => n === 0)).toBe(true);
    // The 5-day ESTABLISHED timeout is still reported (a setting), but over the SSH entries only: 0 idle.
    const timeoutFinding = report.findings.find((f) => f.id === 'established-timeout-long');
    if (timeoutFinding) {
      expect(timeoutFinding.evidence['established']).toBe(idle.total);
      expect(timeoutFinding.title).toMatch(new RegExp(`: 0 of ${idle.total} ESTABLISHED entries idle >= 1 h`));
    }
    // what the user reads
    expect(renderReportText(report)).toContain(`offloaded to a flowtable ${offloaded.total}`);
  });

  it('the apply path works on the offloading gateway: a change applied, read back, rolled back; offloaded entries still counted', async () => {
    const r = await applyAndRollBackTimeout(h, await checkReport(h));
    console.log(`[measure] flow-offload VM apply: time_wait ${r.before} -> ${r.applied} -> rolled back to ${r.restored}`);
    expect(r.applied).toBe(r.proposed);
    expect(r.restored).toBe(r.before);
    const report = await checkReport(h);
    expect(report.table.offloaded?.total ?? 0).toBeGreaterThan(0);
  }, 120_000);
});
