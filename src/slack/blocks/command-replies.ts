/**
 * Replies to `/conntrack help | status | history` and to malformed commands.
 */
import { code, context, esc, header, int, oneLine, pct, section, severityEmoji, slackDate, user } from './kit.js';
import { BUDGETS, LIMITS, fitLines, truncate, truncateMrkdwn } from './limits.js';
import type { Block, CommandHelp, HistoryRecordView, RenderedMessage, StatusInput } from './types.js';

/** The grammar of src/slack/commands/parse.ts, for help and usage replies. */
export const COMMANDS: readonly CommandHelp[] = [
  { usage: '/conntrack check <gateway>', description: 'Diagnose a gateway\'s conntrack table and propose a plan to approve or reject.' },
  { usage: '/conntrack check all', description: 'Check every gateway of the inventory (approvers only): one summary message, findings in its thread.' },
  { usage: '/conntrack status [gateway]', description: 'Last check of each gateway and the jobs running now.' },
  { usage: '/conntrack history <gateway>', description: 'Checks, decisions, applies and roll backs on a gateway.' },
  { usage: '/conntrack watch <gateway>|all [every 30s]', description: 'Poll a gateway on a schedule; an episode message appears here (or in the incident channel) when it fills up.' },
  { usage: '/conntrack unwatch <gateway>', description: 'Stop polling a gateway.' },
  { usage: '/conntrack incident [gateway]', description: 'The open (or latest) incident\'s summary: status, root cause, what was done, the timeline, with a link to the pinned message.' },
  { usage: '/conntrack incident <gateway> chart', description: 'Post the episode\'s chart (utilisation and drops) in the summary\'s thread.' },
  { usage: '/conntrack incident <gateway> close', description: 'Approvers only: resolve the open incident by hand (recorded with your name).' },
  { usage: '/conntrack help', description: 'This help.' },
];

function usageLines(commands: readonly CommandHelp[]): string {
  return fitLines(
    commands.map((c) => `${code(c.usage)} — ${esc(c.description)}`),
    LIMITS.sectionText,
    (n) => `… and ${n} more`,
  ).text;
}

export function renderHelp(commands: readonly CommandHelp[] = COMMANDS): RenderedMessage {
  const blocks: Block[] = [
    header(':satellite_antenna: conntrack-ops', 'help_header'),
    section(usageLines(commands), 'help_commands'),
    context(
      [
        'Checks are read-only. Changes happen only after an approver clicks *Approve* on the findings, and every apply can be rolled back from its result message.',
        'A gateway the bot cannot reach: run `conntrack-ops collect-script > collect.sh` and `ssh root@GATEWAY sh -s < collect.sh > GATEWAY.saved`, then share GATEWAY.saved here: its OFFLINE report (not approvable) follows in the file\'s thread.',
      ],
      'help_footer',
    ),
  ];
  return { text: 'conntrack-ops: /conntrack check <gateway> | status [gateway] | history <gateway> | watch <gateway> | incident [gateway] | help', blocks };
}

/** Reply to a command that could not be parsed: what was wrong, then the usage. */
export function renderUsage(error: string, commands: readonly CommandHelp[] = COMMANDS): RenderedMessage {
  const err = truncate(oneLine(error), 500);
  return {
    text: truncate(`Sorry, ${err}. Try /conntrack help.`, BUDGETS.fallbackText),
    blocks: [section(`:warning: ${esc(err) || 'That command was not understood.'}`, 'usage_error'), section(`*Usage*\n${usageLines(commands)}`, 'usage_commands')],
  };
}

export function renderStatus(input: StatusInput): RenderedMessage {
  const title = input.gateway ? `:bar_chart: conntrack status: ${oneLine(input.gateway)}` : ':bar_chart: conntrack status';
  const blocks: Block[] = [header(title, 'status_header')];
  const checks = Object.entries(input.lastChecks).sort((a, b) => b[1].percent - a[1].percent || a[0].localeCompare(b[0]));
  const lines = checks.map(([gw, c]) => {
    const names = c.findings.slice(0, 3).map((f) => esc(truncate(oneLine(f), 60)));
    const more = c.findings.length > names.length ? ` +${c.findings.length - names.length}` : '';
    return truncateMrkdwn(
      `${severityEmoji(c.worst)} *${esc(truncate(oneLine(gw), 80))}* ${pct(c.percent)} (${int(c.count)}/${int(c.max)}) · checked ${slackDate(c.at)} · plan ${code(truncate(c.planId, 64))}${names.length > 0 ? ` · ${names.join(', ')}${more}` : ''}`,
      BUDGETS.stepLine,
    );
  });
  const fit = fitLines(lines, LIMITS.sectionText - 40, (n) => `… and ${n} more gateway(s)`);
  blocks.push(section(`*Last checks*\n${lines.length > 0 ? fit.text : '_No checks yet._'}`, 'status_checks'));
  const jobs = input.running.map((j) => `:hourglass_flowing_sand: ${esc(truncate(oneLine(j.name), 40))} ${esc(truncate(oneLine(j.gateway), 80))} ${code(truncate(j.id, 80))}`);
  const jfit = fitLines(jobs, LIMITS.sectionText - 40, (n) => `… and ${n} more job(s)`);
  blocks.push(section(`*Running or queued*\n${jobs.length > 0 ? jfit.text : '_Nothing running._'}`, 'status_jobs'));
  if (input.watched !== undefined) {
    const watched = input.watched.map((w) => {
      const name = `*${esc(truncate(oneLine(w.gateway), 80))}* every ${int(w.intervalSeconds)} s`;
      const poll = w.lastPollAt ? ` · last poll ${slackDate(w.lastPollAt, '{time_secs}')}${w.lastPercent !== null ? ` ${pct(w.lastPercent)}` : ''}` : ' · not polled yet';
      const failing = w.pollError ? ` · :warning: polls failing: ${esc(truncate(oneLine(w.pollError), 120))}` : '';
      const ep = w.openEpisode
        ? ` · ${severityEmoji(w.openEpisode.level)} ${esc(w.openEpisode.level)} (${esc(w.openEpisode.kind)}) since ${slackDate(w.openEpisode.openedAt)}, peak ${pct(w.openEpisode.peakPercent)}`
        : '';
      return truncateMrkdwn(`:eyes: ${name}${poll}${failing}${ep}`, BUDGETS.stepLine);
    });
    const wfit = fitLines(watched, LIMITS.sectionText - 40, (n) => `… and ${n} more watched gateway(s)`);
    blocks.push(section(`*Watched*\n${watched.length > 0 ? wfit.text : '_No gateway is watched. `/conntrack watch <gateway>` starts._'}`, 'status_watched'));
  }
  const worst = checks[0];
  const text = worst
    ? `conntrack status: ${checks.length} gateway(s), fullest ${oneLine(worst[0])} at ${pct(worst[1].percent)}; ${input.running.length} job(s) running`
    : `conntrack status: no checks yet; ${input.running.length} job(s) running`;
  return { text: truncate(text, BUDGETS.fallbackText), blocks };
}

const EVENT_EMOJI: Record<string, string> = {
  check: ':mag:',
  approved: ':white_check_mark:',
  rejected: ':no_entry_sign:',
  expired: ':hourglass:',
  applied: ':wrench:',
  'apply-failed': ':x:',
  'rolled-back': ':leftwards_arrow_with_hook:',
  'rollback-failed': ':rotating_light:',
  refused: ':lock:',
};

/** Decision records (who, when, plan id, gateway, outcome), newest first as given. */
export function renderHistory(gateway: string, records: readonly HistoryRecordView[]): RenderedMessage {
  const gw = oneLine(gateway);
  const lines = records.map((r) =>
    truncateMrkdwn(
      `${EVENT_EMOJI[r.event] ?? ':grey_question:'} ${slackDate(r.at)} *${esc(oneLine(r.event))}* by ${user(r.actor)}${r.gateway !== gateway ? ` on ${esc(oneLine(r.gateway))}` : ''}${r.planId ? ` · plan ${code(truncate(r.planId, 64))}` : ''}${r.summary.trim() !== '' ? ` — ${esc(truncate(oneLine(r.summary), 200))}` : ''}`,
      BUDGETS.stepLine,
    ),
  );
  const fit = fitLines(lines, LIMITS.sectionText, (n) => `… and ${n} older record(s)`, { maxLines: BUDGETS.historyLines });
  const blocks: Block[] = [
    header(`:scroll: History of ${gw}`, 'history_header'),
    section(lines.length > 0 ? fit.text : `_Nothing recorded for ${esc(gw)} yet._`, 'history_records'),
  ];
  if (records.length > 0) blocks.push(context([`${records.length} record(s), newest first`], 'history_footer'));
  return { text: truncate(`History of ${gw}: ${records.length} record(s)`, BUDGETS.fallbackText), blocks };
}
