/** The episode message and its thread replies: what a person reads, within Slack's limits. */
import { describe, expect, it } from 'vitest';
import { advance, growth, initialWatchState, type EpisodeEvent, type WatchState } from '../../../src/monitor/episodes.js';
import { renderEpisodeEvent, renderEpisodeMessage } from '../../../src/slack/blocks/episode.js';
import { validateMessage } from '../../support/slack-api/block-kit-validator.js';

const MAX = 262_144;
const T0 = Date.parse('2026-12-04T10:00:00Z');

function run(percents: number[], drops: number[] = []): { state: WatchState; events: EpisodeEvent[] } {
  let state = initialWatchState('gw-3');
  const events: EpisodeEvent[] = [];
  let drop = 0;
  percents.forEach((p, i) => {
    drop += drops[i] ?? 0;
    const t = advance(state, { ok: true, sample: { gatewayAtMs: null, at: new Date(T0 + i * 30_000).toISOString(), count: Math.round((MAX * p) / 100), max: MAX, stats: { drop, earlyDrop: 0, insertFailed: 0 }, tableFullLines: 0 } });
    state = t.state;
    events.push(...t.events);
  });
  return { state, events };
}

function allText(m: { text: string; blocks: unknown[] }): string {
  return JSON.stringify(m.blocks);
}

describe('episode message', () => {
  it('an open critical episode shows now, peak, drops, growth with minutes to full, and a Run full check button', () => {
    const { state } = run([80, 85, 90, 96], [0, 0, 0, 1200]);
    const msg = renderEpisodeMessage({ episode: state.episode!, growth: growth(state), lastPollAt: state.lastSample!.at, pollError: null });
    expect(validateMessage(msg).ok).toBe(true);
    const body = allText(msg);
    expect(body).toContain('gw-3: CRITICAL, table full, dropping new connections');
    expect(body).toContain('*Now:* 96% (251,658 / 262,144)');
    expect(body).toContain('drop 1,200');
    expect(body).toMatch(/full in about (\d+ min|less than a minute) at this rate/);
    expect(body).toContain('Run full check');
    expect(msg.text).toContain('96% now');
  });

  it('a resolved episode says how long it lasted and has no button', () => {
    const { state } = run([96, 97, 50, 50, 50]);
    const msg = renderEpisodeMessage({ episode: state.episode!, growth: growth(state), lastPollAt: state.lastSample!.at, pollError: null });
    expect(validateMessage(msg).ok).toBe(true);
    const body = allText(msg);
    expect(body).toContain('resolved');
    expect(body).toContain('lasted 2 min 0 s');
    expect(body).toContain('*Peak:* 97%');
    expect(body).not.toContain('Run full check');
  });

  it('every transition renders a valid thread reply that names what happened', () => {
    const { events } = run([85, 85, 96, 50, 50, 50]);
    expect(events.map((e) => e.event)).toEqual(['opened', 'escalated', 'resolved']);
    const texts = events.map((e) => renderEpisodeEvent(e));
    for (const t of texts) expect(validateMessage(t).ok).toBe(true);
    expect(allText(texts[0]!)).toContain('gw-3: warning');
    expect(allText(texts[1]!)).toContain('Escalated to critical');
    expect(allText(texts[2]!)).toContain('Resolved* after 2 min 0 s');
  });

  it('gateway text in a poll error is escaped (no mention or link can be injected)', () => {
    const msg = renderEpisodeEvent({ event: 'poll-failed', gateway: 'gw-3', at: new Date(T0).toISOString(), level: null, kind: null, episodeId: null, percent: null, count: null, max: null, drops: { drop: 0, earlyDrop: 0, insertFailed: 0 }, error: '<!channel> <https://evil|re-auth>' });
    expect(allText(msg)).not.toContain('<!channel>');
    expect(allText(msg)).not.toContain('<https://evil');
  });
});
