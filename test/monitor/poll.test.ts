/** The watch's poll script output, recorded on lab gateways, parsed and turned into samples. */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { newTableFullLines, parsePollOutput, PollOutputError, POLL_SCRIPT } from '../../src/diagnostics/poll-script.js';
import { advance, initialWatchState } from '../../src/monitor/episodes.js';
import { sampleOf } from '../../src/monitor/poller.js';

const fixture = (name: string) => readFileSync(resolve(import.meta.dirname, '../fixtures', name), 'utf8');

describe('poll output', () => {
  it('healthy: count, max, counters summed over CPUs, and the log lines with their times', () => {
    const r = parsePollOutput(fixture('poll-healthy.txt'));
    expect(r.count).toBe(2);
    expect(r.max).toBe(262_144);
    expect(r.netnsInode).toBe(4026532174);
    expect(r.stats).toEqual({ drop: 0, earlyDrop: 0, insertFailed: 0 });
    expect(r.tableFullAtMs.length).toBe(20);
    expect(r.gatewayAtMs).toBe(1796409138_000);
  });

  it('saturated: 262,144 of 262,144 and 0x800 + 0x805 = 4,101 drops', () => {
    const r = parsePollOutput(fixture('poll-saturated.txt'));
    expect(r.count).toBe(262_144);
    expect(r.stats).toEqual({ drop: 4101, earlyDrop: 0, insertFailed: 0 });
  });

  it('lines of an earlier namespace with the same inode are not new on the first poll; lines after the previous poll are', () => {
    const healthy = parsePollOutput(fixture('poll-healthy.txt'));
    let state = initialWatchState('gw');
    const first = sampleOf(healthy, state, new Date('2026-12-04T18:32:18Z'));
    expect(first.tableFullLines).toBe(0);
    state = advance(state, { ok: true, sample: first }).state;
    const saturated = parsePollOutput(fixture('poll-saturated.txt'));
    // the saturated poll's log lines are all from 18:25:59 (the earlier namespace) or later fills
    const second = sampleOf(saturated, state, new Date('2026-12-04T18:32:38Z'));
    const newer = saturated.tableFullAtMs.filter((t) => t > healthy.gatewayAtMs).length;
    expect(second.tableFullLines).toBe(newer);
    const t = advance(state, { ok: true, sample: second });
    expect(t.events.map((e) => [e.event, e.level, e.kind])).toEqual([['opened', 'critical', 'drops']]);
    expect(t.events[0]?.drops.drop).toBe(4101);
  });

  it('plain and busybox dmesg lines ([seconds since boot]) are dated from the uptime line and count as new', () => {
    const stat = fixture('poll-healthy.txt').split('@@stat@@\n')[1]?.split('@@log@@')[0] ?? '';
    const clock = 1796409158;
    const output = (version: 'v1' | 'v2') =>
      [
        `@@poll ${version}@@`,
        String(clock),
        'net:[4026532174]',
        '1000',
        '262144',
        ...(version === 'v2' ? ['5000.25'] : []),
        `@@stat@@\n${stat}@@log@@`,
        '[ 4990.123456] nf_conntrack: nf_conntrack: table full, dropping packet',
        '[ 4999.500000] nf_conntrack: nf_conntrack: table full, dropping packet',
        '@@end@@',
      ].join('\n');
    const boot = clock * 1000 - 5_000_250;
    const r = parsePollOutput(output('v2'));
    expect(r.tableFullAtMs).toEqual([boot + 4_990_123, boot + 4_999_500]);
    // one of the two is newer than a poll 5 s earlier
    expect(newTableFullLines(r, (clock - 5) * 1000)).toBe(1);
    // without the uptime (v1 output) such lines have no time and are never counted
    expect(parsePollOutput(output('v1')).tableFullAtMs).toEqual([]);
  });

  it('the script prints the uptime it dates those lines with', () => {
    expect(POLL_SCRIPT).toContain("cut -d' ' -f1 /proc/uptime");
  });

  it('unreadable counters repeat the previous ones instead of looking like a reboot', () => {
    const r = parsePollOutput(fixture('poll-saturated.txt'));
    let state = initialWatchState('gw');
    state = advance(state, { ok: true, sample: sampleOf(r, state, new Date('2026-12-04T18:00:00Z')) }).state;
    const noStats = sampleOf({ ...r, stats: null }, state, new Date('2026-12-04T18:00:30Z'));
    expect(noStats.stats).toEqual(r.stats);
  });

  it('refuses truncated or non-numeric output with a clear error', () => {
    const text = fixture('poll-healthy.txt');
    expect(() => parsePollOutput(text.replace('@@end@@', ''))).toThrow(PollOutputError);
    expect(() => parsePollOutput(text.replace('262144', 'lots'))).toThrow(/not numeric|not a whole number/);
  });

  it('the script is read-only and takes no input', () => {
    expect(POLL_SCRIPT).not.toMatch(/sysctl -w|conntrack -[DFIRU]|\btee\b|>\s*\/(proc|sys|etc)/);
    // the only expansions are of the script's own namespace variable
    expect(POLL_SCRIPT.match(/\$\{[^}]*\}/g)).toEqual(['${n#net:[}', '${n%]}']);
  });
});
