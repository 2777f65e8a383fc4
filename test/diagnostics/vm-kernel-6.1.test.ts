/**
 * Real outputs of the VM gateway's Debian kernel 6.1 (test/fixtures/vm/, each file says on its
 * first line where and how it was recorded), beside the host's 6.18 recordings:
 *  - entries offloaded to an nft flowtable ([OFFLOAD]: no timeout, no state, not [ASSURED]),
 *    from /proc/net/nf_conntrack and conntrack -L at the same moment;
 *  - "table full" in the 6.1 form ("nf_conntrack: nf_conntrack: table full, dropping packet",
 *    no namespace) with "net_ratelimit: N callbacks suppressed", as `dmesg --time-format iso`,
 *    plain `dmesg`, busybox `dmesg` and `dmesg -T` print them.
 */
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { aggregateLines } from '../../src/analysis/table/aggregate-lines.js';
import { summarizeTableFull } from '../../src/analysis/kernel-log.js';
import { parseFacts } from '../../src/diagnostics/facts-script.js';
import { parseBootTime } from '../../src/diagnostics/parsers/system.js';
import { parseConntrackLine } from '../../src/diagnostics/parsers/conntrack-line.js';
import { parseKernelLog } from '../../src/diagnostics/parsers/kernel-log.js';
import { IDLE_THRESHOLDS } from '../../src/plan/compute.js';

interface Recorded {
  header: string;
  text: string;
  lines: string[];
}

function recorded(name: string): Recorded {
  const raw = readFileSync(new URL(`../fixtures/vm/${name}`, import.meta.url), 'utf8');
  expect(raw.startsWith('# recorded: VM gateway') || raw.startsWith('# recorded: same VM')).toBe(true);
  const header = raw.slice(0, raw.indexOf('\n'));
  const text = raw.slice(raw.indexOf('\n') + 1);
  return { header, text, lines: text.split('\n').filter((l) => l.length > 0) };
}

const aggregate = (text: string) => aggregateLines(Readable.from([text]), { establishedTimeout: 432_000, idleThresholds: [...IDLE_THRESHOLDS] });

describe('flowtable entries from a real 6.1 kernel', () => {
  const proc = recorded('proc-nf_conntrack-offload.txt');
  const cli = recorded('conntrack-L-offload.txt');

  it('every line is an entry; [OFFLOAD] ones have no timeout and no state (TCP and UDP alike)', () => {
    for (const { lines } of [proc, cli]) {
      const entries = lines.map((l) => parseConntrackLine(l));
      expect(entries.every((e) => e !== null)).toBe(true);
      const offloaded = entries.filter((e) => e?.offload === 'software');
      expect(offloaded.length).toBe(lines.filter((l) => l.includes('[OFFLOAD]')).length);
      expect(offloaded.length).toBe(32);
      for (const e of offloaded) {
        expect(e).toMatchObject({ timeout: 0, assured: false, unreplied: false });
        expect(e?.state).toBeUndefined();
        expect(['tcp', 'udp']).toContain(e?.proto);
      }
    }
    // /proc's form: the "ipv4 2" prefix and zone=
    expect(parseConntrackLine(proc.lines[0] as string)).toMatchObject({ family: 'ipv4', zone: 0, offload: 'software' });
  });

  it('counted with their NAT address and port use, never as ESTABLISHED or idle; both sources agree', async () => {
    const fromProc = await aggregate(proc.text);
    const fromCli = await aggregate(cli.text);
    for (const table of [fromProc, fromCli]) {
      expect(table.entries).toBe(33);
      expect(table.unparsed).toBe(0);
      expect(table.offloaded).toEqual({ total: 32, hardware: 0 });
      expect(table.states).toEqual({ 'tcp OFFLOAD': 16, 'udp OFFLOAD': 16, 'tcp ESTABLISHED': 1 });
      expect(table.topPortUse).toEqual(
        expect.arrayContaining([
          { natSource: '198.18.2.1', dst: '198.18.2.2', dport: 5001, proto: 'tcp', count: 16 },
          { natSource: '198.18.2.1', dst: '198.18.2.2', dport: 7, proto: 'udp', count: 16 },
        ]),
      );
      // only the management SSH entry is judged for idleness
      expect(table.establishedIdle.total).toBe(1);
      expect(Object.values(table.establishedIdle.idleAtLeast).every((n) => n === 0)).toBe(true);
    }
    expect(fromCli.topSources).toEqual(fromProc.topSources);
  });
});

describe('"table full" lines of kernel 6.1 (Debian 12)', () => {
  const iso = recorded('dmesg-iso-table-full.txt');
  const plain = recorded('dmesg-table-full.txt');
  const busybox = recorded('busybox-dmesg-table-full.txt');
  const dmesgT = recorded('dmesg-T-table-full.txt');
  /** The gateway's clock and uptime noted in the header (recorded right after the log). */
  const clock = /gateway clock right after: (\S+Z)/.exec(plain.header)?.[1] as string;
  const uptime = Number(/uptime ([\d.]+) s/.exec(plain.header)?.[1]);
  const bootTime = new Date(Date.parse(clock) - uptime * 1000).toISOString();
  /** The gateway's own namespace (6.1 names none: every line belongs to whoever reads it). */
  const netnsInode = 4026531840;

  it('the 6.1 form: double prefix, no namespace, ratelimit lines between bursts', () => {
    expect(iso.lines.filter((l) => l.endsWith(' nf_conntrack: nf_conntrack: table full, dropping packet')).length).toBe(50);
    expect(iso.lines.filter((l) => / net_ratelimit: \d+ callbacks suppressed$/.test(l)).length).toBe(4);
    expect(iso.lines.length).toBe(54);
    expect(iso.text).not.toContain('in netns');
  });

  it('dmesg --time-format iso: 50 lines dated, the suppressed counts kept with the line they precede', () => {
    const events = parseKernelLog(iso.text, { netnsInode, referenceTime: clock });
    const full = events.filter((e) => e.kind === 'table-full');
    expect(full.length).toBe(50);
    expect(full.every((e) => e.netns === null && e.at !== null)).toBe(true);
    expect(full[0]?.at).toBe('2026-12-04T22:29:56.192Z');
    const suppressed = events.filter((e) => e.kind === 'suppressed');
    expect(suppressed.map((e) => e.suppressed)).toEqual([134, 118, 118, 118]);
    for (const s of suppressed) expect(events[events.indexOf(s) + 1]?.kind).toBe('table-full');
    // printed (50) + suppressed (488) = 538 of the 592 drops conntrack -S counted right after
    // (drops suppressed since the last printed line are only reported with the next burst).
    expect(50 + suppressed.reduce((n, e) => n + (e.suppressed ?? 0), 0)).toBe(538);
  });

  it('plain dmesg and busybox dmesg ([seconds] since boot): same events, dated from the gateway clock minus its uptime', () => {
    const fromIso = parseKernelLog(iso.text, { netnsInode, referenceTime: clock });
    expect(busybox.text).toBe(plain.text);
    for (const { text } of [plain, busybox]) {
      // without the boot time: counted, but no date (what a busybox gateway gave before)
      const undated = parseKernelLog(text, { netnsInode, referenceTime: clock });
      expect(undated.map((e) => [e.kind, e.suppressed])).toEqual(fromIso.map((e) => [e.kind, e.suppressed]));
      expect(undated.every((e) => e.at === null)).toBe(true);
      const dated = parseKernelLog(text, { netnsInode, referenceTime: clock, bootTime });
      expect(dated.map((e) => [e.kind, e.suppressed])).toEqual(fromIso.map((e) => [e.kind, e.suppressed]));
      dated.forEach((e, i) => {
        // `date` printed whole seconds: within 1 s of what dmesg --time-format iso computed
        expect(Math.abs(Date.parse(e.at as string) - Date.parse(fromIso[i]?.at as string))).toBeLessThanOrEqual(1000);
      });
    }
  });

  it('dmesg -T: dated to the second, same events', () => {
    const fromIso = parseKernelLog(iso.text, { netnsInode, referenceTime: clock });
    const events = parseKernelLog(dmesgT.text, { netnsInode, referenceTime: clock });
    expect(events.map((e) => e.kind)).toEqual(fromIso.map((e) => e.kind));
    events.forEach((e, i) => expect(Math.abs(Date.parse(e.at as string) - Date.parse(fromIso[i]?.at as string))).toBeLessThan(1000));
  });

  it('the check of a busybox gateway counts them in the last 5 minutes (facts: kernel log + clock/uptime line)', () => {
    const host = readFileSync(new URL('../fixtures/facts-netns.txt', import.meta.url), 'utf8');
    const source = '@@section kernel-log-source@@\n';
    const log = '@@section kernel-log@@\n';
    const withBusybox =
      host.slice(0, host.indexOf(source) + source.length) +
      `dmesg\nclock ${Date.parse(clock) / 1000} uptime ${uptime}\n` +
      host.slice(host.indexOf('@@end kernel-log-source'), host.indexOf(log) + log.length) +
      busybox.text +
      host.slice(host.indexOf('@@end kernel-log rc='));
    expect(parseBootTime(`dmesg\nclock ${Date.parse(clock) / 1000} uptime ${uptime}\n`)).toBe(bootTime);
    // collected 27 s after the first line, as recorded
    const facts = parseFacts(withBusybox, clock);
    const summary = summarizeTableFull(facts);
    expect(summary).toMatchObject({ total: 50, last5Min: 50, lastHour: 50, otherNetns: 0, suppressedCallbacks: 488 });
    expect(summary.lastSeenAgoSeconds).toBeGreaterThanOrEqual(2);
    expect(summary.lastSeenAgoSeconds).toBeLessThanOrEqual(4);
    // the same log without the clock line: counted, but none "in the last 5 minutes"
    const without = parseFacts(withBusybox.replace(/^clock \d+ uptime [\d.]+\n/m, ''), clock);
    expect(summarizeTableFull(without)).toMatchObject({ total: 50, last5Min: 0, lastSeen: null });
  });

  it('compared with the 6.18 host: there each line names its namespace, and other namespaces are left out', () => {
    const host = readFileSync(new URL('../fixtures/dmesg-conntrack.txt', import.meta.url), 'utf8');
    expect(host).toMatch(/nf_conntrack: nf_conntrack: table full in netns \d+, dropping packet/);
    expect(parseKernelLog(host, { netnsInode }).filter((e) => e.kind === 'table-full')).toEqual([]);
    // 6.1 lines name no namespace: all 50 are the reader's
    expect(parseKernelLog(iso.text, { netnsInode: 1 }).filter((e) => e.kind === 'table-full').length).toBe(50);
  });
});
