/**
 * The pure parts of the apply feature: idle selection, parsers of gateway output, the
 * sudoers (current, accepted by visudo, the helper only; every privileged template has a helper line),
 * the follow-up verdict.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseApplyState } from '../../src/apply/gateway-io.js';
import { parseEstablished, selectIdle, NETLINK_DELETE_SCRIPT } from '../../src/apply/idle-delete.js';
import { modprobeFileFor, parseModprobeHashsize, parseSysctlText, sysctlFileFor } from '../../src/apply/persist.js';
import { parseNftTable } from '../../src/apply/rules.js';
import { DOC_SUDO_USER, renderSudoers } from '../../src/gateway/sudo-helper/sudoers.js';
import { renderHelperScript } from '../../src/gateway/sudo-helper/script.js';
import { HELPER_PATH } from '../../src/gateway/sudo-helper/policy.js';
import { commands } from '../../src/gateway/commands.js';
import { followUpVerdict } from '../../src/apply/follow-up.js';
import { followUpSchema } from '../../src/apply/model.js';
import { buildReport } from '../../src/check/run-check.js';
import { gatewayConfigSchema } from '../../src/config/inventory.js';
import { makeFacts, makeTable, saturatedFacts, tableFull } from '../support/facts-fixtures.js';

describe('idle selection', () => {
  const listing = [
    'tcp      6 342000 ESTABLISHED src=198.18.0.2 dst=198.19.0.2 sport=1000 dport=80 src=198.19.0.2 dst=198.19.0.1 sport=80 dport=1000 [ASSURED] mark=0 use=1 id=11',
    'tcp      6 431000 ESTABLISHED src=198.18.0.2 dst=198.19.0.2 sport=1001 dport=80 src=198.19.0.2 dst=198.19.0.1 sport=80 dport=1001 [ASSURED] mark=0 use=1 id=12',
    'tcp      6 3000 ESTABLISHED src=198.18.0.2 dst=198.19.0.2 sport=1002 dport=80 src=198.19.0.2 dst=198.19.0.1 sport=80 dport=1002 [ASSURED] mark=0 zone=7 use=1 id=13',
    'tcp      6 100 ESTABLISHED src=2001:2::2 dst=2001:2::9 sport=1003 dport=443 [UNREPLIED] src=2001:2::9 dst=2001:2::2 sport=443 dport=1003 mark=0 use=1 id=14',
    'garbage line',
  ].join('\n');

  it('parses tuples, zone and id; counts what it cannot parse', () => {
    const { entries, unparsed } = parseEstablished(listing);
    expect(unparsed).toBe(1);
    expect(entries).toHaveLength(4);
    expect(entries[2]).toMatchObject({ src: '198.18.0.2', sport: 1002, zone: 7, id: 13, remaining: 3000 });
    expect(entries[3]).toMatchObject({ src: '2001:2::2', dport: 443 });
  });

  it('deletes only entries refreshed under the old timeout and idle longer than the new one', () => {
    const { entries } = parseEstablished(listing);
    const picked = selectIdle(entries, 432000, 3600).map((e) => e.sport);
    // 1000: idle 25 h -> delete; 1001: idle 1000 s -> keep; 1002/1003: remaining <= new timeout -> keep.
    expect(picked).toEqual([1000]);
  });

  it('the netlink script can travel in single quotes', () => {
    expect(NETLINK_DELETE_SCRIPT).not.toContain("'");
    expect(() => commands.netlinkDelete(NETLINK_DELETE_SCRIPT)).not.toThrow();
  });
});

describe('gateway output parsers', () => {
  it('reads the apply state script output', () => {
    const st = parseApplyState(
      'sysctl nf_conntrack_max 262144\nsysctl nf_conntrack_tcp_timeout_established 432000\nsysctl nf_conntrack_x 1 2\nhashsize 65536\nmem MemTotal: 1000 kB\nmem MemAvailable: 500 kB\nslab 320\nnetns net:[4026531840]\nconntrack-tool yes\npython3 no\niptables yes\nnft yes\nnow 1700000000\n',
    );
    expect(st.sysctl).toEqual({ nf_conntrack_max: 262144, nf_conntrack_tcp_timeout_established: 432000 });
    expect(st).toMatchObject({ hashsize: 65536, memTotalKb: 1000, slabBytes: 320, hasPython3: false, hasNft: true });
  });

  it('finds our nft rules and their handles', () => {
    const text = [
      'table inet conntrack_ops { # handle 9',
      '\tchain prerouting { # handle 1',
      '\t\ttype filter hook prerouting priority raw; policy accept;',
      '\t\tip saddr 198.18.0.1 tcp dport 22 notrack comment "conntrack-ops:mgmt-ssh" # handle 3',
      '\t}',
      '\tchain output { # handle 2',
      '\t\ttype filter hook output priority raw; policy accept;',
      '\t}',
      '}',
    ].join('\n');
    expect(parseNftTable(text)).toEqual([{ chain: 'prerouting', body: 'ip saddr 198.18.0.1 tcp dport 22 notrack comment "conntrack-ops:mgmt-ssh"', handle: 3 }]);
  });

  it('managed files carry the plan id and round-trip', () => {
    const text = sysctlFileFor('plan-1234', new Map([['nf_conntrack_max', 524288]]));
    expect(text.split('\n')[0]).toBe('# managed by conntrack-ops, plan plan-1234');
    expect(parseSysctlText(text).get('nf_conntrack_max')).toBe(524288);
    expect(() => parseSysctlText('kernel.panic = 1')).toThrow();
    expect(parseModprobeHashsize(modprobeFileFor('plan-1234', 131072))).toBe(131072);
  });
});

describe('sudoers: the helper and nothing else', () => {
  it('docs/sudoers.conntrack-ops and docs/conntrack-ops-helper are the current renderings', () => {
    expect(readFileSync('docs/sudoers.conntrack-ops', 'utf8')).toBe(renderSudoers(DOC_SUDO_USER));
    expect(readFileSync('docs/conntrack-ops-helper', 'utf8')).toBe(renderHelperScript());
  });

  it('visudo accepts it, and it names one command: the helper', () => {
    const text = renderSudoers(DOC_SUDO_USER);
    const rules = text.split('\n').filter((l) => l && !l.startsWith('#') && !l.startsWith('Defaults'));
    expect(rules).toEqual([`conntrack-ops ALL=(root) NOPASSWD: ${HELPER_PATH}`]);
    const visudo = ['/usr/sbin/visudo', '/sbin/visudo'].find((p) => existsSync(p));
    if (!visudo) return; // sudo not installed here: the syntax check runs where it is
    execFileSync(visudo, ['-c', '-q', '-f', 'docs/sudoers.conntrack-ops']);
  });

  it('every privileged template has a helper line (sudo -n <helper> <verb> <plain tokens>), none a raw sudo command', () => {
    const rule = { family: 'ipv4' as const, chain: 'PREROUTING' as const, saddr: '198.18.0.1', proto: 'tcp' as const, dport: 22, tag: 'conntrack-ops:mgmt-ssh' as const };
    const all = [
      commands.setSysctl('nf_conntrack_max', 1024).command,
      commands.writeHashsize(4096).command,
      commands.writeManagedFile('sysctl', 'x\n').write.command,
      commands.writeManagedFile('modprobe', 'x\n').install,
      commands.iptablesNotrack('add', rule),
      commands.nftAddRule(rule),
      commands.nftAddChain('output'),
      commands.conntrackLoadFile(),
      commands.listEstablished(),
      commands.testWritableSysctl('nf_conntrack_max'),
      commands.conntrackStats(),
      commands.writeGatewaySnapshot('plan-1234abcd'),
    ];
    for (const c of all) {
      expect(c.privileged).toBe(true);
      expect(c.sudoShell).toMatch(new RegExp(`^sudo -n ${HELPER_PATH} [a-z-]+( [A-Za-z0-9._:/-]+)*$`));
    }
    // The kernel log keeps its filter after the helper's fixed-flag dmesg.
    expect(commands.tableFullLog().sudoShell).toMatch(new RegExp(`^sudo -n ${HELPER_PATH} kernel-log 2>/dev/null \\| grep`));
    // The netlink script is for root sessions only: no helper verb.
    expect(commands.netlinkDelete('print(1)').sudoShell).toBeNull();
  });
});

describe('follow-up verdict', () => {
  const followUp = { jobId: 'j', dueAt: '2025-01-15T11:55:00Z', baseline: { at: '2025-01-15T11:50:00.000Z', gatewayAt: '2025-01-15T11:50:00.000Z', drop: 48_000, earlyDrop: 0, insertFailed: 0, tableFullLines: 0 } };
  const config = gatewayConfigSchema.parse({ host: '198.18.0.2', user: 'root', identityFile: '/k', hostKey: 'SHA256:' + 'A'.repeat(43) });
  const report = (facts: ReturnType<typeof makeFacts>) => buildReport('gw-3', config, facts, makeTable(), {});

  it('drops and "table full" lines of this gateway after the verify: still dropping', () => {
    const v = followUpVerdict(followUp, report(saturatedFacts()));
    expect(v.stopped).toBe(false);
    expect(v.drop).toBe(213);
    // 11:58 and 11:59:30 are after the verify at 11:50; 11:30 is before; 11:59:40 names another netns.
    expect(v.tableFullLines).toBe(2);
    expect(v.summary).toMatch(/^Still dropping .* drop \+213.*"table full" lines 2; table now 262144\/262144 \(100%\)/);
  });

  it('no new drop and no new line since the verify: drops stopped', () => {
    const v = followUpVerdict(followUp, report(makeFacts({ stats: { drop: 48_000 }, kernelLog: [tableFull('2025-01-15T11:30:00.000Z')] })));
    expect(v).toMatchObject({ stopped: true, drop: 0, tableFullLines: 0 });
    expect(v.summary).toMatch(/^Drops stopped/);
  });

  it("places kernel-log lines against the gateway's clock, not the bot's", () => {
    // The gateway's clock runs 20 min behind the bot: its verify was at 11:30 gateway time.
    // A line stamped 11:40 (gateway clock) came after the verify although it reads earlier
    // than the bot's 11:50; a line at 11:20 came before it.
    const skewed = { ...followUp, baseline: { ...followUp.baseline, gatewayAt: '2025-01-15T11:30:00.000Z' } };
    const facts = makeFacts({ stats: { drop: 48_000 }, kernelLog: [tableFull('2025-01-15T11:20:00.000Z'), tableFull('2025-01-15T11:40:00.000Z')] });
    expect(followUpVerdict(skewed, report(facts))).toMatchObject({ stopped: false, tableFullLines: 1 });
    // A follow-up stored before the gateway clock was recorded falls back to the bot's time.
    const old = followUpSchema.parse({ ...followUp, baseline: { ...followUp.baseline, gatewayAt: undefined } });
    expect(old.baseline.gatewayAt).toBeNull();
    expect(followUpVerdict(old, report(facts))).toMatchObject({ stopped: true, tableFullLines: 0 });
  });

  it('counters smaller than at the verify were reset (reboot): all of them count as new', () => {
    const v = followUpVerdict(followUp, report(makeFacts({ stats: { drop: 7 } })));
    expect(v).toMatchObject({ stopped: false, drop: 7 });
  });
});
