import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { ConntrackEntry } from '../../src/core/model.js';
import { compressIpv6, parseConntrackLine } from '../../src/diagnostics/parsers/conntrack-line.js';

const fixture = (name: string): string => readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8');
const lines = (name: string): string[] => fixture(name).split('\n').filter((l) => l.length > 0);

/** Key of an entry independent of the format (ports and timeouts may differ by a second between dumps). */
const identity = (e: ConntrackEntry): string =>
  [e.family, e.proto, e.protoNum, e.state ?? '-', e.orig.src, e.orig.dst, e.orig.sport, e.orig.dport, e.reply.src, e.reply.dst, e.reply.sport, e.reply.dport, e.assured, e.unreplied, e.mark].join(' ');

describe('parseConntrackLine on recorded `conntrack -L` output', () => {
  const parsed = lines('conntrack-L.txt').map((l) => ({ line: l, entry: parseConntrackLine(l) }));

  it('parses every recorded line', () => {
    expect(parsed.length).toBe(Number(fixture('conntrack-C.txt').trim()));
    for (const { line, entry } of parsed) expect(entry, line).not.toBeNull();
  });

  it('covers every protocol the scratch gateway saw', () => {
    const protos = new Set(parsed.map((p) => p.entry?.proto));
    expect([...protos].sort()).toEqual(['gre', 'icmp', 'icmpv6', 'sctp', 'tcp', 'udp', 'udplite', 'unknown']);
  });

  it('reads TCP ESTABLISHED with state, both tuples and flags', () => {
    const e = parsed.map((p) => p.entry).find((x) => x?.proto === 'tcp' && x.state === 'ESTABLISHED' && x.family === 'ipv4');
    expect(e).toMatchObject({
      family: 'ipv4',
      protoNum: 6,
      orig: { src: '198.18.0.2', dst: '198.19.0.2', dport: 8080 },
      reply: { src: '198.19.0.2', dst: '198.19.0.1', sport: 8080 },
      assured: true,
      unreplied: false,
      mark: 0,
    });
    expect(e?.timeout).toBeGreaterThan(431_000);
    expect(e?.reply.dport).toBe(e?.orig.sport);
    expect(e?.zone).toBeUndefined();
  });

  it('reads UDP without a state word, [UNREPLIED] between the tuples, and zone/mark', () => {
    const udp = parsed.map((p) => p.entry).filter((x) => x?.proto === 'udp');
    const zoned = udp.find((x) => x?.orig.dport === 7000);
    expect(zoned && 'state' in zoned).toBe(false);
    expect(zoned).toMatchObject({ unreplied: true, assured: false, zone: 7, reply: { src: '198.19.0.2', dst: '198.19.0.1' } });
    expect(udp.find((x) => x?.orig.dport === 7001)?.mark).toBe(42);
    const assured = udp.find((x) => x?.assured);
    expect(assured).toMatchObject({ unreplied: false, orig: { dport: 5353 } });
    expect(assured?.timeout).toBeGreaterThan(30); // udp_timeout_stream after the reply + 2 s packet
  });

  it('reads ICMP (type/code/id, no ports), GRE (keys, no ports) and unknown protocols', () => {
    const icmp = parsed.map((p) => p.entry).find((x) => x?.proto === 'icmp' && !x.unreplied);
    expect(icmp).toMatchObject({ protoNum: 1, orig: { src: '198.18.0.2', dst: '198.19.0.2' }, reply: { dst: '198.19.0.1' } });
    expect(icmp?.orig.sport).toBeUndefined();
    expect(icmp?.orig.dport).toBeUndefined();
    const gre = parsed.map((p) => p.entry).find((x) => x?.proto === 'gre');
    expect(gre).toMatchObject({ protoNum: 47, unreplied: true, orig: { src: '198.18.0.2', dst: '198.19.0.2' } });
    expect(gre?.orig.sport).toBeUndefined();
    const unknown = parsed.map((p) => p.entry).find((x) => x?.proto === 'unknown');
    expect(unknown).toMatchObject({ protoNum: 253, unreplied: true, reply: { src: '198.19.0.2', dst: '198.19.0.1' } });
  });

  it('reads SCTP with its state, UDP-Lite with ports, and IPv6 (family inferred)', () => {
    const sctp = parsed.map((p) => p.entry).find((x) => x?.proto === 'sctp');
    expect(sctp).toMatchObject({ protoNum: 132, state: 'ESTABLISHED', assured: true, orig: { sport: 40000, dport: 9899 } });
    const lite = parsed.map((p) => p.entry).find((x) => x?.proto === 'udplite');
    expect(lite).toMatchObject({ protoNum: 136, orig: { sport: 40001, dport: 9900 }, reply: { sport: 9900, dport: 40001 } });
    const v6 = parsed.map((p) => p.entry).filter((x) => x?.family === 'ipv6');
    expect(v6.map((x) => x?.proto).sort()).toEqual(['icmpv6', 'tcp', 'udp']);
    expect(v6.every((x) => x?.orig.src === '2001:2:0:1::2' && x.reply.dst === '2001:2:0:2::1')).toBe(true);
  });

  it('never takes the stderr summary line for an entry', () => {
    const summary = fixture('conntrack-L.stderr.txt').trim();
    expect(summary).toMatch(/flow entries have been shown\.$/);
    expect(parseConntrackLine(summary)).toBeNull();
  });
});

describe('parseConntrackLine on recorded /proc/net/nf_conntrack output', () => {
  const proc = lines('proc-nf_conntrack.txt').map((l) => parseConntrackLine(l));
  const cli = lines('conntrack-L.txt').map((l) => parseConntrackLine(l));

  it('parses every line, with the family from the line and zone=0', () => {
    expect(proc.every((e) => e !== null)).toBe(true);
    expect(proc.filter((e) => e?.family === 'ipv6').length).toBe(3);
    expect(proc.every((e) => typeof e?.zone === 'number')).toBe(true);
  });

  it('skips "timeout=30, stream_timeout=180" on GRE lines', () => {
    const line = lines('proc-nf_conntrack.txt').find((l) => l.includes(' gre '));
    expect(line).toContain('stream_timeout=');
    expect(parseConntrackLine(line as string)).toMatchObject({ proto: 'gre', protoNum: 47, orig: { src: '198.18.0.2', dst: '198.19.0.2' } });
  });

  it('gives the same entries as `conntrack -L` (IPv6 full form compressed)', () => {
    expect(proc.map((e) => identity(e as ConntrackEntry)).sort()).toEqual(cli.map((e) => identity(e as ConntrackEntry)).sort());
  });
});

describe('parseConntrackLine edge cases', () => {
  const good =
    'tcp      6 431999 ESTABLISHED src=198.18.0.2 dst=198.19.0.2 sport=45158 dport=443 src=198.19.0.2 dst=198.19.0.1 sport=443 dport=45158 [ASSURED] mark=0 use=1';

  it('rejects blank, garbage and headers', () => {
    for (const l of ['', '   ', 'garbage', 'hello world foo', 'conntrack v1.4.7 (conntrack-tools): 262144 flow entries have been shown.', '42 flow entries have been shown.', 'tcp 6 abc ESTABLISHED src=1.2.3.4']) {
      expect(parseConntrackLine(l), l).toBeNull();
    }
  });

  it('rejects every truncation of a line (cut anywhere before its last token)', () => {
    const lastToken = good.lastIndexOf(' use=');
    const cutInsideLastFields = good.lastIndexOf(' [ASSURED]');
    for (let cut = 1; cut <= cutInsideLastFields; cut++) {
      expect(parseConntrackLine(good.slice(0, cut)), `cut at ${cut}: ${good.slice(0, cut)}`).toBeNull();
    }
    // once a token follows the reply tuple the entry is complete
    expect(parseConntrackLine(good.slice(0, lastToken))).not.toBeNull();
  });

  it('rejects out-of-range ports and protocol numbers', () => {
    expect(parseConntrackLine(good.replace('dport=443 src', 'dport=70000 src'))).toBeNull();
    expect(parseConntrackLine(good.replace('tcp      6', 'tcp      600'))).toBeNull();
  });

  it('tolerates CRLF, tabs and trailing spaces', () => {
    expect(parseConntrackLine(`${good}\r`)).not.toBeNull();
    expect(parseConntrackLine(`  ${good}   `)).not.toBeNull();
  });

  it('reads flags and extras it does not model without losing the tuple', () => {
    const line =
      'tcp      6 86399 ESTABLISHED src=198.18.0.5 dst=198.19.0.9 sport=1000 dport=22 src=198.19.0.9 dst=198.19.0.1 sport=22 dport=1000 [OFFLOAD] [ASSURED] mark=0x10 secctx=system_u:object_r:unlabeled_t:s0 zone=3 labels=0x8 helper=ftp use=2';
    expect(parseConntrackLine(line)).toMatchObject({
      state: 'ESTABLISHED',
      assured: true,
      unreplied: false,
      mark: 16,
      zone: 3,
      orig: { src: '198.18.0.5', dst: '198.19.0.9', sport: 1000, dport: 22 },
      reply: { src: '198.19.0.9', dst: '198.19.0.1', sport: 22, dport: 1000 },
    });
  });

  it('reads DCCP (state word, ports) and conntrack -L with the extended prefix', () => {
    const dccp = parseConntrackLine(
      'dccp     33 599 OPEN src=198.18.0.2 dst=198.19.0.2 sport=5000 dport=5001 src=198.19.0.2 dst=198.19.0.1 sport=5001 dport=5000 [ASSURED] mark=0 use=1',
    );
    expect(dccp).toMatchObject({ proto: 'dccp', protoNum: 33, state: 'OPEN', orig: { sport: 5000 } });
    const ext = parseConntrackLine(`ipv4     2 ${good}`);
    expect(ext).toMatchObject({ family: 'ipv4', proto: 'tcp', state: 'ESTABLISHED' });
  });

  it('keeps DNAT entries apart (reply source differs from original destination)', () => {
    const e = parseConntrackLine(
      'tcp      6 300 ESTABLISHED src=198.19.0.9 dst=198.19.0.1 sport=50000 dport=80 src=198.18.0.10 dst=198.19.0.9 sport=8080 dport=50000 [ASSURED] mark=0 use=1',
    );
    expect(e?.orig.dst).toBe('198.19.0.1');
    expect(e?.reply.src).toBe('198.18.0.10');
  });

  it('compresses full-form IPv6 addresses like inet_ntop', () => {
    expect(compressIpv6('2001:0002:0000:0001:0000:0000:0000:0002')).toBe('2001:2:0:1::2');
    expect(compressIpv6('0000:0000:0000:0000:0000:0000:0000:0001')).toBe('::1');
    expect(compressIpv6('fe80:0000:0000:0000:0047:9eff:fe4e:74db')).toBe('fe80::47:9eff:fe4e:74db');
    expect(compressIpv6('2001:0db8:0000:0001:0001:0001:0001:0001')).toBe('2001:db8:0:1:1:1:1:1');
    expect(compressIpv6('2001:0db8:0000:0000:0001:0000:0000:0001')).toBe('2001:db8::1:0:0:1');
    expect(compressIpv6('198.18.0.1')).toBe('198.18.0.1');
  });
});
