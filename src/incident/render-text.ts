/**
 * An incident as text for the terminal, and as Markdown to paste into a postmortem.
 * Same content as the Slack summary: status, times, numbers, root cause, what was done,
 * what is left, the timeline.
 */
import type { IncidentAction, IncidentSummary } from './summary.js';
import { fmtInt } from '../analysis/format.js';


function utc(iso: string | null): string {
  return iso ? new Date(iso).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '—';
}

export function durationText(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  const h = Math.floor(m / 60);
  return `${h} h ${m % 60} min`;
}

/** "open for 12 min" / "lasted 34 min". */
export function spanText(i: IncidentSummary, now: Date): string {
  const end = i.resolvedAt ? Date.parse(i.resolvedAt) : now.getTime();
  return `${i.resolvedAt ? 'lasted' : 'open for'} ${durationText(end - Date.parse(i.detectedAt))}`;
}

export function dropsText(i: IncidentSummary): string {
  return `drop ${fmtInt(i.drops.drop)}, early_drop ${fmtInt(i.drops.earlyDrop)}, insert_failed ${fmtInt(i.drops.insertFailed)}`;
}

export function actionLines(a: IncidentAction): string[] {
  const head = `plan ${a.planId.slice(0, 8)} (check requested by ${a.requestedBy}): ${a.decision}${a.decidedBy ? ` by ${a.decidedBy}` : ''}`;
  const lines = [head];
  if (a.applied) {
    lines.push(`  apply: ${a.applied.outcome}${a.applied.verified ? ', verified' : ''} at ${utc(a.applied.at)}`);
    for (const s of a.applied.steps) lines.push(`    ${s.key}: ${s.before ?? '—'} -> ${s.after ?? '—'} (${s.status})`);
  }
  if (a.followUp) lines.push(`  follow-up: ${a.followUp.stopped ? 'drops stopped' : 'still dropping'} (${a.followUp.summary})`);
  if (a.rolledBack) lines.push(`  rolled back by ${a.rolledBack.by} at ${utc(a.rolledBack.at)}`);
  return lines;
}

export function renderIncidentText(i: IncidentSummary, now: Date = new Date()): string {
  const out = [
    `Incident on ${i.gateway}: ${i.status.toUpperCase()} (${i.severity}, ${i.kind}), ${spanText(i, now)}`,
    `  detected  ${utc(i.detectedAt)}`,
    `  mitigated ${utc(i.mitigatedAt)}`,
    `  resolved  ${utc(i.resolvedAt)}`,
    `  utilisation now ${i.nowPercent} %, peak ${i.peakPercent} % of ${fmtInt(i.max)}`,
    `  drops during the episode: ${dropsText(i)} (at most ${fmtInt(i.refusedPacketsAtMost)} new connections refused)`,
    '',
    `Root cause${i.rootCause ? (i.rootCause.confirmed ? ' (confirmed)' : ' (suspected)') : ''}: ${i.rootCause?.text ?? 'not known yet (no check in this episode showed it)'}`,
    '',
    'What was done:',
    ...(i.actions.length > 0 ? i.actions.flatMap((a) => actionLines(a).map((l) => `  ${l}`)) : ['  nothing yet']),
    '',
    'Left to do:',
    ...(i.leftToDo.length > 0 ? i.leftToDo.map((l) => `  - ${l}`) : ['  nothing known']),
    '',
    'Timeline (UTC):',
    ...i.timeline.map((t) => `  ${utc(t.at)}  ${t.event}${t.by ? ` (${t.by})` : ''}: ${t.detail}`),
  ];
  return out.join('\n');
}

function mdEscape(text: string): string {
  return text.replace(/([\\`*_[\]|<>])/g, '\\$1');
}

export function renderIncidentMarkdown(i: IncidentSummary, now: Date = new Date()): string {
  const rows = [
    ['Status', `${i.status} (${i.severity}, ${i.kind})`],
    ['Detected', utc(i.detectedAt)],
    ['Mitigated', utc(i.mitigatedAt)],
    ['Resolved', utc(i.resolvedAt)],
    ['Duration', spanText(i, now)],
    ['Utilisation', `now ${i.nowPercent} %, peak ${i.peakPercent} % of ${fmtInt(i.max)}`],
    ['Drops', `${dropsText(i)}; at most ${fmtInt(i.refusedPacketsAtMost)} new connections refused`],
  ];
  return [
    `# Incident: conntrack table on ${mdEscape(i.gateway)}`,
    '',
    '| | |',
    '| --- | --- |',
    ...rows.map(([k, v]) => `| ${k} | ${mdEscape(v ?? '')} |`),
    '',
    `## Root cause${i.rootCause ? (i.rootCause.confirmed ? ' (confirmed)' : ' (suspected)') : ''}`,
    '',
    i.rootCause ? mdEscape(i.rootCause.text) : '_Not known yet: no check in this episode showed it._',
    '',
    '## What was done',
    '',
    ...(i.actions.length > 0 ? i.actions.flatMap((a) => actionLines(a).map((l) => (l.startsWith('  ') ? `  - ${mdEscape(l.trim())}` : `- ${mdEscape(l)}`))) : ['_Nothing yet._']),
    '',
    '## Left to do',
    '',
    ...(i.leftToDo.length > 0 ? i.leftToDo.map((l) => `- ${mdEscape(l)}`) : ['_Nothing known._']),
    '',
    '## Timeline (UTC)',
    '',
    '| Time | Event | By | Detail |',
    '| --- | --- | --- | --- |',
    ...i.timeline.map((t) => `| ${utc(t.at)} | ${mdEscape(t.event)} | ${mdEscape(t.by ?? '')} | ${mdEscape(t.detail)} |`),
    '',
  ].join('\n');
}
