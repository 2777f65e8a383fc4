/**
 * The one message of `/conntrack check all`: a line per gateway, edited as each check
 * ends. Gateways with something to act on get their findings (and buttons) as a reply in
 * this message's thread; the line says so. Within Slack's limits for any number of
 * gateways: lines are packed into sections of at most 3,000 characters, at most
 * BUDGETS.blocks blocks and BUDGETS.messageChars characters; what does not fit is counted.
 */
import { context, esc, oneLine, section, severityEmoji, slackDate, user } from './kit.js';
import { BUDGETS, LIMITS, fitLines, truncate } from './limits.js';
import type { Block, RenderedMessage } from './types.js';

export type CheckAllResult =
  | { state: 'healthy'; worst: string; percent: number }
  | { state: 'findings'; worst: string; percent: number; findings: number; steps: number }
  | { state: 'failed'; error: string };

export interface CheckAllView {
  requestedBy: string;
  startedAt: string;
  /** Every gateway of the run, in inventory order. */
  gateways: readonly string[];
  results: Readonly<Record<string, CheckAllResult>>;
}

/** One gateway's line, at most this long (gateway text inside is escaped). */
const LINE_CHARS = 240;

function line(gateway: string, result: CheckAllResult | undefined): string {
  const name = `*${esc(gateway)}*`;
  if (!result) return `:hourglass_flowing_sand: ${name}: waiting`;
  switch (result.state) {
    case 'healthy':
      return `${severityEmoji(result.worst)} ${name}: ${result.percent}% full, nothing to do`;
    case 'findings':
      return `${severityEmoji(result.worst)} ${name}: ${result.percent}% full, ${result.findings} finding${result.findings === 1 ? '' : 's'}${result.steps > 0 ? `, a plan of ${result.steps} step${result.steps === 1 ? '' : 's'}` : ''} (in the thread)`;
    case 'failed':
      // The error may carry gateway text (stderr): escaped, on one line.
      return `:x: ${name}: check failed: ${esc(truncate(oneLine(result.error), 160))}`;
  }
}

export function renderCheckAllSummary(view: CheckAllView): RenderedMessage {
  const total = view.gateways.length;
  const done = view.gateways.filter((g) => view.results[g] !== undefined);
  const failed = done.filter((g) => view.results[g]?.state === 'failed').length;
  const withFindings = done.filter((g) => view.results[g]?.state === 'findings').length;
  const finished = done.length === total;
  const title = finished
    ? `:clipboard: *Check of all ${total} gateways done*: ${withFindings} with findings, ${failed} failed, ${total - withFindings - failed} with nothing to do.`
    : `:mag: *Checking all ${total} gateways*: ${done.length} of ${total} done${withFindings ? `, ${withFindings} with findings` : ''}${failed ? `, ${failed} failed` : ''}.`;

  // Lines of gateways that need attention first, then the rest, each group in inventory order.
  const rank = (g: string): number => {
    const r = view.results[g];
    return r?.state === 'failed' ? 0 : r?.state === 'findings' ? 1 : r === undefined ? 2 : 3;
  };
  const ordered = [...view.gateways].sort((a, b) => rank(a) - rank(b));
  const lines = ordered.map((g) => truncate(line(g, view.results[g]), LINE_CHARS));

  const blocks: Block[] = [section(title)];
  // Room for the title, the footer and the lines' sections.
  let budget = BUDGETS.messageChars - title.length - 400;
  let rest = lines;
  const maxSections = BUDGETS.blocks - 2;
  for (let s = 0; s < maxSections && rest.length > 0 && budget > 100; s++) {
    const last = s === maxSections - 1;
    const room = Math.min(LIMITS.sectionText, budget);
    const fit = fitLines(rest, room, (n) => `… and ${n} more gateway${n === 1 ? '' : 's'}`, last ? {} : { maxLines: rest.length });
    // Not the last section: keep whole lines only, the rest goes to the next section.
    const shownText = last || fit.omitted === 0 ? fit.text : rest.slice(0, fit.shown).join('\n');
    blocks.push(section(shownText));
    budget -= shownText.length;
    rest = rest.slice(fit.shown);
    if (last) rest = [];
  }
  if (rest.length > 0) blocks.push(section(`… and ${rest.length} more gateway${rest.length === 1 ? '' : 's'}`));
  blocks.push(context([`Requested by ${user(view.requestedBy)} ${slackDate(view.startedAt)}`]));

  const text = truncate(`Check of all ${total} gateways: ${done.length}/${total} done, ${withFindings} with findings, ${failed} failed`, BUDGETS.fallbackText);
  return { text, blocks };
}
