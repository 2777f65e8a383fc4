/**
 * The watch's Slack messages: one message per episode, edited in place (status, now / peak,
 * drops, growth and "full in about N min"), and one thread reply per transition.
 */
import type { Episode, EpisodeEvent, EpisodeKind, EpisodeLevel } from '../../monitor/episodes.js';
import { actions, button, code, context, duration, esc, fields, header, int, pct, section, severityEmoji, slackDate } from './kit.js';
import type { Block, RenderedMessage } from './types.js';

export const EPISODE_ACTION_IDS = { runCheck: 'episode_run_check' } as const;

const KIND_TEXT: Record<EpisodeKind, Record<EpisodeLevel, string>> = {
  utilisation: { warning: 'table filling up', critical: 'table nearly full' },
  drops: { warning: 'table full, dropping new connections', critical: 'table full, dropping new connections' },
  'port-exhaustion': { warning: 'NAT source ports exhausted (insert_failed)', critical: 'NAT source ports exhausted (insert_failed)' },
};

function kindText(kind: EpisodeKind, level: EpisodeLevel): string {
  return KIND_TEXT[kind][level];
}

export interface EpisodeView {
  episode: Episode;
  /** Growth over the recent polls, when known. */
  growth: { perMinute: number; minutesToFull: number | null } | null;
  lastPollAt: string | null;
  /** The watch cannot reach the gateway right now. */
  pollError: string | null;
}

function levelWord(level: EpisodeLevel): string {
  return level === 'critical' ? 'CRITICAL' : 'WARNING';
}

export function growthText(growth: EpisodeView['growth']): string {
  if (!growth) return 'not enough polls yet';
  const rate = `${growth.perMinute >= 0 ? '+' : '−'}${int(Math.abs(growth.perMinute))} entries/min`;
  if (growth.minutesToFull === null) return rate;
  return `${rate}, full in about ${growth.minutesToFull < 1 ? 'less than a minute' : `${int(growth.minutesToFull)} min`} at this rate`;
}

function dropsText(d: Episode['drops']): string {
  return `drop ${int(d.drop)} · early_drop ${int(d.earlyDrop)} · insert_failed ${int(d.insertFailed)}`;
}

/** The episode's one message; rendered anew and edited in place on every change. */
export function renderEpisodeMessage(view: EpisodeView): RenderedMessage {
  const e = view.episode;
  const resolved = e.status === 'resolved';
  const emoji = resolved ? ':white_check_mark:' : severityEmoji(e.level);
  const title = resolved
    ? `${e.gateway}: resolved (was ${e.level}: ${kindText(e.kind, e.level)})`
    : `${e.gateway}: ${levelWord(e.level)}, ${kindText(e.kind, e.level)}`;
  const status = resolved
    ? `*Status:* resolved ${slackDate(e.resolvedAt ?? '')}, lasted ${duration(Date.parse(e.resolvedAt ?? '') - Date.parse(e.openedAt))}`
    : `*Status:* open since ${slackDate(e.openedAt)}`;
  const items = [
    status,
    // an episode opened by an alert on a gateway the watch does not poll has no numbers yet
    e.max > 0 ? `*Now:* ${pct(e.lastPercent)} (${int(e.lastCount)} / ${int(e.max)})` : '*Now:* not polled (opened by an alert; the check in the thread reads the table)',
    `*Peak:* ${e.max > 0 ? pct(e.peakPercent) : '—'}`,
    `*Drops during the episode:* ${dropsText(e.drops)}`,
    // a table that grows toward max matters; NAT ports run out at 64,512 per destination, whatever the table
    `*Growth:* ${resolved || e.kind === 'port-exhaustion' ? '—' : esc(growthText(view.growth))}`,
  ];
  if (e.flaps > 0) items.push(`*Flaps:* came back ${int(e.flaps)} time${e.flaps === 1 ? '' : 's'}`);
  if (e.tableFullLines > 0) items.push(`*"table full" lines:* ${int(e.tableFullLines)}`);
  const ctx = [`episode ${code(e.id)}`];
  if (view.lastPollAt) ctx.push(`last poll ${slackDate(view.lastPollAt, '{time_secs}')}`);
  if (view.pollError && !resolved) ctx.push(`:warning: polls failing: ${esc(view.pollError)}`);
  const blocks: Block[] = [header(title), fields(items), context(ctx)];
  if (!resolved) blocks.push(actions([button({ text: 'Run full check', actionId: EPISODE_ACTION_IDS.runCheck, value: e.gateway, style: 'primary' })]));
  return {
    text: `${emoji} ${title}: ${pct(e.lastPercent)} now, peak ${pct(e.peakPercent)}`,
    blocks,
  };
}

/** One transition, as a thread reply under the episode's message. */
export function renderEpisodeEvent(ev: EpisodeEvent): RenderedMessage {
  const gw = esc(ev.gateway);
  const now = ev.percent !== null ? `${pct(ev.percent)}${ev.count !== null && ev.max !== null ? ` (${int(ev.count)} / ${int(ev.max)})` : ''}` : '';
  const kind = ev.kind ? kindText(ev.kind, ev.level ?? 'warning') : '';
  let line: string;
  switch (ev.event) {
    case 'opened':
      line = `${severityEmoji(ev.level ?? 'warning')} *${gw}: ${ev.level ?? ''}*, ${kind}: ${now}. ${dropsText(ev.drops)}.`;
      break;
    case 'escalated':
      line = `${severityEmoji('critical')} *Escalated to ${ev.level ?? ''}*: ${kind}, ${now}. ${dropsText(ev.drops)}.`;
      break;
    case 'reopened':
      line = `${severityEmoji(ev.level ?? 'warning')} *Back again* (${int(ev.flaps ?? 0)}× since it first opened): ${kind}, ${now}.`;
      break;
    case 'reminder':
      line = `:hourglass: *Still ${ev.level ?? ''}*: ${kind}, ${now}. ${dropsText(ev.drops)}.`;
      break;
    case 'resolved':
      line = `:white_check_mark: *Resolved* after ${duration(ev.durationMs ?? 0)}: ${now}. ${dropsText(ev.drops)} during the episode.`;
      break;
    case 'poll-failed':
      line = `:warning: *Polls of ${gw} fail*: ${esc(ev.error ?? 'unknown error')}. The watch keeps trying (once reported, not every poll).`;
      break;
    case 'poll-recovered':
      line = `:arrows_counterclockwise: Polls of ${gw} work again: ${now}.`;
      break;
    case 'alert':
      line = ev.alert?.status === 'resolved'
        ? `:white_check_mark: *Alertmanager: ${esc(ev.alert.name)} resolved*: ${esc(ev.alert.summary)}`
        : `:rotating_light: *Alertmanager: ${esc(ev.alert?.name ?? 'alert')} firing*: ${esc(ev.alert?.summary ?? '')}`;
      break;
  }
  const what = ev.alert ? `alert ${ev.alert.name} ${ev.alert.status}` : ev.event;
  return { text: `${ev.gateway}: ${what}${ev.level ? ` (${ev.level})` : ''}${now ? `, ${now}` : ''}`, blocks: [section(line)] };
}
