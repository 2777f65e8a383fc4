/**
 * An incident: the whole story of one episode, from the first sign to the end, assembled from
 * what the bot already records (the episode and its events, the history of checks, decisions,
 * applies and follow-ups, the plans and their apply outcomes). Pure: sources in, summary out;
 * the Slack summary, the terminal (text, Markdown, JSON) and the chart all render this.
 */
import { z } from 'zod';
import type { ApplyOutcome } from '../apply/model.js';
import type { DropCounters, Episode, EpisodeEvent } from '../monitor/episodes.js';
import type { HistoryRecord } from '../store/history-store.js';
import type { PlanRecord } from '../store/plan-store.js';
import { rootCauseOf } from './root-cause.js';
import { fmtInt } from '../analysis/format.js';

export const incidentStatusSchema = z.enum(['investigating', 'mitigated', 'resolved']);
export type IncidentStatus = z.infer<typeof incidentStatusSchema>;

export interface IncidentStepChange {
  stepId: string;
  key: string;
  before: string | null;
  after: string | null;
  status: string;
}

export interface IncidentAction {
  planId: string;
  requestedBy: string;
  checkedAt: string;
  decision: 'approved' | 'rejected' | 'expired' | 'pending';
  decidedBy: string | null;
  decidedAt: string | null;
  applied: { outcome: string; at: string; steps: IncidentStepChange[]; verified: boolean } | null;
  followUp: { stopped: boolean; summary: string; at: string } | null;
  rolledBack: { at: string; by: string } | null;
}

export interface TimelineEntry {
  at: string;
  event: string;
  by?: string;
  detail: string;
}

export interface IncidentSummary {
  gateway: string;
  episodeId: string;
  status: IncidentStatus;
  severity: Episode['level'];
  kind: Episode['kind'];
  detectedAt: string;
  mitigatedAt: string | null;
  resolvedAt: string | null;
  peakPercent: number;
  nowPercent: number;
  max: number;
  drops: DropCounters;
  /** Packets of new connections dropped for lack of room (drop beyond insert_failed, plus early_drop): each refused connection retries, so at most this many connections. */
  refusedPacketsAtMost: number;
  rootCause: { text: string; confirmed: boolean } | null;
  actions: IncidentAction[];
  /** Steps that could not be done from here, and advice no plan step covers. */
  leftToDo: string[];
  timeline: TimelineEntry[];
  /** Times where plans were applied or rolled back (chart marks). */
  marks: { at: string; label: string }[];
}

export interface IncidentSources {
  episode: Episode;
  episodeEvents: readonly EpisodeEvent[];
  /** The gateway's history, oldest first (records of one instant keep this order). */
  history: readonly HistoryRecord[];
  /** Plans by id (those the history names). */
  plans: ReadonlyMap<string, PlanRecord>;
  /** Apply / roll back outcomes by plan id. */
  outcomes: ReadonlyMap<string, { apply: ApplyOutcome | null; rollback: ApplyOutcome | null }>;
  now: Date;
}


/** History records of this episode: inside its window, or about a plan checked inside it (follow-ups come later). */
function episodeHistory(src: IncidentSources): HistoryRecord[] {
  const from = Date.parse(src.episode.openedAt);
  const to = src.episode.resolvedAt ? Date.parse(src.episode.resolvedAt) : src.now.getTime();
  const inWindow = (r: HistoryRecord) => {
    const t = Date.parse(r.at);
    return t >= from && t <= to;
  };
  const plansInWindow = new Set(src.history.filter((r) => r.event === 'check' && r.planId && inWindow(r)).map((r) => r.planId as string));
  return src.history
    .filter((r) => r.gateway === src.episode.gateway && (inWindow(r) || (r.planId !== null && plansInWindow.has(r.planId))))
    .sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
}

function episodeEventEntry(ev: EpisodeEvent, warn: string): TimelineEntry | null {
  const pct = ev.percent !== null ? `${ev.percent} %` : '';
  const drops = ev.drops.drop + ev.drops.earlyDrop + ev.drops.insertFailed > 0 ? `, drop ${fmtInt(ev.drops.drop)} / early_drop ${fmtInt(ev.drops.earlyDrop)} / insert_failed ${fmtInt(ev.drops.insertFailed)}` : '';
  switch (ev.event) {
    case 'opened':
      return { at: ev.at, event: ev.by ? 'detected by a check' : 'detected', by: ev.by ?? 'watch', detail: `${ev.level} (${ev.kind}): ${pct}${ev.count !== null && ev.max !== null ? ` (${fmtInt(ev.count)} / ${fmtInt(ev.max)})` : ''}${ev.kind === 'utilisation' && ev.level === 'warning' ? ` above ${warn}` : ''}${drops}` };
    case 'escalated':
      return { at: ev.at, event: 'escalated', by: 'watch', detail: `${ev.level} (${ev.kind}): ${pct}${drops}` };
    case 'reopened':
      return { at: ev.at, event: 'back again', by: 'watch', detail: `${ev.kind}: ${pct} (flap ${ev.flaps ?? 0})` };
    case 'resolved':
      return ev.by
        ? { at: ev.at, event: 'closed by hand', by: ev.by, detail: `resolved by an approver at ${pct}` }
        : { at: ev.at, event: 'resolved', by: 'watch', detail: `${pct}, below the threshold for 3 polls` };
    case 'poll-failed':
      return { at: ev.at, event: 'polls failing', by: 'watch', detail: ev.error ?? '' };
    case 'poll-recovered':
      return { at: ev.at, event: 'polls work again', by: 'watch', detail: pct };
    case 'alert':
      return ev.alert ? { at: ev.at, event: `alert ${ev.alert.status}`, by: 'alertmanager', detail: `${ev.alert.name}${ev.alert.summary ? `: ${ev.alert.summary}` : ''}` } : null;
    case 'reminder':
      return null;
  }
}

function historyEntry(r: HistoryRecord): TimelineEntry {
  const event = r.event === 'check' ? 'check' : r.event === 'follow-up' ? (r.stopped ? 'follow-up: drops stopped' : 'follow-up: still dropping') : r.event;
  return { at: r.at, event, by: r.actor, detail: `${r.planId ? `plan ${r.planId.slice(0, 8)}: ` : ''}${r.summary}` };
}

function stepEntries(o: ApplyOutcome): TimelineEntry[] {
  return o.steps
    // refused steps (not writable here) are in "left to do"
    .filter((s) => s.status !== 'skipped' && s.status !== 'not-run' && s.status !== 'refused')
    .map((s) => ({ at: o.at, event: `${o.action} step`, by: o.by, detail: `${s.key}: ${s.before ?? '—'} -> ${s.after ?? '—'} (${s.status})` }));
}

function actionsOf(src: IncidentSources, history: HistoryRecord[]): IncidentAction[] {
  const checks = history.filter((r) => r.event === 'check' && r.planId);
  const actions: IncidentAction[] = [];
  for (const check of checks) {
    const planId = check.planId as string;
    const plan = src.plans.get(planId);
    const about = history.filter((r) => r.planId === planId);
    const decision = about.find((r) => r.event === 'approved' || r.event === 'rejected' || r.event === 'expired');
    const outcome = src.outcomes.get(planId);
    const follow = [...about].reverse().find((r) => r.event === 'follow-up');
    const rolled = about.find((r) => r.event === 'rolled-back');
    // a check whose plan nobody decided on and that changed nothing is in the timeline, not in "what was done"
    if (!decision && !outcome?.apply) continue;
    actions.push({
      planId,
      requestedBy: plan?.requestedBy ?? check.actor,
      checkedAt: check.at,
      decision: decision ? (decision.event as 'approved' | 'rejected' | 'expired') : 'pending',
      decidedBy: decision?.actor ?? null,
      decidedAt: decision?.at ?? null,
      applied: outcome?.apply
        ? {
            outcome: outcome.apply.outcome,
            at: outcome.apply.at,
            steps: outcome.apply.steps.filter((s) => s.status !== 'skipped' && s.status !== 'refused').map((s) => ({ stepId: s.stepId, key: s.key, before: s.before, after: s.after, status: s.status })),
            verified: outcome.apply.outcome === 'applied',
          }
        : null,
      followUp: follow ? { stopped: follow.stopped === true, summary: follow.summary, at: follow.at } : null,
      rolledBack: rolled ? { at: rolled.at, by: rolled.actor } : null,
    });
  }
  return actions;
}

/** A file's content as its settings on one line (comments and blank lines left out). */
function oneLineValue(v: string): string {
  if (!v.includes('\n')) return v;
  const settings = v.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  return settings.length > 0 ? settings.join('; ') : '(empty)';
}

function leftToDoOf(src: IncidentSources, history: HistoryRecord[]): string[] {
  const latest = [...history].reverse().find((r) => r.event === 'check' && r.planId && src.plans.has(r.planId));
  const plan = latest?.planId ? src.plans.get(latest.planId) : undefined;
  if (!plan) return [];
  const out: string[] = [];
  for (const s of plan.report.plan.steps) {
    if (!s.writable) out.push(`${s.key}: ${oneLineValue(s.current)} -> ${oneLineValue(s.proposed)}${s.whereToChange ? ` (${s.whereToChange})` : ' (not writable from the bot\'s session)'}`);
  }
  for (const f of plan.report.findings) {
    if (f.id === 'port-exhaustion-risk' && f.evidence['percentUsed'] === 100) {
      out.push(`NAT pool: ${String(f.evidence['natSource'])} has no source port left to ${String(f.evidence['destination'])}; add NAT addresses (SNAT pool) or cut connection churn there`);
    }
  }
  return out;
}

export function buildIncident(src: IncidentSources): IncidentSummary {
  const ep = src.episode;
  const history = episodeHistory(src);
  const actions = actionsOf(src, history);
  const applied = actions.filter((a) => a.applied?.verified && !a.rolledBack);
  const mitigatedAt = applied.length > 0 ? applied.map((a) => a.applied!.at).sort()[0]! : null;
  const status: IncidentStatus = ep.status === 'resolved' ? 'resolved' : mitigatedAt ? 'mitigated' : 'investigating';

  // root cause: the diagnosis the applied plan acted on (a later follow-up check sees the table
  // after the change, e.g. entries "still on a timer"), else the newest check of the episode that
  // shows trouble; confirmed by a follow-up of an applied plan that saw the drops stop
  let rootCause: IncidentSummary['rootCause'] = null;
  const actedOn = [...applied].reverse()[0]?.planId;
  const checksNewestFirst = [...history].reverse().filter((r) => r.event === 'check' && r.planId);
  const ordered = actedOn ? [...checksNewestFirst.filter((r) => r.planId === actedOn), ...checksNewestFirst.filter((r) => r.planId !== actedOn)] : checksNewestFirst;
  for (const r of ordered) {
    if (!r.planId) continue;
    const plan = src.plans.get(r.planId);
    const text = plan ? rootCauseOf(plan.report) : null;
    if (text) {
      rootCause = { text, confirmed: actions.some((a) => a.applied?.verified && a.followUp?.stopped) };
      break;
    }
  }

  const warn = `the warning threshold`;
  const timeline: TimelineEntry[] = [
    ...src.episodeEvents.map((e) => episodeEventEntry(e, warn)).filter((e): e is TimelineEntry => e !== null),
    // a close by hand is in the episode's own events (with who closed it)
    ...history.filter((r) => r.event !== 'closed').map(historyEntry),
    ...[...src.outcomes.values()].flatMap((o) => [o.apply, o.rollback]).filter((o): o is ApplyOutcome => o !== null && history.some((h) => h.planId === o.planId)).flatMap(stepEntries),
  ].sort((a, b) => Date.parse(a.at) - Date.parse(b.at));

  const marks = actions.flatMap((a) => [
    ...(a.applied ? [{ at: a.applied.at, label: `plan ${a.planId.slice(0, 8)} applied${a.decidedBy ? ` (${a.decidedBy})` : ''}` }] : []),
    ...(a.rolledBack ? [{ at: a.rolledBack.at, label: `rolled back (${a.rolledBack.by})` }] : []),
  ]);

  return {
    gateway: ep.gateway,
    episodeId: ep.id,
    status,
    severity: ep.level,
    kind: ep.kind,
    detectedAt: ep.openedAt,
    mitigatedAt,
    resolvedAt: ep.resolvedAt,
    peakPercent: ep.peakPercent,
    nowPercent: ep.lastPercent,
    max: ep.max,
    drops: ep.drops,
    refusedPacketsAtMost: Math.max(0, ep.drops.drop - ep.drops.insertFailed) + ep.drops.earlyDrop,
    rootCause,
    actions,
    leftToDo: leftToDoOf(src, history),
    timeline,
    marks,
  };
}
