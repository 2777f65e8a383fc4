/** An incident's story from what the bot records: status, times, actions, timeline, renderings. */
import { describe, expect, it } from 'vitest';
import { applyOutcomeSchema, type ApplyOutcome } from '../../src/apply/model.js';
import { checkReportSchema } from '../../src/core/model.js';
import { renderIncidentMarkdown, renderIncidentText } from '../../src/incident/render-text.js';
import { buildIncident, type IncidentSources } from '../../src/incident/summary.js';
import type { Episode, EpisodeEvent } from '../../src/monitor/episodes.js';
import { renderIncidentSummary } from '../../src/slack/blocks/incident.js';
import type { HistoryRecord } from '../../src/store/history-store.js';
import type { PlanRecord } from '../../src/store/plan-store.js';
import { validateMessage } from '../support/slack-api/block-kit-validator.js';
import { realisticReport } from '../slack/blocks/fixtures.js';

const T = (min: number) => new Date(Date.parse('2026-12-04T10:00:00Z') + min * 60_000).toISOString();
const PLAN = '7d1c2b3a-0000-4000-8000-000000000001';
const OTHER = '7d1c2b3a-0000-4000-8000-000000000002';
const BOB = 'U0BOB0001';

const episode = (over: Partial<Episode> = {}): Episode => ({
  id: 'gw-3-1',
  gateway: 'gw-3',
  status: 'open',
  level: 'critical',
  kind: 'drops',
  openedAt: T(0),
  resolvedAt: null,
  notifiedAt: T(2),
  peakPercent: 100,
  lastPercent: 98,
  lastCount: 257_000,
  max: 262_144,
  drops: { drop: 4_101, earlyDrop: 0, insertFailed: 5 },
  tableFullLines: 50,
  flaps: 0,
  clearStreak: 0,
  ...over,
});

const ev = (event: EpisodeEvent['event'], at: string, extra: Partial<EpisodeEvent> = {}): EpisodeEvent => ({
  event, gateway: 'gw-3', at, level: 'critical', kind: 'drops', episodeId: 'gw-3-1', percent: 99, count: 259_000, max: 262_144, drops: { drop: 0, earlyDrop: 0, insertFailed: 0 }, ...extra,
});

const rec = (event: HistoryRecord['event'], at: string, actor: string, planId: string | null, summary: string, extra: Partial<HistoryRecord> = {}): HistoryRecord => ({ at, gateway: 'gw-3', event, actor, planId, summary, ...extra });

function plan(id: string): PlanRecord {
  const report = checkReportSchema.parse({ ...realisticReport(), checkedAt: T(1) });
  // persisting is not possible from a namespace: its file content must read as one line under "left to do"
  report.plan.steps = report.plan.steps.map((s) => (s.kind === 'persist-sysctl' ? { ...s, writable: false, proposed: '# Managed by conntrack-ops\nnet.netfilter.nf_conntrack_tcp_timeout_established = 7200\n' } : s));
  return {
    planId: id, gateway: 'gw-3', requestedBy: 'watch', createdAt: T(1), expiresAt: T(31), origin: { kind: 'slack', channel: 'C0INCID01' },
    report, status: 'applied', decidedBy: BOB, decidedAt: T(3), message: null,
  };
}

const applied: ApplyOutcome = applyOutcomeSchema.parse({
  planId: PLAN, gateway: 'gw-3', action: 'apply', outcome: 'applied', by: BOB, startedAt: T(3), at: T(4), durationMs: 1700, message: 'applied',
  steps: [
    { stepId: 'timeout-established', kind: 'sysctl', key: 'nf_conntrack_tcp_timeout_established', status: 'applied', before: '432000', after: '86400', expected: '86400' },
    { stepId: 'delete-idle', kind: 'delete-idle-entries', key: 'idle ESTABLISHED entries', status: 'applied', before: '262144', after: '242144', expected: null },
    { stepId: 'max', kind: 'sysctl', key: 'nf_conntrack_max', status: 'skipped', before: null, after: null, expected: null },
    { stepId: 'buckets', kind: 'sysctl', key: 'nf_conntrack_buckets', status: 'refused', before: null, after: null, expected: null },
  ],
  problems: [], verify: [{ name: 'count below max', ok: true }], verifyReport: null, restore: null, notes: [], canRollBack: true, followUp: null,
});

function sources(over: Partial<IncidentSources> = {}): IncidentSources {
  return {
    episode: episode(),
    episodeEvents: [ev('opened', T(0), { level: 'warning', kind: 'utilisation', percent: 85 }), ev('escalated', T(1))],
    history: [
      rec('check', T(1), 'watch', PLAN, 'critical: 262100/262144'),
      rec('approved', T(3), BOB, PLAN, 'apply queued (default steps)'),
      rec('applied', T(4), BOB, PLAN, 'applied 2 step(s), verified'),
      rec('follow-up', T(9), BOB, PLAN, 'drops stopped: drop +0, no table full line since the verify', { stopped: true }),
      rec('check', T(-60), 'U0ALICE01', OTHER, 'ok: long before this episode'),
    ],
    plans: new Map([[PLAN, plan(PLAN)], [OTHER, plan(OTHER)]]),
    outcomes: new Map([[PLAN, { apply: applied, rollback: null }]]),
    now: new Date(T(12)),
    ...over,
  };
}

describe('incident summary', () => {
  it('an applied, verified plan whose follow-up saw no drops: mitigated, cause confirmed, every event in order with who', () => {
    const i = buildIncident(sources());
    expect(i.status).toBe('mitigated');
    expect(i.mitigatedAt).toBe(T(4));
    expect(i.detectedAt).toBe(T(0));
    expect(i.rootCause?.confirmed).toBe(true);
    expect(i.rootCause?.text).toMatch(/^table at 100 % of max 262,144|^table at max/);
    expect(i.actions).toHaveLength(1);
    expect(i.actions[0]).toMatchObject({ planId: PLAN, requestedBy: 'watch', decision: 'approved', decidedBy: BOB, followUp: { stopped: true } });
    expect(i.actions[0]!.applied?.steps.map((s) => `${s.key} ${s.before}->${s.after}`)).toEqual(['nf_conntrack_tcp_timeout_established 432000->86400', 'idle ESTABLISHED entries 262144->242144']);
    expect(i.timeline.map((t) => t.event)).toEqual(['detected', 'escalated', 'check', 'approved', 'applied', 'apply step', 'apply step', 'follow-up: drops stopped']);
    expect(i.timeline.find((t) => t.event === 'approved')?.by).toBe(BOB);
    expect(i.timeline.some((t) => t.detail.includes('long before'))).toBe(false);
    expect(i.marks).toEqual([{ at: T(4), label: `plan ${PLAN.slice(0, 8)} applied (${BOB})` }]);
    expect(i.leftToDo.some((l) => l.startsWith('nf_conntrack_max'))).toBe(true);
    // a file's content is told as its settings on one line
    expect(i.leftToDo.every((l) => !l.includes('\n'))).toBe(true);
    expect(i.leftToDo).toContainEqual(expect.stringContaining('(absent) -> net.netfilter.nf_conntrack_tcp_timeout_established = 7200'));
    expect(i.refusedPacketsAtMost).toBe(4_096);
  });

  it('before any apply: investigating, cause suspected; after the episode resolves: resolved', () => {
    const early = buildIncident(sources({ history: sources().history.slice(0, 1), outcomes: new Map() }));
    expect(early.status).toBe('investigating');
    expect(early.rootCause?.confirmed).toBe(false);
    expect(early.actions).toEqual([]);
    const done = buildIncident(sources({ episode: episode({ status: 'resolved', resolvedAt: T(11) }), episodeEvents: [...sources().episodeEvents, ev('resolved', T(11))] }));
    expect(done.status).toBe('resolved');
    expect(done.resolvedAt).toBe(T(11));
    // the follow-up came before the resolution here; a later one would still belong to the plan of this episode
    expect(done.timeline.at(-1)?.event).toBe('resolved');
  });

  it('the confirmed cause is the diagnosis the applied plan acted on, not the follow-up check\'s view after the change', () => {
    const AFTER = '7d1c2b3a-0000-4000-8000-000000000003';
    const later = plan(AFTER);
    const afterChange = checkReportSchema.parse({ ...later.report, checkedAt: T(9), findings: later.report.findings.filter((f) => f.id !== 'heavy-hitter') });
    const before = buildIncident(sources()).rootCause?.text;
    const history = [...sources().history, rec('check', T(9), BOB, AFTER, 'critical: follow-up check')];
    const i = buildIncident(sources({ history, plans: new Map([...sources().plans, [AFTER, { ...later, report: afterChange }]]) }));
    expect(i.rootCause).toEqual({ text: before, confirmed: true });
    // a follow-up check and its verdict of the same instant stay in the order they were recorded
    const same = [rec('check', T(9), BOB, AFTER, 'the follow-up check'), rec('follow-up', T(9), BOB, PLAN, 'stopped', { stopped: true })];
    const ordered = buildIncident(sources({ history: [...sources().history.filter((r) => r.event !== 'follow-up'), ...same], plans: new Map([...sources().plans, [AFTER, later]]) }));
    expect(ordered.timeline.slice(-2).map((t) => t.event)).toEqual(['check', 'follow-up: drops stopped']);
  });

  it('a roll back takes the mitigation away and marks the chart', () => {
    const history = [...sources().history, rec('rolled-back', T(6), BOB, PLAN, 'rolled back')];
    const i = buildIncident(sources({ history }));
    expect(i.status).toBe('investigating');
    expect(i.marks.map((m) => m.label)).toEqual([`plan ${PLAN.slice(0, 8)} applied (${BOB})`, `rolled back (${BOB})`]);
  });

  it('renders as text, Markdown and a Slack message Slack accepts', () => {
    const i = buildIncident(sources());
    const text = renderIncidentText(i, new Date(T(12)));
    expect(text).toContain('Incident on gw-3: MITIGATED');
    expect(text).toContain('Root cause (confirmed)');
    expect(text).toContain('nf_conntrack_tcp_timeout_established: 432000 -> 86400 (applied)');
    const md = renderIncidentMarkdown(i, new Date(T(12)));
    expect(md).toContain('# Incident: conntrack table on gw-3');
    expect(md).toContain('| Time | Event | By | Detail |');
    const msg = renderIncidentSummary(i, new Date(T(12)));
    expect(validateMessage(msg).ok).toBe(true);
    expect(JSON.stringify(msg.blocks)).toContain('confirmed');
    // who decided: a mention in Slack, the id in the terminal; a refused step is left to do, not done
    expect(JSON.stringify(msg.blocks)).toContain(`approved by <@${BOB}>`);
    expect(text).toContain(`approved by ${BOB}`);
    expect(text).not.toContain('nf_conntrack_buckets');
  });

  it('a long timeline still fits one Slack message: the start and the newest events', () => {
    const many = Array.from({ length: 400 }, (_, k) => ev(k % 2 ? 'poll-failed' : 'poll-recovered', T(0.01 * k), { error: 'x'.repeat(150) }));
    const i = buildIncident(sources({ episodeEvents: [ev('opened', T(0)), ...many] }));
    const msg = renderIncidentSummary(i, new Date(T(12)));
    expect(validateMessage(msg).ok).toBe(true);
    expect(JSON.stringify(msg.blocks)).toContain('more event(s)');
  });
});
