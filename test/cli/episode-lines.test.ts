/**
 * The terminal watch's lines: one per event, the documented JSON shape, a readable text form,
 * only the gateways asked for; and the --interval forms.
 */
import { describe, expect, it } from 'vitest';
import { EpisodeLines, episodeEventText } from '../../src/cli/episode-lines.js';
import { parseInterval } from '../../src/cli/interval.js';
import { advance, DEFAULT_EPISODE_RULES, initialWatchState, type PollOutcome, type WatchState } from '../../src/monitor/episodes.js';

function sink(): { out: NodeJS.WritableStream; lines: () => string[] } {
  let text = '';
  const out = { write: (chunk: string) => ((text += chunk), true) } as unknown as NodeJS.WritableStream;
  return { out, lines: () => text.split('\n').filter(Boolean) };
}

const sample = (atS: number, count: number, stats = { drop: 0, earlyDrop: 0, insertFailed: 0 }): PollOutcome => ({
  ok: true,
  sample: { at: new Date(Date.UTC(2026, 11, 4, 19, 0, atS)).toISOString(), gatewayAtMs: null, count, max: 1000, stats, tableFullLines: 0 },
});

/** The events of a sequence of polls, through the real state machine. */
function eventsOf(outcomes: PollOutcome[]) {
  let state: WatchState = initialWatchState('gw-1');
  const all = [];
  for (const o of outcomes) {
    const t = advance(state, o, DEFAULT_EPISODE_RULES);
    state = t.state;
    all.push(...t.events);
  }
  return all;
}

describe('episode lines', () => {
  const story = eventsOf([sample(0, 850), sample(1, 850), sample(2, 990), sample(3, 100), sample(4, 100), sample(5, 100), { ok: false, at: '2026-12-04T19:00:06.000Z', error: 'connect ETIMEDOUT' }]);

  it('prints one JSON object per event, with the documented fields', async () => {
    const s = sink();
    const lines = new EpisodeLines(s.out, 'json', new Set(['gw-1']));
    await lines.episodePublisher.publish({ gateway: 'gw-1', events: story, state: initialWatchState('gw-1'), entry: null });
    const parsed = s.lines().map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(parsed.map((p) => p['event'])).toEqual(['opened', 'escalated', 'resolved', 'poll-failed']);
    expect(parsed[0]).toEqual({
      event: 'opened',
      gateway: 'gw-1',
      at: '2026-12-04T19:00:01.000Z',
      level: 'warning',
      kind: 'utilisation',
      episodeId: parsed[0]!['episodeId'],
      percent: 85,
      count: 850,
      max: 1000,
      drops: { drop: 0, earlyDrop: 0, insertFailed: 0 },
    });
    expect(parsed[1]).toMatchObject({ event: 'escalated', level: 'critical', percent: 99 });
    expect(parsed[2]).toMatchObject({ event: 'resolved', level: 'critical', durationMs: 4000 });
    expect(parsed[3]).toMatchObject({ event: 'poll-failed', level: null, kind: null, percent: null, error: 'connect ETIMEDOUT' });
  });

  it('prints a readable text line: what, gateway, level, %, count/max, drops', () => {
    expect(episodeEventText(story[0]!)).toBe('19:00:01  OPENED          gw-1  warning utilisation  85.0 %  850/1,000  drops 0 early 0 insert-failed 0');
    expect(episodeEventText(story[2]!)).toContain('RESOLVED');
    expect(episodeEventText(story[2]!)).toContain('lasted 4 s');
    expect(episodeEventText(story[3]!)).toBe('19:00:06  POLL-FAILED     gw-1  -  ? %  ?/?  drops 0 early 0 insert-failed 0  error: connect ETIMEDOUT');
  });

  it('prints only the gateways it was asked to watch', async () => {
    const s = sink();
    const lines = new EpisodeLines(s.out, 'text', new Set(['gw-2']));
    await lines.episodePublisher.publish({ gateway: 'gw-1', events: story, state: initialWatchState('gw-1'), entry: null });
    await lines.checkPublisher.failed('gw-1', [], 'boom');
    expect(s.lines()).toEqual([]);
    await lines.checkPublisher.failed('gw-2', [], 'cannot connect\nhint: x');
    expect(s.lines()).toHaveLength(1);
    expect(s.lines()[0]).toMatch(/CHECK-FAILED\s+gw-2  cannot connect$/);
  });
});

describe('--interval', () => {
  it('reads seconds, 30s and 1m', () => {
    expect(parseInterval('5')).toEqual({ ok: true, seconds: 5 });
    expect(parseInterval('30s')).toEqual({ ok: true, seconds: 30 });
    expect(parseInterval('1m')).toEqual({ ok: true, seconds: 60 });
    expect(parseInterval('60m')).toEqual({ ok: true, seconds: 3600 });
  });

  it('refuses anything else with one line', () => {
    for (const bad of ['', '0', '61m', '1h', '1.5', '-5', '5 s', 'soon']) {
      const r = parseInterval(bad);
      expect(r.ok, bad).toBe(false);
      if (!r.ok) expect(r.error).not.toContain('\n');
    }
  });
});
