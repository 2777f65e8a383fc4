/** An alert as an episode source (pure): opening, joining, raising, resolution replies; the alert's level, kind and check id. */
import { describe, expect, it } from 'vitest';
import { checkRequestIdOf, signalOf } from '../../src/monitor/alertmanager-receiver.js';
import { alertSchema } from '../../src/monitor/alertmanager.js';
import { advance, alertArrived, initialWatchState, type AlertSignal, type PollOutcome } from '../../src/monitor/episodes.js';
import { requestIdSchema } from '../../src/queue/jobs.js';

const MAX = 262_144;
const T0 = Date.parse('2026-12-04T10:00:00Z');
const at = (s: number) => new Date(T0 + s * 1000).toISOString();

function poll(s: number, percent: number): PollOutcome {
  return { ok: true, sample: { gatewayAtMs: null, at: at(s), count: Math.round((MAX * percent) / 100), max: MAX, stats: { drop: 0, earlyDrop: 0, insertFailed: 0 }, tableFullLines: 0 } };
}

function signal(over: Partial<AlertSignal> = {}): AlertSignal {
  return { name: 'ConntrackTableSaturated', status: 'firing', at: at(100), level: 'critical', kind: 'utilisation', summary: 'at 97%', ...over };
}

describe('alertArrived', () => {
  it('opens an episode on an unpolled gateway: opened then alert, no numbers', () => {
    const t = alertArrived(initialWatchState('gw-3'), signal());
    expect(t.events.map((e) => e.event)).toEqual(['opened', 'alert']);
    expect(t.state.episode).toMatchObject({ status: 'open', level: 'critical', kind: 'utilisation', max: 0, openedAt: at(100) });
    expect(t.events[1]).toMatchObject({ episodeId: t.state.episode!.id, alert: { name: 'ConntrackTableSaturated', status: 'firing', summary: 'at 97%' } });
  });

  it('on a watched gateway the episode it opens carries the last poll\'s numbers; the polls then continue it', () => {
    const polled = advance(initialWatchState('gw-3'), poll(0, 50)).state;
    const opened = alertArrived(polled, signal({ level: 'warning', kind: 'utilisation' }));
    expect(opened.state.episode).toMatchObject({ lastPercent: 50, lastCount: Math.round(MAX / 2), max: MAX, level: 'warning' });
    const next = advance(opened.state, poll(130, 97));
    expect(next.events.map((e) => e.event)).toEqual(['escalated']);
    expect(next.state.episode!.id).toBe(opened.state.episode!.id);
  });

  it('joins an open episode (no second opened); a critical alert raises a warning episode', () => {
    let s = advance(initialWatchState('gw-3'), poll(0, 85)).state;
    s = advance(s, poll(30, 85)).state;
    expect(s.episode).toMatchObject({ status: 'open', level: 'warning' });
    const joined = alertArrived(s, signal({ kind: 'drops' }));
    expect(joined.events.map((e) => e.event)).toEqual(['alert']);
    expect(joined.state.episode).toMatchObject({ id: s.episode!.id, level: 'critical', kind: 'drops' });
    const again = alertArrived(joined.state, signal({ level: 'warning', name: 'ConntrackTableHigh' }));
    expect(again.state.episode!.level).toBe('critical');
  });

  it('a resolved alert is an event on the episode (even one already resolved), changing nothing; with no episode, nothing', () => {
    const open = alertArrived(initialWatchState('gw-3'), signal()).state;
    const r = alertArrived(open, signal({ status: 'resolved', at: at(400) }));
    expect(r.events).toHaveLength(1);
    expect(r.events[0]).toMatchObject({ event: 'alert', alert: { status: 'resolved' } });
    expect(r.state.episode).toEqual(open.episode);
    const none = initialWatchState('gw-4');
    expect(alertArrived(none, signal({ status: 'resolved' }))).toEqual({ state: none, events: [] });
  });
});

describe('an Alertmanager alert as a signal', () => {
  const base = { labels: { alertname: 'ConntrackNatPortExhaustion', severity: 'critical', kind: 'port-exhaustion' }, annotations: { summary: 'ports' }, startsAt: '2026-12-04T10:00:00.123Z', endsAt: '0001-01-01T00:00:00Z', fingerprint: 'ab12cd34ef56ab78' };

  it('level from severity, kind from kind (unknown kinds: utilisation), the time from startsAt, or endsAt once resolved', () => {
    expect(signalOf(alertSchema.parse({ ...base, status: 'firing' }))).toEqual({ name: 'ConntrackNatPortExhaustion', status: 'firing', at: base.startsAt, level: 'critical', kind: 'port-exhaustion', summary: 'ports' });
    const odd = signalOf(alertSchema.parse({ ...base, status: 'resolved', endsAt: '2026-12-04T10:05:00Z', labels: { alertname: 'X', severity: 'page', kind: 'weird' } }));
    expect(odd).toMatchObject({ level: 'warning', kind: 'utilisation', at: '2026-12-04T10:05:00Z' });
  });

  it('the check request id is stable per alert occurrence and a valid job request id, whatever the fingerprint holds', () => {
    const a = alertSchema.parse({ ...base, status: 'firing' });
    expect(checkRequestIdOf(a)).toBe(checkRequestIdOf(alertSchema.parse({ ...base, status: 'firing' })));
    expect(checkRequestIdOf(a)).not.toBe(checkRequestIdOf(alertSchema.parse({ ...base, status: 'firing', startsAt: '2026-12-04T11:00:00Z' })));
    expect(requestIdSchema.safeParse(checkRequestIdOf(alertSchema.parse({ ...base, status: 'firing', fingerprint: 'a:b/c d'.padEnd(64, '!') }))).success).toBe(true);
  });
});
