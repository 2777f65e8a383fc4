/**
 * Outputs written by other people (issue threads, public repositories), fed to the parsers.
 * Each fixture under test/fixtures/wild/ cites its source on its first line.
 */
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { natRuleSchema } from '../../src/core/model.js';
import { parseConntrackStatsCli } from '../../src/diagnostics/parsers/conntrack-stats.js';
import { parseFacts } from '../../src/diagnostics/facts-script.js';
import { parsePollOutput } from '../../src/diagnostics/poll-script.js';
import { parseKernelLog } from '../../src/diagnostics/parsers/kernel-log.js';
import { parseIptablesSave, parseNftRuleset } from '../../src/diagnostics/parsers/nat-rules.js';
import { parseConntrackLine } from '../../src/diagnostics/parsers/conntrack-line.js';
import { parseNftJson } from '../../src/diagnostics/parsers/nft-json.js';
import { aggregateLines } from '../../src/analysis/table/aggregate-lines.js';
import { IDLE_THRESHOLDS } from '../../src/plan/compute.js';

/** The fixture without its first (citation) line. */
const wild = (name: string): string => {
  const text = readFileSync(new URL(`../fixtures/wild/${name}`, import.meta.url), 'utf8');
  expect(text.startsWith('# source: ')).toBe(true);
  return text.slice(text.indexOf('\n') + 1);
};

describe('kernel log in the wild', () => {
  it('"expectation table full" is not the conntrack table being full (OpenWrt logread)', () => {
    const events = parseKernelLog(wild('logread-expectation-full.txt'), { netnsInode: null });
    expect(events.filter((e) => e.kind === 'table-full')).toEqual([]);
    expect(events.map((e) => [e.kind, e.at])).toEqual([
      ['expect-full', '2022-12-16T10:09:21.000Z'],
      ['expect-full', '2022-12-16T10:09:21.000Z'],
      ['expect-full', '2022-12-16T10:09:21.000Z'],
      ['expect-full', '2022-12-16T10:09:22.000Z'],
      // "47 callbacks suppressed" belongs to an expectation message: not kept
      ['expect-full', '2022-12-16T10:09:26.000Z'],
    ]);
  });

  it('syslog without a year takes it from the reference time, one year back when that is in the future', () => {
    const text = wild('syslog-expectation-full.txt');
    const sameYear = parseKernelLog(text, { netnsInode: null, referenceTime: '2022-07-03T12:00:00.000Z' });
    expect(sameYear.map((e) => [e.kind, e.at])).toEqual([
      ['expect-full', '2022-07-03T10:07:53.000Z'],
      ['expect-full', '2022-07-03T10:07:53.000Z'],
      ['expect-full', '2022-07-03T10:07:56.000Z'],
      ['expect-full', '2022-07-03T10:08:00.000Z'],
    ]);
    const nextJanuary = parseKernelLog(text, { netnsInode: null, referenceTime: '2023-01-05T00:00:00.000Z' });
    expect(nextJanuary[0]?.at).toBe('2022-07-03T10:07:53.000Z');
    // no reference time: the year is unknown, so no time
    expect(parseKernelLog(text, { netnsInode: null }).every((e) => e.at === null)).toBe(true);
  });

  it('reads `dmesg -T` wall-clock times', () => {
    const events = parseKernelLog(wild('dmesg-T-table-full.txt'), { netnsInode: null });
    expect(events.map((e) => [e.kind, e.at])).toEqual([
      ['table-full', '2018-11-20T22:30:22.000Z'],
      ['table-full', '2018-11-20T22:30:27.000Z'],
      ['table-full', '2018-11-20T22:30:27.000Z'],
      ['table-full', '2018-11-20T22:30:27.000Z'],
    ]);
    // "how many in the last 5 minutes" now has an answer
    const since = Date.parse('2018-11-20T22:30:25.000Z');
    expect(events.filter((e) => e.at !== null && Date.parse(e.at) > since).length).toBe(3);
  });

  it('reads syslog / journalctl short lines with a host and the monotonic stamp', () => {
    const events = parseKernelLog(wild('syslog-table-full.txt'), { netnsInode: null, referenceTime: '2018-02-23T17:00:00.000Z' });
    expect(events.map((e) => [e.kind, e.at])).toEqual([
      ['table-full', '2018-02-23T16:44:36.000Z'],
      ['table-full', '2018-02-23T16:44:36.000Z'],
      ['table-full', '2018-02-23T16:44:36.000Z'],
    ]);
  });

  it('the facts date syslog lines with the time they were collected', () => {
    const recorded = readFileSync(new URL('../fixtures/facts-netns.txt', import.meta.url), 'utf8');
    const start = recorded.indexOf('@@section kernel-log@@\n') + '@@section kernel-log@@\n'.length;
    const end = recorded.indexOf('@@end kernel-log rc=0@@');
    expect(start).toBeGreaterThan(100);
    const withSyslog = recorded.slice(0, start) + wild('syslog-table-full.txt') + recorded.slice(end);
    const facts = parseFacts(withSyslog, '2018-02-23T17:00:00.000Z');
    expect(facts.kernelLog.map((e) => [e.kind, e.at])).toEqual([1, 2, 3].map(() => ['table-full', '2018-02-23T16:44:36.000Z']));
  });

  it('the poll dates syslog lines with the gateway clock it read', () => {
    const recorded = readFileSync(new URL('../fixtures/poll-healthy.txt', import.meta.url), 'utf8');
    const [head = '', rest = ''] = recorded.split('@@log@@\n');
    const gatewayClock = String(Date.parse('2018-02-23T17:00:00.000Z') / 1000);
    const withSyslog = `${head.replace(/^\d{10}$/m, gatewayClock)}@@log@@\n${wild('syslog-table-full.txt')}@@end@@\n`;
    expect(rest).toContain('@@end@@');
    const reading = parsePollOutput(withSyslog);
    expect(reading.tableFullAtMs).toEqual([1, 2, 3].map(() => Date.parse('2018-02-23T16:44:36.000Z')));
  });
});

describe('conntrack -S in the wild', () => {
  it('reads the one-total summary of older conntrack-tools (name<TAB><TAB>value)', () => {
    const stats = parseConntrackStatsCli(wild('conntrack-S-summary.txt'));
    expect(stats).toEqual({
      found: 72556,
      invalid: 3828562,
      insert: 0,
      insert_failed: 12783,
      drop: 12783,
      early_drop: 0,
      error: 1,
      search_restart: 32917695,
      clash_resolve: 0,
      chaintoolong: 0,
    });
  });
});

describe('NAT rules in the wild', () => {
  it('reads `iptables -t nat -S` (no *nat header)', () => {
    const { natRules, seenTables } = parseIptablesSave(wild('iptables-S-nat.txt'), 'ipv4', 'nat');
    expect(seenTables).toBe(true);
    expect(natRules.map((r) => [r.kind, r.outInterface, r.toAddresses, r.family])).toEqual([['masquerade', '!docker0', [], 'ipv4']]);
  });

  it('SNAT to a port only has no address', () => {
    const { natRules } = parseIptablesSave(wild('iptables-save-snat-port-only.txt'));
    expect(natRules.map((r) => [r.kind, r.toAddresses])).toEqual([
      ['snat', []],
      ['snat', []],
    ]);
    expect(natRules.every((r) => natRuleSchema.safeParse(r).success)).toBe(true);
  });

  it('reads `nft -a` output (# handle N after the brace and the rule)', () => {
    const nft = parseNftRuleset(wild('nft-a-ruleset.txt'), false);
    expect(nft.nativeTables).toEqual(['inet lxd', 'ip nat']);
    expect(nft.natRules.map((r) => [r.kind, r.family, r.rule])).toEqual([
      ['masquerade', 'ipv4', 'ip saddr 10.161.38.0/24 ip daddr != 10.161.38.0/24 masquerade'],
      ['masquerade', 'ipv6', 'ip6 saddr fd42:b403:217:3a62::/64 ip6 daddr != fd42:b403:217:3a62::/64 masquerade'],
      ['masquerade', 'ipv4', 'meta l4proto tcp ip saddr 192.168.122.0/24 ip daddr != 192.168.122.0/24 counter masquerade to :1024-65535'],
      ['masquerade', 'ipv4', 'meta l4proto udp ip saddr 192.168.122.0/24 ip daddr != 192.168.122.0/24 counter masquerade to :1024-65535'],
      ['masquerade', 'ipv4', 'ip saddr 192.168.122.0/24 ip daddr != 192.168.122.0/24 counter masquerade'],
    ]);
  });
});

describe('entries offloaded to a flowtable in the wild', () => {
  const aggregate = (text: string) => aggregateLines(Readable.from([text]), { establishedTimeout: 432_000, idleThresholds: [...IDLE_THRESHOLDS] });

  it('VyOS `conntrack -L`: [OFFLOAD] UDP entries without a timeout are counted, with their NAT address and ports', async () => {
    const text = wild('conntrack-L-offload-vyos.txt');
    const offloaded = text.split('\n').filter((l) => l.includes('[OFFLOAD]'));
    expect(offloaded.length).toBe(2);
    const entry = parseConntrackLine(offloaded[0] as string);
    expect(entry).toMatchObject({ proto: 'udp', offload: 'software', timeout: 0 });
    expect(entry?.state).toBeUndefined();
    expect(entry?.reply).toEqual({ src: '8.8.8.8', dst: '192.168.122.222', sport: 53, dport: 12100 });
    const table = await aggregate(text);
    expect(table.entries).toBe(6);
    expect(table.unparsed).toBe(0);
    expect(table.offloaded).toEqual({ total: 2, hardware: 0 });
    expect(table.states['udp OFFLOAD']).toBe(2);
    // both offloaded flows leave through the NAT address: their port use is kept
    expect(table.topPortUse.filter((p) => p.natSource === '192.168.122.222' && p.proto === 'udp').map((p) => `${p.dst}:${p.dport}`).sort()).toEqual([
      '34.206.168.146:123',
      '8.8.8.8:53',
    ]);
  });

  it('TCP [OFFLOAD] entries have no state: never counted as ESTABLISHED nor as idle', async () => {
    const table = await aggregate(wild('conntrack-L-offload-tcp.txt'));
    expect(table.entries).toBe(6);
    expect(table.unparsed).toBe(0);
    expect(table.offloaded).toEqual({ total: 5, hardware: 0 });
    expect(table.states).toEqual({ 'tcp OFFLOAD': 5, 'tcp ESTABLISHED': 1 });
    expect(table.establishedIdle.total).toBe(1);
    expect(Object.values(table.establishedIdle.idleAtLeast).every((n) => n <= 1)).toBe(true);
    expect(table.topSources[0]).toEqual({ key: '77.172.168.59', count: 6 });
  });

  it('/proc/net/nf_conntrack [OFFLOAD] (the kernel commit that added the flag)', () => {
    const entry = parseConntrackLine(wild('proc-nf_conntrack-offload.txt').trim());
    expect(entry).toMatchObject({ family: 'ipv4', proto: 'tcp', offload: 'software', zone: 0 });
    expect(entry?.reply.dst).toBe('192.168.2.195');
  });

  it('OpenWrt /proc/net/nf_conntrack [HW_OFFLOAD] with packet counters, then the same flow back in software', async () => {
    const table = await aggregate(wild('proc-nf_conntrack-hw-offload.txt'));
    expect(table.entries).toBe(2);
    expect(table.unparsed).toBe(0);
    expect(table.offloaded).toEqual({ total: 1, hardware: 1 });
    expect(table.states).toEqual({ 'udp OFFLOAD': 1, udp: 1 });
    // the reporter's masked addresses are not addresses: such a line is dropped, as any non-address
    expect(parseConntrackLine('ipv4     2 udp      17 src=192.168.81.11 dst=x.x.x.x sport=38720 dport=3578 src=x.x.x.x dst=y.y.y.y sport=3578 dport=38720 [HW_OFFLOAD] mark=0 zone=0 use=3')).toBeNull();
  });

  it('a line without a timeout and without an offload flag is still not an entry', () => {
    expect(parseConntrackLine('tcp      6 src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1 [ASSURED] mark=0 use=1')).toBeNull();
  });
});

/** A recorded fixture (test/fixtures, recorded on this machine: nftables 1.0.6, iptables 1.8.9 nf_tables). */
const recorded = (name: string): string => readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8');

/** The recorded facts run with its nft sections replaced (as an older nft without JSON would print them). */
function factsWithNft(sections: { json?: string; text: string; warnings: string }): string {
  const base = recorded('facts-netns.txt');
  const start = base.indexOf('@@section nft-ruleset@@');
  const endMarker = '@@end nft-ruleset rc=0@@\n';
  const end = base.indexOf(endMarker) + endMarker.length;
  expect(start).toBeGreaterThan(0);
  const json = sections.json === undefined ? '@@section nft-ruleset-json@@\nError: JSON support not compiled-in\n@@end nft-ruleset-json rc=1@@\n' : `@@section nft-ruleset-json@@\n${sections.json}\n@@end nft-ruleset-json rc=0@@\n`;
  return `${base.slice(0, start)}${json}@@section nft-ruleset@@\n${sections.text}\n@@end nft-ruleset rc=0@@\n@@section nft-warnings@@\n${sections.warnings}\n@@end nft-warnings rc=0@@\n${base.slice(end)}`;
}

describe('iptables-nft tables seen through nft', () => {
  it('OpenWrt: the warning marks both tables as iptables-nft, wherever it was printed', () => {
    const text = wild('nft-iptables-nft-warning.txt');
    const warnings = text.split('\n').filter((l) => l.includes('managed by iptables-nft')).join('\n');
    const stdout = text.split('\n').filter((l) => !l.includes('managed by iptables-nft')).join('\n');
    for (const nft of [parseNftRuleset(text), parseNftRuleset(stdout, false, warnings)]) {
      expect(nft.compatTables).toEqual(['ip filter', 'ip nat']);
      expect(nft.nativeTables).toEqual([]);
      expect(nft.natRules).toEqual([]);
    }
  });

  it('nft 1.0.6 writes the warning to stderr: kept by the facts script, the Calico-style table (lower-case chain) is counted once, as iptables', () => {
    const stdout = recorded('nft-list-ruleset-iptables-nft.txt');
    const stderr = recorded('nft-list-ruleset-iptables-nft.stderr.txt');
    expect(stdout).not.toContain('Warning');
    expect(stderr).toContain('# Warning: table ip nat is managed by iptables-nft, do not touch!');
    // what the stdout alone gave: the iptables-nft nat table taken for native nft, its two rules counted again
    const before = parseNftRuleset(stdout, true);
    expect(before.nativeTables).toContain('ip nat');
    expect(before.natRules.filter((r) => r.rule.includes('198.18.1.0/24') || r.rule.includes('198.19.0.5')).length).toBe(2);
    const after = parseNftRuleset(stdout, true, stderr);
    expect(after.compatTables).toEqual(['ip nat', 'ip raw']);
    expect(after.nativeTables).toEqual(['inet fw4']);
    expect(after.natRules.map((r) => [r.kind, r.outInterface, r.toAddresses])).toEqual([
      ['masquerade', 'wan', []],
      ['snat', null, ['198.19.0.9']],
      ['dnat', null, ['198.18.4.2']],
    ]);
    // through parseFacts, with an nft that has no JSON: the warnings section does it
    const facts = parseFacts(factsWithNft({ text: stdout, warnings: stderr }), '2026-12-04T21:00:00.000Z');
    const nftRules = facts.natRules.filter((r) => r.backend === 'nft');
    expect(nftRules.map((r) => r.kind)).toEqual(['masquerade', 'snat', 'dnat']);
    expect(nftRules.some((r) => r.rule.includes('198.19.0.5'))).toBe(false);
  });
});

describe('nft -j (JSON)', () => {
  it('recorded: xt statements mark the iptables-nft tables; native NAT read with interface, addresses and family', () => {
    const nft = parseNftJson(recorded('nft-j-ruleset-iptables-nft.json'), true);
    expect(nft.compatTables).toEqual(['ip nat', 'ip raw']);
    expect(nft.nativeTables).toEqual(['inet fw4']);
    expect(nft.natRules.map((r) => [r.kind, r.family ?? null, r.outInterface, r.toAddresses, r.rule])).toEqual([
      ['masquerade', null, 'wan', [], 'oifname wan masquerade'],
      ['snat', 'ipv4', null, ['198.19.0.9'], 'ip saddr 198.18.3.0/24 snat ip to 198.19.0.9'],
      ['dnat', 'ipv4', null, ['198.18.4.2'], 'tcp dport 8080 dnat ip to 198.18.4.2:80'],
    ]);
    // without iptables rules to compare with, xt alone still marks the tables
    expect(parseNftJson(recorded('nft-j-ruleset-iptables-nft.json'), false).compatTables).toEqual(['ip nat', 'ip raw']);
  });

  it('the nftables test suite dump: snat and dnat through maps, their target addresses from the map values', () => {
    const nft = parseNftJson(wild('nft-j-merge-nat-inet.json'));
    expect(nft.nativeTables).toEqual(['inet nat']);
    expect(nft.natRules.map((r) => [r.kind, r.family, r.toAddresses])).toEqual([
      ['dnat', 'ipv4', ['10.1.1.52', '10.1.1.10']],
      ['snat', 'ipv4', ['10.2.2.2', '10.2.3.3']],
    ]);
    expect(nft.natRules[1]?.rule).toBe('snat ip to ip daddr map { 72.2.3.66 : 10.2.2.2, 72.2.3.67 : 10.2.3.3 }');
  });

  it('parseFacts prefers the JSON section; JSON the gateway could not print falls back to the text', () => {
    const json = recorded('nft-j-ruleset-iptables-nft.json').trim();
    const facts = parseFacts(factsWithNft({ json, text: '', warnings: '' }), '2026-12-04T21:00:00.000Z');
    expect(facts.natRules.filter((r) => r.backend === 'nft').map((r) => r.kind)).toEqual(['masquerade', 'snat', 'dnat']);
    const broken = parseFacts(factsWithNft({ json: '{"nftables": [', text: recorded('nft-list-ruleset-iptables-nft.txt'), warnings: recorded('nft-list-ruleset-iptables-nft.stderr.txt') }), '2026-12-04T21:00:00.000Z');
    expect(broken.natRules.filter((r) => r.backend === 'nft').map((r) => r.kind)).toEqual(['masquerade', 'snat', 'dnat']);
  });
});
