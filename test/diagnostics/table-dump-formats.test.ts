/**
 * The same conntrack entries printed by `conntrack -L` (conntrack-tools 1.4.7) and by
 * /proc/net/nf_conntrack, recorded one after the other on a lab gateway of this machine's
 * kernel (6.18.44, CONFIG_NF_CONNTRACK_ZONES, _MARK, _TIMESTAMP; nf_conntrack_acct and
 * nf_conntrack_timestamp on for the last two pairs). What differs: the "ipv4     2" /
 * "ipv6     10" prefix, zone= always in /proc (the tool prints it only when not 0), use= one
 * higher in /proc (the reader's own reference), IPv6 in full form, the timer a second
 * lower (read later). The check parses both into the same entry.
 */
import { describe, expect, it } from 'vitest';
import { parseConntrackLine } from '../../src/diagnostics/parsers/conntrack-line.js';

const PAIRS: { what: string; tool: string; proc: string }[] = [
  {
    what: 'UDP, assured, NATed',
    tool: 'udp      17 109 src=198.18.1.34 dst=198.19.1.2 sport=1327 dport=20004 src=198.19.1.2 dst=198.19.1.1 sport=20004 dport=1327 [ASSURED] mark=0 use=1',
    proc: 'ipv4     2 udp      17 108 src=198.18.1.34 dst=198.19.1.2 sport=1327 dport=20004 src=198.19.1.2 dst=198.19.1.1 sport=20004 dport=1327 [ASSURED] mark=0 zone=0 use=2',
  },
  {
    what: 'TCP ESTABLISHED',
    tool: 'tcp      6 341982 ESTABLISHED src=198.18.1.35 dst=198.19.1.2 sport=34409 dport=7001 src=198.19.1.2 dst=198.19.1.1 sport=7001 dport=51273 [ASSURED] mark=0 use=1',
    proc: 'ipv4     2 tcp      6 341981 ESTABLISHED src=198.18.1.35 dst=198.19.1.2 sport=34409 dport=7001 src=198.19.1.2 dst=198.19.1.1 sport=7001 dport=51273 [ASSURED] mark=0 zone=0 use=2',
  },
  {
    what: '[UNREPLIED], zone 3, mark 5',
    tool: 'udp      17 86399 src=198.18.9.1 dst=198.19.9.2 sport=1000 dport=53 [UNREPLIED] src=198.19.9.2 dst=198.19.0.1 sport=53 dport=1000 mark=5 zone=3 use=1',
    proc: 'ipv4     2 udp      17 86398 src=198.18.9.1 dst=198.19.9.2 sport=1000 dport=53 [UNREPLIED] src=198.19.9.2 dst=198.19.0.1 sport=53 dport=1000 mark=5 zone=3 use=2',
  },
  {
    what: 'IPv6 (full form in /proc), zone 7',
    tool: 'tcp      6 86399 ESTABLISHED src=2001:db8::1 dst=2001:db8::2 sport=1000 dport=443 src=2001:db8::2 dst=2001:db8::1 sport=443 dport=1000 [ASSURED] mark=0 zone=7 use=1',
    proc: 'ipv6     10 tcp      6 86398 ESTABLISHED src=2001:0db8:0000:0000:0000:0000:0000:0001 dst=2001:0db8:0000:0000:0000:0000:0000:0002 sport=1000 dport=443 src=2001:0db8:0000:0000:0000:0000:0000:0002 dst=2001:0db8:0000:0000:0000:0000:0000:0001 sport=443 dport=1000 [ASSURED] mark=0 zone=7 use=2',
  },
  {
    what: 'accounting and timestamp on',
    tool: 'tcp      6 86399 ESTABLISHED src=198.18.9.7 dst=198.19.9.2 sport=1000 dport=80 packets=0 bytes=0 src=198.19.9.2 dst=198.19.0.1 sport=80 dport=1000 packets=0 bytes=0 [ASSURED] mark=0 delta-time=1 use=1',
    proc: 'ipv4     2 tcp      6 86398 ESTABLISHED src=198.18.9.7 dst=198.19.9.2 sport=1000 dport=80 packets=0 bytes=0 src=198.19.9.2 dst=198.19.0.1 sport=80 dport=1000 packets=0 bytes=0 [ASSURED] mark=0 zone=0 delta-time=1 use=2',
  },
  {
    what: 'UDP with counters, not assured',
    tool: 'udp      17 29 src=198.18.1.34 dst=198.19.1.2 sport=60593 dport=20004 packets=1 bytes=30 src=198.19.1.2 dst=198.19.1.1 sport=20004 dport=60593 packets=1 bytes=30 mark=0 delta-time=1 use=1',
    proc: 'ipv4     2 udp      17 28 src=198.18.1.34 dst=198.19.1.2 sport=60593 dport=20004 packets=1 bytes=30 src=198.19.1.2 dst=198.19.1.1 sport=20004 dport=60593 packets=1 bytes=30 mark=0 zone=0 delta-time=1 use=2',
  },
];

describe('conntrack -L and /proc/net/nf_conntrack lines of the same entry', () => {
  for (const pair of PAIRS) {
    it(`${pair.what}: the same entry (the timer read a second later)`, () => {
      const tool = parseConntrackLine(pair.tool);
      const proc = parseConntrackLine(pair.proc);
      expect(tool).not.toBeNull();
      expect(proc).not.toBeNull();
      // zone: the tool leaves the default zone out, /proc prints zone=0 (nothing reads the zone)
      expect({ ...proc, timeout: (proc?.timeout ?? 0) + 1, zone: proc?.zone ?? 0 }).toEqual({ ...tool, zone: tool?.zone ?? 0 });
    });
  }

  it('IPv6 addresses read from /proc are the compressed ones the tool prints', () => {
    const proc = parseConntrackLine(PAIRS[3]!.proc);
    expect(proc?.family).toBe('ipv6');
    expect(proc?.orig.src).toBe('2001:db8::1');
    expect(proc?.reply.dst).toBe('2001:db8::1');
  });
});
