import { describe, expect, it } from 'vitest';
import {
  advance,
  counterIncrease,
  DEFAULT_EPISODE_RULES,
  growth,
  initialWatchState,
  watchStateSchema,
  type DropCounters,
  type EpisodeEvent,
  type PollOutcome,
  type WatchState,
} from '../../src/monitor/episodes.js';

const MAX = 262_144;
const T0 = Date.parse('2026-12-04T10:00:00Z');

/** A gateway polled every 30 s; counters cumulative like conntrack -S summed over CPUs. */
class Poller {
  state: WatchState = initialWatchState('gw-3');
  events: EpisodeEvent[] = [];
  private n = 0;
  stats: DropCounters = { drop: 0, earlyDrop: 0, insertFailed: 0 };

  poll(percent: number, opts: { add?: Partial<DropCounters>; lines?: number; stats?: DropCounters } = {}): EpisodeEvent[] {
    if (opts.stats) this.stats = opts.stats;
    this.stats = {
      drop: this.stats.drop + (opts.add?.drop ?? 0),
      earlyDrop: this.stats.earlyDrop + (opts.add?.earlyDrop ?? 0),
      insertFailed: this.stats.insertFailed + (opts.add?.insertFailed ?? 0),
    };
    const outcome: PollOutcome = {
      ok: true,
      sample: { gatewayAtMs: null, at: this.at(), count: Math.round((MAX * percent) / 100), max: MAX, stats: { ...this.stats }, tableFullLines: opts.lines ?? 0 },
    };
    return this.feed(outcome);
  }

  fail(error = 'connect timeout'): EpisodeEvent[] {
    return this.feed({ ok: false, at: this.at(), error });
  }

  private at(): string {
    return new Date(T0 + this.n++ * 30_000).toISOString();
  }

  private feed(outcome: PollOutcome): EpisodeEvent[] {
    const t = advance(this.state, outcome);
    this.state = t.state;
    this.events.push(...t.events);
    return t.events;
  }

  names(): string[] {
    return this.events.map((e) => e.event);
  }
}

describe('episodes: utilisation', () => {
  it('one poll at 85 % is not an episode; the second opens exactly one warning; 20 more polls post nothing', () => {
    const p = new Poller();
    p.poll(50);
    expect(p.poll(85)).toEqual([]);
    const opened = p.poll(85);
    expect(opened).toHaveLength(1);
    expect(opened[0]).toMatchObject({ event: 'opened', gateway: 'gw-3', level: 'warning', kind: 'utilisation', percent: 85, max: MAX });
    for (let i = 0; i < 20; i++) p.poll(85 + (i % 3));
    expect(p.names()).toEqual(['opened']);
  });

  it('saturating escalates once to critical; draining resolves once after three polls below warn - 10, with the duration', () => {
    const p = new Poller();
    p.poll(85);
    p.poll(85);
    p.poll(96);
    p.poll(99);
    p.poll(100);
    expect(p.names()).toEqual(['opened', 'escalated']);
    expect(p.events[1]).toMatchObject({ level: 'critical', kind: 'utilisation', percent: 96 });
    p.poll(75); // below warn, not below warn - 10: still open
    p.poll(65);
    p.poll(60);
    expect(p.names()).toEqual(['opened', 'escalated']);
    const resolved = p.poll(50);
    expect(resolved).toHaveLength(1);
    expect(resolved[0]).toMatchObject({ event: 'resolved', level: 'critical' });
    expect(resolved[0]!.durationMs).toBe(7 * 30_000);
    expect(p.state.episode?.peakPercent).toBe(100);
    p.poll(40);
    p.poll(40);
    expect(p.names()).toEqual(['opened', 'escalated', 'resolved']);
  });

  it('95 % opens critical at once, without waiting for a second poll', () => {
    const p = new Poller();
    expect(p.poll(97)[0]).toMatchObject({ event: 'opened', level: 'critical', kind: 'utilisation' });
  });
});

describe('episodes: drop counters', () => {
  it('a drop beyond insert_failed is critical at once even below 80 % (the table was full between polls)', () => {
    const p = new Poller();
    p.poll(60);
    const ev = p.poll(70, { add: { drop: 500 } });
    expect(ev[0]).toMatchObject({ event: 'opened', level: 'critical', kind: 'drops', drops: { drop: 500, earlyDrop: 0, insertFailed: 0 } });
  });

  it('early_drop alone is critical (one-way flood, the kernel evicts unassured entries)', () => {
    const p = new Poller();
    p.poll(60);
    expect(p.poll(60, { add: { earlyDrop: 3 } })[0]).toMatchObject({ level: 'critical', kind: 'drops' });
  });

  it('a new "table full" line is critical even if the counters were not readable', () => {
    const p = new Poller();
    p.poll(60);
    expect(p.poll(60, { lines: 2 })[0]).toMatchObject({ level: 'critical', kind: 'drops' });
  });

  it('insert_failed rising alone (drop == insert_failed) is NAT port exhaustion, not a full table', () => {
    const p = new Poller();
    p.poll(25);
    const ev = p.poll(25, { add: { drop: 4096, insertFailed: 4096 } });
    expect(ev[0]).toMatchObject({ event: 'opened', kind: 'port-exhaustion', level: 'critical', drops: { drop: 4096, insertFailed: 4096 } });
    // it resolves once insert_failed stops rising for three polls
    p.poll(25);
    p.poll(25);
    expect(p.poll(25)[0]).toMatchObject({ event: 'resolved', kind: 'port-exhaustion' });
  });

  it('a counter that goes down is a reset (reboot): no negative drops and no episode', () => {
    const p = new Poller();
    p.poll(40, { stats: { drop: 90_000, earlyDrop: 10, insertFailed: 90_000 } });
    const ev = p.poll(40, { stats: { drop: 0, earlyDrop: 0, insertFailed: 0 } });
    expect(ev).toEqual([]);
    expect(counterIncrease(90_000, 0)).toBe(0);
    expect(counterIncrease(90_000, 12)).toBe(12);
  });

  it('drops during an open episode accumulate across polls and resets', () => {
    const p = new Poller();
    p.poll(96);
    p.poll(97, { add: { drop: 100 } });
    p.poll(97, { stats: { drop: 30, earlyDrop: 0, insertFailed: 0 } }); // reboot, 30 since
    expect(p.state.episode?.drops).toEqual({ drop: 130, earlyDrop: 0, insertFailed: 0 });
  });
});

describe('episodes: storms', () => {
  it('flapping around the thresholds reopens the same episode and counts the flaps, never a second "opened"', () => {
    const p = new Poller();
    p.poll(96);
    for (let round = 0; round < 3; round++) {
      p.poll(50);
      p.poll(50);
      p.poll(50);
      p.poll(96);
    }
    expect(p.names()).toEqual(['opened', 'resolved', 'reopened', 'resolved', 'reopened', 'resolved', 'reopened']);
    const ids = new Set(p.events.map((e) => e.episodeId));
    expect(ids.size).toBe(1);
    expect(p.state.episode?.flaps).toBe(3);
  });

  it('after the flap window a new episode opens with a new id', () => {
    const rules = { ...DEFAULT_EPISODE_RULES, flapWindowMs: 60_000 };
    let s = initialWatchState('gw-3');
    const ids: string[] = [];
    const feed = (min: number, pct: number) => {
      const t = advance(s, { ok: true, sample: { gatewayAtMs: null, at: new Date(T0 + min * 60_000).toISOString(), count: (MAX * pct) / 100, max: MAX, stats: { drop: 0, earlyDrop: 0, insertFailed: 0 }, tableFullLines: 0 } }, rules);
      s = t.state;
      for (const e of t.events) if (e.event === 'opened') ids.push(e.episodeId ?? '');
    };
    feed(0, 96);
    feed(1, 10);
    feed(2, 10);
    feed(3, 10);
    feed(10, 96);
    expect(ids).toHaveLength(2);
    expect(ids[0]).not.toBe(ids[1]);
  });

  it('a failing poll is reported once, not every poll, and its recovery once', () => {
    const p = new Poller();
    p.poll(50);
    expect(p.fail()).toHaveLength(1);
    for (let i = 0; i < 10; i++) expect(p.fail()).toEqual([]);
    expect(p.poll(50).map((e) => e.event)).toEqual(['poll-recovered']);
    expect(p.events[0]).toMatchObject({ event: 'poll-failed', error: 'connect timeout', level: null });
  });

  it('an open episode is re-announced after the reminder interval, not before', () => {
    const p = new Poller();
    p.poll(96);
    const pollsIn4h = (4 * 3600) / 30;
    for (let i = 1; i < pollsIn4h; i++) p.poll(96);
    expect(p.names()).toEqual(['opened']);
    p.poll(96);
    expect(p.names()).toEqual(['opened', 'reminder']);
  });

  it('a sample that is not newer than the last one (a duplicate or late job) changes nothing', () => {
    const p = new Poller();
    p.poll(96);
    const again = advance(p.state, { ok: true, sample: p.state.lastSample! });
    expect(again.events).toEqual([]);
    expect(again.state).toBe(p.state);
  });

  it('the state survives a round trip through JSON (a restart of the bot keeps the episode)', () => {
    const p = new Poller();
    p.poll(85);
    p.poll(85);
    const restored = watchStateSchema.parse(JSON.parse(JSON.stringify(p.state)));
    p.state = restored;
    p.poll(86);
    expect(p.names()).toEqual(['opened']);
  });
});

describe('growth', () => {
  it('estimates entries per minute and minutes to full from the recent polls', () => {
    const p = new Poller();
    for (let i = 0; i < 5; i++) p.poll(50 + i); // +1 % of 262,144 per 30 s
    const g = growth(p.state)!;
    expect(g.perMinute).toBeGreaterThan(5200);
    expect(g.perMinute).toBeLessThan(5300);
    // 46 % of the table left at ~5,243 entries per minute: about 23 minutes
    expect(g.minutesToFull).toBeGreaterThan(22);
    expect(g.minutesToFull).toBeLessThan(24);
  });

  it('a shrinking table has no time to full', () => {
    const p = new Poller();
    for (let i = 0; i < 5; i++) p.poll(90 - i);
    expect(growth(p.state)?.minutesToFull).toBeNull();
  });
});
