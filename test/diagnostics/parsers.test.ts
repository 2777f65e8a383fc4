import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { natRuleSchema } from '../../src/core/model.js';
import { parseConntrackStatsCli, parseProcStatConntrack } from '../../src/diagnostics/parsers/conntrack-stats.js';
import { normalizeLogTime, parseKernelLog } from '../../src/diagnostics/parsers/kernel-log.js';
import { parseIptablesSave, parseNftRuleset, splitIptablesArgs, stripPorts } from '../../src/diagnostics/parsers/nat-rules.js';
import { parseModprobeGrep, parseSysctlGrep } from '../../src/diagnostics/parsers/persistence.js';
import {
  interfaceMatches,
  parseIpAddr,
  parseMeminfo,
  parseNetnsInode,
  parseNetnsSince,
  INIT_NET_INODE,
  parsePortRange,
  parseProcSysGrep,
  parseSlabObjsize,
} from '../../src/diagnostics/parsers/system.js';

const fixture = (name: string): string => readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8');

describe('conntrack statistics', () => {
  it('sums the per-CPU lines of `conntrack -S`', () => {
    const stats = parseConntrackStatsCli(fixture('conntrack-S.txt'));
    // the scratch gateway saw one invalid packet (recorded), counted as error by the ICMP/UDP trackers
    expect(stats).not.toBeNull();
    expect(Object.keys(stats ?? {}).sort()).toEqual(
      ['chaintoolong', 'clash_resolve', 'drop', 'early_drop', 'error', 'found', 'insert', 'insert_failed', 'invalid', 'search_restart'].sort(),
    );
    const text = 'cpu=0   \tfound=1 invalid=2 insert=3 insert_failed=4 drop=5 early_drop=6 error=7 search_restart=8 clash_resolve=9 chaintoolong=10 \n' +
      'cpu=1   \tfound=10 invalid=20 insert=30 insert_failed=40 drop=50 early_drop=60 error=70 search_restart=80 clash_resolve=90 chaintoolong=100 \n';
    expect(parseConntrackStatsCli(text)).toEqual({
      found: 11, invalid: 22, insert: 33, insert_failed: 44, drop: 55, early_drop: 66, error: 77, search_restart: 88, clash_resolve: 99, chaintoolong: 110,
    });
  });

  it('reads the hex columns of /proc/net/stat/nf_conntrack with the same meaning', () => {
    const cli = parseConntrackStatsCli(fixture('conntrack-S.txt'));
    const proc = parseProcStatConntrack(fixture('proc-stat-nf_conntrack.txt'));
    expect(proc).toEqual(cli);
    const hex =
      'entries  clashres found new invalid ignore delete chainlength insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete search_restart\n' +
      '00040000  00000001 00000002 00000000 00000003 00000000 00000000 00000004 00000005 00000006 0000000a 000000ff 00000007  00000000 00000000 00000000 00000008\n' +
      '00040000  00000001 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000010 00000000 00000000  00000000 00000000 00000000 00000000\n';
    expect(parseProcStatConntrack(hex)).toEqual({
      found: 2, invalid: 3, insert: 5, insert_failed: 6, drop: 26, early_drop: 255, error: 7, search_restart: 8, clash_resolve: 2, chaintoolong: 4,
    });
  });

  it('returns null for output that holds no counters', () => {
    expect(parseConntrackStatsCli('')).toBeNull();
    expect(parseConntrackStatsCli('conntrack: command not found')).toBeNull();
    expect(parseProcStatConntrack('')).toBeNull();
    expect(parseProcStatConntrack('entries found\nzz yy\n')).toBeNull();
  });
});

describe('kernel log', () => {
  // Real lines from this host: lab namespaces of other test runs filled their tables.
  const recorded = fixture('dmesg-conntrack.txt');
  const inodes = [...new Set([...recorded.matchAll(/in netns (\d+)/g)].map((m) => Number(m[1])))];

  it('recorded log names several namespaces', () => {
    expect(inodes.length).toBeGreaterThan(1);
  });

  it('keeps only the gateway namespace (and the suppressed counts printed with its lines)', () => {
    const target = inodes[inodes.length - 1] as number;
    const events = parseKernelLog(recorded, { netnsInode: target });
    const full = events.filter((e) => e.kind === 'table-full');
    const expected = recorded.split('\n').filter((l) => l.includes(`table full in netns ${target},`)).length;
    expect(full.length).toBe(expected);
    expect(full.every((e) => e.netns === target && e.at !== null && e.at.endsWith('Z'))).toBe(true);
    for (const s of events.filter((e) => e.kind === 'suppressed')) {
      const i = events.indexOf(s);
      expect(events[i + 1]?.kind).toBe('table-full');
      expect(s.suppressed).toBeGreaterThan(0);
    }
    // a namespace that never filled sees nothing, not even "callbacks suppressed"
    expect(parseKernelLog(recorded, { netnsInode: 4026531833 })).toEqual([]);
  });

  it('keeps every namespace when asked to (or when the inode is unknown)', () => {
    const all = parseKernelLog(recorded, { netnsInode: null });
    expect(all.filter((e) => e.kind === 'table-full').length).toBe(recorded.split('\n').filter((l) => l.includes('table full')).length);
    expect(parseKernelLog(recorded, { netnsInode: 1, keepOtherNetns: true }).length).toBe(all.length);
  });

  it('reads older kernels (no netns), plain dmesg and journalctl formats', () => {
    // Formats of kernels before 6.x and of other tools (not producible on this host).
    const text = [
      '2024-03-01T10:00:00,123456+00:00 nf_conntrack: table full, dropping packet',
      '[ 1234.567890] nf_conntrack: table full, dropping packet.',
      '2024-03-01T10:00:05.000001+01:00 gw1 kernel: net_ratelimit: 42 callbacks suppressed',
      '2024-03-01T10:00:05.000002+01:00 gw1 kernel: nf_conntrack: nf_conntrack: table full, dropping packet',
      '2024-03-01T10:00:06+0000 nf_conntrack: default automatic helper assignment has been turned off for security reasons',
      '2024-03-01T10:00:07,000000+00:00 some other driver message',
    ].join('\n');
    const events = parseKernelLog(text, { netnsInode: 4026532177 });
    expect(events.map((e) => [e.kind, e.at, e.netns, e.suppressed])).toEqual([
      ['table-full', '2024-03-01T10:00:00.123Z', null, null],
      ['table-full', null, null, null],
      ['suppressed', '2024-03-01T09:00:05.000Z', null, 42],
      ['table-full', '2024-03-01T09:00:05.000Z', null, null],
      ['other', '2024-03-01T10:00:06.000Z', null, null],
    ]);
  });

  it('drops a "callbacks suppressed" line that belongs to another message', () => {
    const text = [
      '2024-03-01T10:00:00,000000+00:00 net_ratelimit: 7 callbacks suppressed',
      '2024-03-01T10:00:00,000010+00:00 nf_conntrack: nf_conntrack: table full in netns 99, dropping packet',
      '2024-03-01T10:00:10,000000+00:00 net_ratelimit: 8 callbacks suppressed',
      '2024-03-01T10:00:20,000000+00:00 nf_conntrack: nf_conntrack: table full in netns 5, dropping packet',
    ].join('\n');
    expect(parseKernelLog(text, { netnsInode: 5 }).map((e) => e.kind)).toEqual(['table-full']);
  });

  it('normalizes dmesg/journal times', () => {
    expect(normalizeLogTime('2026-11-24T14:26:06,882456+00:00')).toBe('2026-11-24T14:26:06.882Z');
    expect(normalizeLogTime('2026-11-24T14:26:06+0100')).toBe('2026-11-24T13:26:06.000Z');
    expect(normalizeLogTime('not a time')).toBeNull();
  });
});

describe('NAT and NOTRACK rules', () => {
  it('reads MASQUERADE and SNAT (ranges, no -o) from iptables-save', () => {
    const { natRules, seenTables } = parseIptablesSave(fixture('iptables-save-nat.txt'));
    expect(seenTables).toBe(true);
    expect(natRules.map((r) => [r.kind, r.outInterface, r.toAddresses])).toEqual([
      ['masquerade', 'wan0', []],
      ['snat', 'wan0', ['198.19.0.10-198.19.0.20']],
      ['snat', null, ['198.19.0.21']],
    ]);
    expect(natRules.every((r) => r.backend === 'iptables' && r.family === 'ipv4' && natRuleSchema.safeParse(r).success)).toBe(true);
    const v6 = parseIptablesSave(fixture('ip6tables-save-nat.txt'), 'ipv6');
    expect(v6.natRules).toMatchObject([{ kind: 'masquerade', outInterface: 'wan0', family: 'ipv6' }]);
  });

  it('finds only our tagged NOTRACK rules in the raw table', () => {
    const raw = parseIptablesSave(fixture('iptables-save-raw.txt'));
    expect(raw.natRules).toEqual([]);
    expect(raw.managedNotrack).toEqual(['-A PREROUTING -i lan0 -p tcp -m tcp --dport 22 -m comment --comment "conntrack-ops: management ssh" -j NOTRACK']);
    const untagged = parseIptablesSave('*raw\n-A PREROUTING -p tcp --dport 22 -j NOTRACK\n-A OUTPUT -m comment --comment conntrack-ops -j CT --notrack\nCOMMIT\n');
    expect(untagged.managedNotrack).toEqual(['-A OUTPUT -m comment --comment conntrack-ops -j CT --notrack']);
  });

  it('reads native nft NAT rules and skips the iptables-nft tables', () => {
    const nft = parseNftRuleset(fixture('nft-list-ruleset.txt'), true);
    expect(nft.compatTables.sort()).toEqual(['ip mangle', 'ip nat', 'ip raw', 'ip6 nat']);
    expect(nft.nativeTables.sort()).toEqual(['inet fixture_nat', 'inet fixture_raw']);
    expect(nft.natRules.map((r) => [r.kind, r.outInterface, r.toAddresses, r.family])).toEqual([
      ['masquerade', 'wan0', [], 'ipv4'],
      ['snat', 'wan0', ['198.19.0.40/31'], 'ipv4'],
      ['snat', null, ['198.19.0.50'], 'ipv4'],
    ]);
    expect(nft.managedNotrack).toEqual(['iifname "lan0" tcp dport 2222 notrack comment "conntrack-ops: management ssh"']);
  });

  it('recognises unmarked iptables-nft tables and reads nft-only gateways', () => {
    const unmarked = fixture('nft-list-ruleset.txt').replace(/^# Warning.*\n/gm, '');
    expect(parseNftRuleset(unmarked, true).natRules.length).toBe(3);
    expect(parseNftRuleset(unmarked, false).natRules.length).toBe(6); // no iptables rules: "ip nat" counts as native
    const nftOnly = [
      'table ip nat {',
      '\tchain postrouting {',
      '\t\ttype nat hook postrouting priority srcnat; policy accept;',
      '\t\toifname != "lan0" counter packets 12 bytes 720 masquerade',
      '\t\toif "wan1" snat to 203.0.113.5:1024-65535',
      '\t}',
      '}',
    ].join('\n');
    const parsed = parseNftRuleset(nftOnly, false);
    expect(parsed.natRules.map((r) => [r.kind, r.outInterface, r.toAddresses, r.rule])).toEqual([
      ['masquerade', '!lan0', [], 'oifname != "lan0" counter masquerade'],
      ['snat', 'wan1', ['203.0.113.5'], 'oif "wan1" snat to 203.0.113.5:1024-65535'],
    ]);
  });

  it('splits quoted arguments and strips NAT ports', () => {
    expect(splitIptablesArgs('-A X -m comment --comment "a \\"b\\" c" -j NOTRACK')).toEqual(['-A', 'X', '-m', 'comment', '--comment', 'a "b" c', '-j', 'NOTRACK']);
    expect(stripPorts('198.19.0.10-198.19.0.20:1024-2048')).toBe('198.19.0.10-198.19.0.20');
    expect(stripPorts('[2001:db8::1]:80')).toBe('2001:db8::1');
    expect(stripPorts('2001:db8::1')).toBe('2001:db8::1');
  });
});

describe('system outputs', () => {
  it('reads sysctl values from grep -H', () => {
    expect(parseProcSysGrep('/proc/sys/net/netfilter/nf_conntrack_max:262144\n/proc/sys/net/netfilter/nf_conntrack_count:7\nbad line\n')).toEqual({
      nf_conntrack_max: 262144,
      nf_conntrack_count: 7,
    });
  });

  it('reads meminfo, slabinfo, port range and the netns inode', () => {
    expect(parseMeminfo('MemTotal:       24684092 kB\nMemAvailable:   23535596 kB\nHugePages_Total:       0\n')).toEqual({
      MemTotal: 24684092,
      MemAvailable: 23535596,
      HugePages_Total: 0,
    });
    expect(parseSlabObjsize('nf_conntrack       20000  20000    256   16    1 : tunables    0    0    0 : slabdata   1250   1250      0\n')).toBe(256);
    expect(parseSlabObjsize('nf_conntrack_expect      0      0    208   19    1 : tunables\n')).toBeNull();
    expect(parseSlabObjsize('')).toBeNull();
    expect(parsePortRange('32768\t60999\n')).toEqual([32768, 60999]);
    expect(parsePortRange('60999 32768')).toBeNull();
    expect(parseNetnsInode(fixture('netns.txt'))).toBeGreaterThan(4026531833);
  });

  it("reads a child namespace's creation time from its pinned nsfs inode, never the initial one's", () => {
    const pinned = 'net:[4026532177]\npinned=yes\nctime=1795000000\n';
    expect(parseNetnsSince(pinned, 4026532177)).toBe(new Date(1_795_000_000_000).toISOString());
    // not pinned by a mount: every open makes a new inode whose ctime is "now": unknown
    expect(parseNetnsSince('net:[4026532177]\n', 4026532177)).toBeNull();
    // the initial namespace existed since boot whatever its inode's ctime says
    expect(parseNetnsSince(pinned.replace('4026532177', String(INIT_NET_INODE)), INIT_NET_INODE)).toBeNull();
    expect(parseNetnsSince('net:[4026532177]\n', 4026532177)).toBeNull();
  });

  it('reads `ip -o addr`', () => {
    const addrs = parseIpAddr(fixture('ip-o-addr.txt'));
    expect(addrs.filter((a) => a.scope === 'global').map((a) => `${a.ifname} ${a.address}/${a.prefixLength}`)).toEqual([
      'lan0 198.18.0.1/24',
      'lan0 2001:2:0:1::1/64',
      'wan0 198.19.0.1/24',
      'wan0 2001:2:0:2::1/64',
    ]);
    expect(parseIpAddr('7: eth0@if8    inet 198.18.9.1/24 brd 198.18.9.255 scope global eth0\\')[0]?.ifname).toBe('eth0');
    expect(interfaceMatches('eth+', 'eth3')).toBe(true);
    expect(interfaceMatches('wan*', 'wan0')).toBe(true);
    expect(interfaceMatches('!lan0', 'wan0')).toBe(false);
  });
});

describe('persistence files', () => {
  it('reads nf_conntrack keys from sysctl.d grep output', () => {
    const text = [
      '/etc/sysctl.d/99-conntrack.conf:net.netfilter.nf_conntrack_max = 262144',
      '/etc/sysctl.d/99-conntrack.conf:# net.netfilter.nf_conntrack_tcp_timeout_established = 1',
      '/etc/sysctl.d/99-conntrack.conf:net.netfilter.nf_conntrack_tcp_timeout_established=3600',
      '/usr/lib/sysctl.d/50-x.conf:-net/netfilter/nf_conntrack_buckets = 65536',
      '/etc/sysctl.conf:net.nf_conntrack_max=131072',
      '/etc/sysctl.conf:net.ipv4.ip_forward = 1  # nf_conntrack mentioned in a comment',
      '/etc/sysctl.d/99-conntrack.conf:net.netfilter.nf_conntrack_max = 524288',
    ].join('\n');
    expect(parseSysctlGrep(text)).toEqual([
      { path: '/etc/sysctl.d/99-conntrack.conf', keys: { nf_conntrack_max: '524288', nf_conntrack_tcp_timeout_established: '3600' } },
      { path: '/usr/lib/sysctl.d/50-x.conf', keys: { nf_conntrack_buckets: '65536' } },
      { path: '/etc/sysctl.conf', keys: { nf_conntrack_max: '131072' } },
    ]);
  });

  it('reads hashsize from modprobe.d', () => {
    const text = [
      '/etc/modprobe.d/conntrack.conf:options nf_conntrack hashsize=65536',
      '/etc/modprobe.d/other.conf:options nf_conntrack expect_hashsize=1024',
      '/lib/modprobe.d/x.conf:  options   nf_conntrack   acct=1 hashsize=16384',
    ].join('\n');
    expect(parseModprobeGrep(text)).toEqual([
      { path: '/etc/modprobe.d/conntrack.conf', hashsize: 65536 },
      { path: '/etc/modprobe.d/other.conf', hashsize: null },
      { path: '/lib/modprobe.d/x.conf', hashsize: 16384 },
    ]);
  });
});
