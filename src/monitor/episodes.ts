/**
 * Episodes: what the watch makes of a stream of polls, per gateway (runbook step 7).
 *
 * A pure state machine: (state, poll outcome, rules) -> (state, events). The store keeps the
 * state in Redis so that restarts and several workers agree; the publishers turn events into
 * one Slack message per episode (edited in place), thread replies and terminal lines.
 *
 *  - warning: utilisation >= warnPercent for `warnPolls` polls in a row;
 *  - critical: utilisation >= critPercent, or at once on any drop beyond insert_failed or
 *    any early_drop or a new "table full" line (the table was full, whatever the sample says);
 *  - port exhaustion: insert_failed rising while the table is not full (NAT clash drops count
 *    in both drop and insert_failed: measured 4,096 / 4,096 on a lab gateway);
 *  - resolved after `clearPolls` polls in a row below warnPercent - 10 with no drops;
 *  - a counter that goes down is a reset (reboot): counted from zero, never negative;
 *  - a condition that returns within `flapWindowMs` of a resolution reopens the same episode
 *    and counts the flap (no second message);
 *  - a failing poll is reported once, not every poll, and its recovery once.
 */
import { z } from 'zod';

export const dropCountersSchema = z.object({
  drop: z.number().int().nonnegative(),
  earlyDrop: z.number().int().nonnegative(),
  insertFailed: z.number().int().nonnegative(),
});
export type DropCounters = z.infer<typeof dropCountersSchema>;

/** One light poll: cumulative counters summed over CPUs, and the "table full" lines new since the last poll. */
export const pollSampleSchema = z.object({
  at: z.string(),
  /** The gateway's own clock at the poll (ms), for "new since the last poll" on its kernel log. */
  gatewayAtMs: z.number().nullable().default(null),
  count: z.number().int().nonnegative(),
  max: z.number().int().positive(),
  stats: dropCountersSchema,
  tableFullLines: z.number().int().nonnegative(),
});
export type PollSample = z.infer<typeof pollSampleSchema>;

export type PollOutcome = { ok: true; sample: PollSample } | { ok: false; at: string; error: string };

export const episodeLevelSchema = z.enum(['warning', 'critical']);
export type EpisodeLevel = z.infer<typeof episodeLevelSchema>;
export const episodeKindSchema = z.enum(['utilisation', 'drops', 'port-exhaustion']);
export type EpisodeKind = z.infer<typeof episodeKindSchema>;

export const episodeSchema = z.object({
  id: z.string(),
  gateway: z.string(),
  status: z.enum(['open', 'resolved']),
  level: episodeLevelSchema,
  kind: episodeKindSchema,
  openedAt: z.string(),
  resolvedAt: z.string().nullable(),
  /** When the last message-worthy event (open, escalation, reopen, reminder) was emitted. */
  notifiedAt: z.string(),
  peakPercent: z.number(),
  lastPercent: z.number(),
  lastCount: z.number(),
  max: z.number(),
  /** Counter increases while the episode was open (resets counted from zero). */
  drops: dropCountersSchema,
  tableFullLines: z.number().int().nonnegative(),
  flaps: z.number().int().nonnegative(),
  clearStreak: z.number().int().nonnegative(),
});
export type Episode = z.infer<typeof episodeSchema>;

export const watchStateSchema = z.object({
  gateway: z.string(),
  lastSample: pollSampleSchema.nullable(),
  /** A few recent (time, count) points for the growth rate. */
  recent: z.array(z.object({ atMs: z.number(), count: z.number() })),
  aboveWarnStreak: z.number().int().nonnegative(),
  pollFailing: z.boolean(),
  lastError: z.string().nullable(),
  /** When the last poll ended, successful or not (/metrics: last poll time). */
  lastPollAt: z.string().nullable().default(null),
  /** The open episode, or the last resolved one (kept for the flap window). */
  episode: episodeSchema.nullable(),
});
export type WatchState = z.infer<typeof watchStateSchema>;

export interface EpisodeRules {
  warnPercent: number;
  critPercent: number;
  /** Polls in a row at or above warnPercent before a warning opens. */
  warnPolls: number;
  /** Polls in a row below warnPercent - 10 (and no drops) before an episode resolves. */
  clearPolls: number;
  /** A condition that returns within this long after a resolution reopens the same episode. */
  flapWindowMs: number;
  /** An open episode is re-announced (thread reply) after this long without another event. */
  reminderMs: number;
}

export const DEFAULT_EPISODE_RULES: EpisodeRules = {
  warnPercent: 80,
  critPercent: 95,
  warnPolls: 2,
  clearPolls: 3,
  flapWindowMs: 15 * 60_000,
  reminderMs: 4 * 3600_000,
};

export const episodeEventNameSchema = z.enum(['opened', 'escalated', 'reopened', 'reminder', 'resolved', 'poll-failed', 'poll-recovered', 'alert']);
export type EpisodeEventName = z.infer<typeof episodeEventNameSchema>;

/** One line of `conntrack-ops watch --json`, one thread reply in Slack. */
export interface EpisodeEvent {
  event: EpisodeEventName;
  gateway: string;
  at: string;
  /** The episode's level and kind; null for poll failures outside an episode. */
  level: EpisodeLevel | null;
  kind: EpisodeKind | null;
  episodeId: string | null;
  percent: number | null;
  count: number | null;
  max: number | null;
  /** Counter increases during the episode (or this poll, outside one). */
  drops: DropCounters;
  /** For `resolved`: how long the episode lasted. */
  durationMs?: number;
  /** For `reopened`: how many times it came back. */
  flaps?: number;
  /** For `poll-failed`: why. */
  error?: string;
  /** For a `resolved` by hand (`/conntrack incident <gw> close`): who closed it; for `opened` by a check: who asked for it. */
  by?: string;
  /** For `alert`: the Alertmanager alert that fired or resolved. */
  alert?: { name: string; status: 'firing' | 'resolved'; summary: string };
}

const RECENT_POINTS = 10;

export function initialWatchState(gateway: string): WatchState {
  return { gateway, lastSample: null, recent: [], aboveWarnStreak: 0, pollFailing: false, lastError: null, lastPollAt: null, episode: null };
}

/** Increase of a cumulative counter; a value that goes down is a reset and counts from zero. */
export function counterIncrease(previous: number, current: number): number {
  return current >= previous ? current - previous : current;
}

export function utilisationPercent(count: number, max: number): number {
  return Math.round((count / max) * 1000) / 10;
}

const LEVEL_RANK: Record<EpisodeLevel, number> = { warning: 1, critical: 2 };

interface PollVerdict {
  percent: number;
  increase: DropCounters;
  /** What the poll alone calls for, before streaks. */
  wanted: { level: EpisodeLevel; kind: EpisodeKind } | null;
  /** Counts toward resolution. */
  clear: boolean;
}

function judge(state: WatchState, sample: PollSample, rules: EpisodeRules, aboveWarnStreak: number): PollVerdict {
  const prev = state.lastSample?.stats;
  const increase: DropCounters = prev
    ? {
        drop: counterIncrease(prev.drop, sample.stats.drop),
        earlyDrop: counterIncrease(prev.earlyDrop, sample.stats.earlyDrop),
        insertFailed: counterIncrease(prev.insertFailed, sample.stats.insertFailed),
      }
    : { drop: 0, earlyDrop: 0, insertFailed: 0 };
  const percent = utilisationPercent(sample.count, sample.max);
  const tableFull = increase.drop > increase.insertFailed || increase.earlyDrop > 0 || sample.tableFullLines > 0;
  const portExhaustion = !tableFull && increase.insertFailed > 0;
  let wanted: PollVerdict['wanted'] = null;
  if (tableFull) wanted = { level: 'critical', kind: 'drops' };
  else if (percent >= rules.critPercent) wanted = { level: 'critical', kind: 'utilisation' };
  else if (portExhaustion) wanted = { level: 'critical', kind: 'port-exhaustion' };
  else if (aboveWarnStreak >= rules.warnPolls) wanted = { level: 'warning', kind: 'utilisation' };
  const clear = percent < rules.warnPercent - 10 && !tableFull && !portExhaustion;
  return { percent, increase, wanted, clear };
}

function addCounters(a: DropCounters, b: DropCounters): DropCounters {
  return { drop: a.drop + b.drop, earlyDrop: a.earlyDrop + b.earlyDrop, insertFailed: a.insertFailed + b.insertFailed };
}

function eventOf(name: EpisodeEventName, gateway: string, at: string, episode: Episode | null, sample: PollSample | null, drops: DropCounters): EpisodeEvent {
  return {
    event: name,
    gateway,
    at,
    level: episode?.level ?? null,
    kind: episode?.kind ?? null,
    episodeId: episode?.id ?? null,
    percent: sample ? utilisationPercent(sample.count, sample.max) : (episode?.lastPercent ?? null),
    count: sample?.count ?? episode?.lastCount ?? null,
    max: sample?.max ?? episode?.max ?? null,
    drops,
  };
}

export interface Transition {
  state: WatchState;
  events: EpisodeEvent[];
}

/** Folds one poll outcome into a gateway's watch state. Samples not newer than the last one are ignored. */
export function advance(state: WatchState, outcome: PollOutcome, rules: EpisodeRules = DEFAULT_EPISODE_RULES): Transition {
  if (!outcome.ok) {
    if (state.pollFailing) return { state: { ...state, lastError: outcome.error, lastPollAt: outcome.at }, events: [] };
    const ev = { ...eventOf('poll-failed', state.gateway, outcome.at, openEpisode(state), null, zeroDrops()), error: outcome.error };
    return { state: { ...state, pollFailing: true, lastError: outcome.error, lastPollAt: outcome.at }, events: [ev] };
  }
  const sample = outcome.sample;
  if (state.lastSample && Date.parse(sample.at) <= Date.parse(state.lastSample.at)) return { state, events: [] };

  const events: EpisodeEvent[] = [];
  if (state.pollFailing) events.push(eventOf('poll-recovered', state.gateway, sample.at, openEpisode(state), sample, zeroDrops()));

  const aboveWarnStreak = utilisationPercent(sample.count, sample.max) >= rules.warnPercent ? state.aboveWarnStreak + 1 : 0;
  const verdict = judge(state, sample, rules, aboveWarnStreak);
  const atMs = Date.parse(sample.at);
  let episode = state.episode;

  if (episode && episode.status === 'open') {
    episode = {
      ...episode,
      peakPercent: Math.max(episode.peakPercent, verdict.percent),
      lastPercent: verdict.percent,
      lastCount: sample.count,
      max: sample.max,
      drops: addCounters(episode.drops, verdict.increase),
      tableFullLines: episode.tableFullLines + sample.tableFullLines,
      clearStreak: verdict.clear ? episode.clearStreak + 1 : 0,
    };
    if (verdict.wanted && LEVEL_RANK[verdict.wanted.level] > LEVEL_RANK[episode.level]) {
      episode = { ...episode, level: verdict.wanted.level, kind: verdict.wanted.kind, notifiedAt: sample.at };
      events.push(eventOf('escalated', state.gateway, sample.at, episode, sample, episode.drops));
    } else if (episode.clearStreak >= rules.clearPolls) {
      episode = { ...episode, status: 'resolved', resolvedAt: sample.at };
      events.push({ ...eventOf('resolved', state.gateway, sample.at, episode, sample, episode.drops), durationMs: atMs - Date.parse(episode.openedAt) });
    } else if (atMs - Date.parse(episode.notifiedAt) >= rules.reminderMs) {
      episode = { ...episode, notifiedAt: sample.at };
      events.push(eventOf('reminder', state.gateway, sample.at, episode, sample, episode.drops));
    }
  } else if (verdict.wanted) {
    const last = episode;
    if (last && last.resolvedAt && atMs - Date.parse(last.resolvedAt) <= rules.flapWindowMs && sameFamily(last.kind, verdict.wanted.kind)) {
      const level = LEVEL_RANK[verdict.wanted.level] > LEVEL_RANK[last.level] ? verdict.wanted.level : last.level;
      episode = {
        ...last,
        status: 'open',
        resolvedAt: null,
        level,
        kind: level === last.level ? last.kind : verdict.wanted.kind,
        notifiedAt: sample.at,
        peakPercent: Math.max(last.peakPercent, verdict.percent),
        lastPercent: verdict.percent,
        lastCount: sample.count,
        max: sample.max,
        drops: addCounters(last.drops, verdict.increase),
        tableFullLines: last.tableFullLines + sample.tableFullLines,
        flaps: last.flaps + 1,
        clearStreak: 0,
      };
      events.push({ ...eventOf('reopened', state.gateway, sample.at, episode, sample, episode.drops), flaps: episode.flaps });
    } else {
      episode = {
        id: `${state.gateway}-${atMs}`,
        gateway: state.gateway,
        status: 'open',
        level: verdict.wanted.level,
        kind: verdict.wanted.kind,
        openedAt: sample.at,
        resolvedAt: null,
        notifiedAt: sample.at,
        peakPercent: verdict.percent,
        lastPercent: verdict.percent,
        lastCount: sample.count,
        max: sample.max,
        drops: verdict.increase,
        tableFullLines: sample.tableFullLines,
        flaps: 0,
        clearStreak: 0,
      };
      events.push(eventOf('opened', state.gateway, sample.at, episode, sample, episode.drops));
    }
  }

  const recent = [...state.recent, { atMs, count: sample.count }].slice(-RECENT_POINTS);
  return {
    state: { gateway: state.gateway, lastSample: sample, recent, aboveWarnStreak, pollFailing: false, lastError: null, lastPollAt: sample.at, episode },
    events,
  };
}

/** Resolves the open episode by hand (an approver closed the incident); no change when none is open. */
export function closeByHand(state: WatchState, by: string, at: string): Transition {
  const open = openEpisode(state);
  if (!open) return { state, events: [] };
  const episode: Episode = { ...open, status: 'resolved', resolvedAt: at, clearStreak: 0 };
  const ev: EpisodeEvent = { ...eventOf('resolved', state.gateway, at, episode, null, episode.drops), durationMs: Date.parse(at) - Date.parse(open.openedAt), by };
  return { state: { ...state, episode }, events: [ev] };
}

/**
 * Opens a critical episode because a full check found critical trouble on a gateway with no
 * open episode (a gateway not watched, or not yet seen by its polls); `by` asked for the check.
 * No change when an episode is open.
 */
export function openByCheck(state: WatchState, check: { at: string; count: number; max: number; kind: EpisodeKind; by: string }): Transition {
  if (openEpisode(state)) return { state, events: [] };
  const percent = utilisationPercent(check.count, check.max);
  const episode: Episode = {
    id: `${state.gateway}-${Date.parse(check.at)}`,
    gateway: state.gateway,
    status: 'open',
    level: 'critical',
    kind: check.kind,
    openedAt: check.at,
    resolvedAt: null,
    notifiedAt: check.at,
    peakPercent: percent,
    lastPercent: percent,
    lastCount: check.count,
    max: check.max,
    drops: zeroDrops(),
    tableFullLines: 0,
    flaps: 0,
    clearStreak: 0,
  };
  const ev: EpisodeEvent = { ...eventOf('opened', state.gateway, check.at, episode, null, zeroDrops()), by: check.by };
  return { state: { ...state, episode }, events: [ev] };
}

/**
 * An alert from Prometheus / Alertmanager about a gateway: another source of the same
 * episodes as the polls (the receiver, src/monitor/alertmanager-receiver.ts, maps it).
 */
export interface AlertSignal {
  name: string;
  status: 'firing' | 'resolved';
  /** startsAt when firing, endsAt when resolved. */
  at: string;
  level: EpisodeLevel;
  kind: EpisodeKind;
  summary: string;
}

/**
 * Folds an alert into a gateway's watch state:
 *  - firing while an episode is open: the alert joins it (an `alert` event; a critical alert
 *    raises a warning episode to critical, the polls decide the rest);
 *  - firing with none open: the alert opens one (`opened`, then `alert`), with the last poll's
 *    numbers when the gateway is watched, none otherwise (the check in its thread reads them);
 *  - resolved: an `alert` event on the open (or last) episode; the state is unchanged, only
 *    polls resolve an episode. No episode at all: nothing.
 */
export function alertArrived(state: WatchState, alert: AlertSignal): Transition {
  const info = { name: alert.name, status: alert.status, summary: alert.summary };
  const sample = state.lastSample;
  let episode = state.episode;
  const events: EpisodeEvent[] = [];
  if (alert.status === 'resolved') {
    if (!episode) return { state, events: [] };
  } else if (episode && episode.status === 'open') {
    if (LEVEL_RANK[alert.level] > LEVEL_RANK[episode.level]) episode = { ...episode, level: alert.level, kind: alert.kind, notifiedAt: alert.at };
  } else {
    const percent = sample ? utilisationPercent(sample.count, sample.max) : 0;
    episode = {
      id: `${state.gateway}-${Date.parse(alert.at)}`,
      gateway: state.gateway,
      status: 'open',
      level: alert.level,
      kind: alert.kind,
      openedAt: alert.at,
      resolvedAt: null,
      notifiedAt: alert.at,
      peakPercent: percent,
      lastPercent: percent,
      lastCount: sample?.count ?? 0,
      max: sample?.max ?? 0,
      drops: zeroDrops(),
      tableFullLines: 0,
      flaps: 0,
      clearStreak: 0,
    };
    events.push(eventOf('opened', state.gateway, alert.at, episode, sample, zeroDrops()));
  }
  events.push({ ...eventOf('alert', state.gateway, alert.at, episode, null, episode.drops), alert: info });
  return { state: { ...state, episode }, events };
}

/** A full table (utilisation, drops) and NAT port exhaustion are different troubles: one never reopens the other. */
function sameFamily(a: EpisodeKind, b: EpisodeKind): boolean {
  return (a === 'port-exhaustion') === (b === 'port-exhaustion');
}

function openEpisode(state: WatchState): Episode | null {
  return state.episode?.status === 'open' ? state.episode : null;
}

function zeroDrops(): DropCounters {
  return { drop: 0, earlyDrop: 0, insertFailed: 0 };
}

/**
 * Growth of the table over the recent polls (least-squares slope, entries per minute) and,
 * when it grows, the minutes until it is full at that rate.
 */
export function growth(state: WatchState): { perMinute: number; minutesToFull: number | null } | null {
  const pts = state.recent;
  const sample = state.lastSample;
  if (pts.length < 2 || !sample) return null;
  const t0 = pts[0]!.atMs;
  const xs = pts.map((p) => (p.atMs - t0) / 60_000);
  const ys = pts.map((p) => p.count);
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
  const my = ys.reduce((a, b) => a + b, 0) / ys.length;
  let num = 0;
  let den = 0;
  for (let i = 0; i < xs.length; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  if (den === 0) return null;
  const perMinute = num / den;
  const room = sample.max - sample.count;
  const minutesToFull = perMinute > 0 && room > 0 ? room / perMinute : null;
  return { perMinute, minutesToFull };
}
