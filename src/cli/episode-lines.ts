/**
 * The watch in a terminal: one line per episode event (and per automatic check), written to
 * a stream. The same EpisodePublisher / CheckPublisher ports the Slack side implements, so
 * the lines come from the very engine that posts to Slack (src/worker/poll-processor.ts).
 *
 * `--json`: one object per line. Episode events carry event, gateway, at, level, kind,
 * episodeId, percent, count, max, drops {drop, earlyDrop, insertFailed} (+ durationMs for
 * `resolved`, flaps for `reopened`, error for `poll-failed`, alert {name, status, summary} for
 * `alert`: an Alertmanager alert that joined the episode); level and kind are null only for
 * a poll failure / recovery outside an episode. The automatic check at critical adds one
 * `check` line (its findings, the plan id, nothing applied) or one `check-failed` line.
 */
import type { CheckReport, Severity } from '../core/model.js';
import type { EpisodeEvent } from '../monitor/episodes.js';
import type { PlanRecord } from '../store/plan-store.js';
import { worstSeverity } from '../worker/check-processor.js';
import type { CheckPublisher, EpisodePublisher } from '../worker/ports.js';
import { terminalSafe } from './terminal-safe.js';

export type LineFormat = 'text' | 'json';

/** What the automatic check found, as one line. */
export interface CheckLine {
  event: 'check';
  gateway: string;
  at: string;
  worst: Severity;
  findings: { id: string; severity: Severity; title: string }[];
  planId: string;
  steps: number;
  /** The terminal never applies: the plan waits for an approval in Slack (or expires). */
  applied: false;
}

export interface CheckFailedLine {
  event: 'check-failed';
  gateway: string;
  at: string;
  error: string;
}

const n = (v: number | null): string => (v === null ? '?' : v.toLocaleString('en-US'));

/** The stable JSON shape of an episode event (field order fixed, nothing else). */
export function episodeEventJson(ev: EpisodeEvent): Record<string, unknown> {
  return {
    event: ev.event,
    gateway: ev.gateway,
    at: ev.at,
    level: ev.level,
    kind: ev.kind,
    episodeId: ev.episodeId,
    percent: ev.percent,
    count: ev.count,
    max: ev.max,
    drops: { drop: ev.drops.drop, earlyDrop: ev.drops.earlyDrop, insertFailed: ev.drops.insertFailed },
    ...(ev.durationMs !== undefined ? { durationMs: ev.durationMs } : {}),
    ...(ev.flaps !== undefined ? { flaps: ev.flaps } : {}),
    ...(ev.error !== undefined ? { error: ev.error } : {}),
    ...(ev.alert !== undefined ? { alert: ev.alert } : {}),
  };
}

function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s} s`;
  const m = Math.round(s / 60);
  return m < 120 ? `${m} min` : `${(m / 60).toFixed(1)} h`;
}

/** `19:02:11  ESCALATED  gw-3  critical utilisation  99.6 %  261,120/262,144  drops 0 early 0 insert-failed 0` */
export function episodeEventText(ev: EpisodeEvent): string {
  const time = ev.at.slice(11, 19);
  const what = [ev.level ?? '-', ev.kind ?? ''].join(' ').trim();
  const pct = ev.percent === null ? '? %' : `${ev.percent.toFixed(1)} %`;
  const drops = `drops ${n(ev.drops.drop)} early ${n(ev.drops.earlyDrop)} insert-failed ${n(ev.drops.insertFailed)}`;
  const extra = [
    ev.durationMs !== undefined ? `lasted ${duration(ev.durationMs)}` : '',
    ev.flaps !== undefined ? `back ${ev.flaps}x` : '',
    ev.error !== undefined ? `error: ${ev.error}` : '',
    ev.alert !== undefined ? `alert ${ev.alert.name} ${ev.alert.status}${ev.alert.summary ? `: ${ev.alert.summary}` : ''}` : '',
  ].filter(Boolean);
  return [time, ev.event.toUpperCase().padEnd(14), ev.gateway, what, pct, `${n(ev.count)}/${n(ev.max)}`, drops, ...extra].join('  ');
}

export function checkLineOf(report: CheckReport, plan: PlanRecord, at: Date): CheckLine {
  return {
    event: 'check',
    gateway: report.gateway,
    at: at.toISOString(),
    worst: worstSeverity(report),
    findings: report.findings.map((f) => ({ id: f.id, severity: f.severity, title: f.title })),
    planId: plan.planId,
    steps: report.plan.steps.length,
    applied: false,
  };
}

/** The worst finding and how many more; the full report is `conntrack-ops check <gateway>`. */
function checkText(line: CheckLine): string {
  const [first, ...rest] = line.findings;
  const top = first ? `[${first.severity}] ${first.title}${rest.length ? ` (+${rest.length} more)` : ''}` : 'no findings';
  return `${line.at.slice(11, 19)}  ${'CHECK'.padEnd(14)}  ${line.gateway}  ${top}  plan ${line.planId.slice(0, 8)}: ${line.steps} steps, not applied`;
}

/** Writes episode events and automatic-check results as lines. */
export class EpisodeLines {
  constructor(
    private readonly out: NodeJS.WritableStream,
    private readonly format: LineFormat,
    /** Only these gateways are printed (a shared Redis's worker polls others too). */
    private readonly gateways: ReadonlySet<string>,
    private readonly now: () => Date = () => new Date(),
  ) {}

  private write(json: object, text: string): void {
    // JSON escapes control characters itself; a text line is one line with none (gateway text is in it).
    this.out.write(`${this.format === 'json' ? JSON.stringify(json) : terminalSafe(text)}\n`);
  }

  event(ev: EpisodeEvent): void {
    if (this.gateways.has(ev.gateway)) this.write(episodeEventJson(ev), episodeEventText(ev));
  }

  check(report: CheckReport, plan: PlanRecord): void {
    if (!this.gateways.has(report.gateway)) return;
    const line = checkLineOf(report, plan, this.now());
    this.write(line, checkText(line));
  }

  checkFailed(gateway: string, error: string): void {
    if (!this.gateways.has(gateway)) return;
    const line: CheckFailedLine = { event: 'check-failed', gateway, at: this.now().toISOString(), error: error.split('\n')[0]!.slice(0, 300) };
    this.write(line, `${line.at.slice(11, 19)}  ${'CHECK-FAILED'.padEnd(14)}  ${gateway}  ${line.error}`);
  }

  /** The EpisodePublisher port: every event of the poll, in order; no thread to return. */
  readonly episodePublisher: EpisodePublisher = {
    publish: async (update) => {
      for (const ev of update.events) this.event(ev);
      return null;
    },
  };

  /** The CheckPublisher port for the automatic check: its findings, or its failure, as one line. */
  readonly checkPublisher: CheckPublisher = {
    progress: async () => undefined,
    findings: async (report, plan) => {
      this.check(report, plan);
      return null;
    },
    failed: async (gateway, _steps, error) => this.checkFailed(gateway, error),
    followUp: async () => undefined,
  };
}
