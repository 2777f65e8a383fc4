/**
 * The incident summary: one message per episode in the incident channel, pinned, rendered
 * anew and edited in place as the story goes on (never a new message per change).
 */
import { actionLines, dropsText, spanText } from '../../incident/render-text.js';
import type { IncidentSummary } from '../../incident/summary.js';
import { context, esc, fields, header, int, oneLine, pct, section, severityEmoji, slackDate, user } from './kit.js';
import { BUDGETS, LIMITS, fitLines, truncate, truncateMrkdwn } from './limits.js';
import type { Block, RenderedMessage } from './types.js';

const STATUS_EMOJI: Record<IncidentSummary['status'], string> = {
  investigating: ':rotating_light:',
  mitigated: ':adhesive_bandage:',
  resolved: ':white_check_mark:',
};

/** A date with "(N min ago)" style relative text, both from Slack's date token. */
function when(iso: string | null): string {
  return iso ? `${slackDate(iso, '{date_short_pretty} {time_secs}')} (${slackDate(iso, '{ago}')})` : '—';
}

/** Timeline lines that fit: the first few (how it started) and as many of the newest as room allows. */
function timelineText(i: IncidentSummary): string {
  const lines = i.timeline.map((t) =>
    truncateMrkdwn(`${slackDate(t.at, '{time_secs}')} *${esc(oneLine(t.event))}*${t.by ? ` ${user(t.by)}` : ''}: ${esc(truncate(oneLine(t.detail), 220))}`, BUDGETS.stepLine),
  );
  const all = fitLines(lines, LIMITS.sectionText);
  if (all.omitted === 0) return all.text;
  const head = lines.slice(0, 3);
  const budget = LIMITS.sectionText - head.join('\n').length - 40;
  const tail: string[] = [];
  let used = 0;
  for (let k = lines.length - 1; k >= head.length && used + lines[k]!.length + 1 < budget; k--) {
    tail.unshift(lines[k]!);
    used += lines[k]!.length + 1;
  }
  const skipped = lines.length - head.length - tail.length;
  return [...head, `… ${int(skipped)} more event(s) …`, ...tail].join('\n');
}

export function renderIncidentSummary(i: IncidentSummary, now: Date = new Date()): RenderedMessage {
  const title = `${i.gateway}: conntrack incident, ${i.status}`;
  const items = [
    `*Status:* ${STATUS_EMOJI[i.status]} ${i.status} · ${severityEmoji(i.severity)} ${i.severity} (${esc(i.kind)})`,
    `*Detected:* ${when(i.detectedAt)}`,
    `*Mitigated:* ${when(i.mitigatedAt)}`,
    `*Resolved:* ${when(i.resolvedAt)}`,
    `*Utilisation:* now ${pct(i.nowPercent)}, peak ${pct(i.peakPercent)} of ${int(i.max)}`,
    `*Drops:* ${dropsText(i)}`,
    i.refusedPacketsAtMost > 0
      ? `*Refused:* at most ${int(i.refusedPacketsAtMost)} new connections (packets dropped for lack of room; each refused connection retries)`
      : '*Refused:* none (no packet dropped for lack of room)',
    `*Duration:* ${spanText(i, now)}`,
  ];
  const cause = i.rootCause
    ? `*Root cause (${i.rootCause.confirmed ? 'confirmed: the follow-up after the apply saw no more drops' : 'suspected'}):* ${esc(i.rootCause.text)}`
    : '*Root cause:* _not known yet; the full check in the episode thread will show it_';
  // user ids of who requested, decided, rolled back: shown as mentions (the terminal prints the ids)
  const done = i.actions.flatMap((a) => actionLines(a)).map((l) => esc(l).replace(/\b(by) ([UW][A-Z0-9]{6,})\b/g, (_, by: string, id: string) => `${by} ${user(id)}`));
  const doneFit = fitLines(done.map((l) => (l.startsWith('  ') ? `     ${l.trim()}` : `• ${l}`)), LIMITS.sectionText - 40, (n) => `… and ${n} more line(s)`);
  const left = fitLines(i.leftToDo.map((l) => `• ${esc(l)}`), LIMITS.sectionText - 40, (n) => `… and ${n} more`);
  const blocks: Block[] = [
    header(title),
    fields(items),
    section(truncateMrkdwn(cause, LIMITS.sectionText)),
    section(`*What was done*\n${done.length > 0 ? doneFit.text : '_Nothing yet._'}`),
    section(`*Left to do*\n${i.leftToDo.length > 0 ? left.text : '_Nothing known._'}`),
    section(`*Timeline* (${int(i.timeline.length)} event(s))\n${i.timeline.length > 0 ? timelineText(i) : '_Nothing yet._'}`),
    context([`episode \`${esc(i.episodeId)}\` · \`/conntrack incident ${esc(i.gateway)}\` shows this summary · the chart follows in the thread`]),
  ];
  const text = truncate(
    `${i.gateway}: conntrack incident ${i.status} (${i.severity}), peak ${i.peakPercent} %${i.rootCause ? `; ${i.rootCause.confirmed ? 'cause' : 'suspected cause'}: ${i.rootCause.text}` : ''}`,
    BUDGETS.fallbackText,
  );
  return { text, blocks };
}
