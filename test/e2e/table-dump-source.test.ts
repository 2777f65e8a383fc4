/**
 * Where the check's table dump comes from, on a real lab gateway over real SSH:
 * /proc/net/nf_conntrack where it exists (the kernel walks it faster than `conntrack -L`
 * decodes netlink), `conntrack -L` when the gateway's mount namespace has no
 * /proc/net/nf_conntrack. Both give the same numbers and the same findings on one table,
 * and the entry count equals `conntrack -C`.
 *
 * The table holds what differs between the two formats on this kernel: IPv6 entries (full
 * form in /proc), non-default zones (zone= is printed by /proc always, by the tool only
 * when not 0), marks, [UNREPLIED] and [ASSURED], plus real NAT traffic. Nothing in it
 * changes between the two checks (inserted entries with long timers, UDP timeout raised).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCheck } from '../../src/check/run-check.js';
import type { CheckReport } from '../../src/core/model.js';
import { TABLE_DUMP_COMMAND } from '../../src/diagnostics/facts-script.js';
import { commands } from '../../src/gateway/commands.js';
import { SessionPool } from '../../src/gateway/session-pool.js';
import { conntrackCount, fillScenario, flushTable, gatewayExec, labDown, labUp, type Lab } from '../../lab/index.js';
import { hideProcNet, restoreMounts } from '../support/gateway-mount-ns.js';

let lab: Lab;
let pool: SessionPool;

/** Entries only `conntrack -I` makes here: IPv6, zones, marks, unreplied, all with a day on their timers. */
function insertedEntries(): string {
  const lines: string[] = [];
  for (let i = 0; i < 3000; i++) {
    const port = 20_000 + i;
    // IPv6, assured, zone 7 (printed by both formats)
    lines.push(
      `-I -s 2001:db8:1::5 -d 2001:db8:2::1 -p tcp --sport ${port} --dport 443 -r 2001:db8:2::1 -q 2001:db8:1::5 --reply-port-src 443 --reply-port-dst ${port} --state ESTABLISHED -u SEEN_REPLY,ASSURED -t 86400 --zone 7`,
    );
    // IPv4 UDP, [UNREPLIED], NATed, zone 3 and a mark
    lines.push(
      `-I -s 198.18.9.1 -d 198.19.9.2 -p udp --sport ${port} --dport 53 -r 198.19.9.2 -q 198.19.0.1 --reply-port-src 53 --reply-port-dst ${port} -t 86400 --zone 3 -m 5`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** The first entry line the dump command prints over the warm session (after its two header lines). */
async function firstDumpLine(): Promise<string> {
  const lease = await pool.provider(lab.name, lab.inventoryEntry);
  try {
    const r = await lease.session.exec(commands.script('table dump (test)', `(${TABLE_DUMP_COMMAND}) | sed -n 3p`), { timeoutMs: 30_000 });
    return r.stdout.trim();
  } finally {
    lease.release();
  }
}

async function check(): Promise<CheckReport> {
  return runCheck({ gatewayName: lab.name, config: lab.inventoryEntry, sessions: pool.provider });
}

/**
 * What the two dumps must agree on: every number of the table summary, and the findings.
 * One exception: the check's own SSH connection is a tracked ESTABLISHED entry whose timer
 * is the short one (unacknowledged data) only while data is in flight, so the short-timer
 * count is compared apart (at most that one entry apart).
 */
function comparable(report: CheckReport) {
  const { durationMs: _duration, establishedIdle, ...table } = report.table;
  const { shortTimer, ...idle } = establishedIdle;
  return {
    shortTimer,
    same: {
      count: report.conntrack.count,
      table: { ...table, establishedIdle: idle },
      states: report.states,
      findings: report.findings.map((f) => {
        const { onShortTimer: _own, ...evidence } = f.evidence;
        return { id: f.id, severity: f.severity, title: f.title, evidence };
      }),
    },
  };
}

beforeAll(async () => {
  lab = await labUp({ clients: 2, sourcesPerClient: 4 });
  pool = new SessionPool({ healthIntervalMs: 30_000 });
  await pool.watch(lab.name, lab.inventoryEntry);
  // Only inside the lab gateway's namespace: the fill's UDP entries outlive both checks.
  for (const key of ['nf_conntrack_udp_timeout', 'nf_conntrack_udp_timeout_stream']) {
    await gatewayExec(lab, ['sysctl', '-qw', `net.netfilter.${key}=900`]);
  }
  await flushTable(lab);
  await fillScenario(lab, ['heavy-hitter', 'dead-established'], { heavyHitterFlows: 20_000, heavyHitterShare: 0.4, timeoutMs: 120_000 });
  const file = join(lab.dir, 'inserted-entries.txt');
  await writeFile(file, insertedEntries());
  await gatewayExec(lab, ['conntrack', '-R', file]);
}, 240_000);

afterAll(async () => {
  pool?.close();
  if (lab) await labDown(lab);
});

describe('the table dump: /proc/net/nf_conntrack first, conntrack -L where it is missing', () => {
  it('gives the same numbers and findings both ways, and as many entries as conntrack -C', async () => {
    // /proc where it exists: its lines start with the address family
    expect(await firstDumpLine()).toMatch(/^ipv[46] +\d+ /);
    const kernelBefore = await conntrackCount(lab);
    const viaProc = await check();
    const kernelAfterProc = await conntrackCount(lab);
    expect(kernelAfterProc).toBe(kernelBefore);
    expect(Number((await gatewayExec(lab, ['conntrack', '-C'])).stdout.trim())).toBe(kernelBefore);
    // every entry seen (our own SSH session is untracked by the lab's NOTRACK rule or counted once)
    expect(viaProc.table.entries).toBe(kernelBefore);
    expect(viaProc.table.unparsed).toBe(0);
    expect(kernelBefore).toBeGreaterThan(40_000);
    // the IPv6 entries are counted under the compressed address, the zone-3 unreplied ones too
    const sources = viaProc.table.topSources.map((s) => `${s.key} ${s.count}`);
    expect(sources, sources.join(', ')).toContain('2001:db8:1::5 3000');
    expect(sources, sources.join(', ')).toContain('198.18.9.1 3000');
    expect(viaProc.findings.length).toBeGreaterThan(0);

    hideProcNet(lab);
    try {
      // the fallback: no /proc/net/nf_conntrack in the sshd's mount namespace -> conntrack -L
      expect(await firstDumpLine()).toMatch(/^(tcp|udp|icmp) +\d+ /);
      const viaTool = await check();
      expect(await conntrackCount(lab)).toBe(kernelBefore);
      expect(viaTool.table.entries).toBe(kernelBefore);
      const [tool, proc] = [comparable(viaTool), comparable(viaProc)];
      expect(tool.same).toEqual(proc.same);
      expect(Math.abs((tool.shortTimer ?? 0) - (proc.shortTimer ?? 0))).toBeLessThanOrEqual(1);
    } finally {
      restoreMounts(lab);
    }
    expect(await firstDumpLine()).toMatch(/^ipv[46] +\d+ /);
  }, 120_000);
});
