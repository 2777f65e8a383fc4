/**
 * The live progress message of a job: one line per step, updated as each step ends.
 * A check shows it while it runs; an apply or roll back while it changes the gateway.
 */
import { context, esc, header, oneLine, section } from './kit.js';
import { BUDGETS, LIMITS, fitLines, truncate, truncateMrkdwn } from './limits.js';
import type { Block, ProgressStatus, ProgressStep, RenderedMessage } from './types.js';

const STEP_EMOJI: Record<ProgressStatus, string> = {
  pending: ':white_circle:',
  running: ':hourglass_flowing_sand:',
  done: ':white_check_mark:',
  skipped: ':fast_forward:',
  failed: ':x:',
};

/** What the steps belong to: the header and the notification text say it. */
export type ProgressOf = 'check' | 'apply' | 'rollback';

const TITLE: Record<ProgressOf, { emoji: string; doing: (gw: string) => string }> = {
  check: { emoji: ':mag:', doing: (gw) => `Checking ${gw}` },
  apply: { emoji: ':gear:', doing: (gw) => `Applying the plan on ${gw}` },
  rollback: { emoji: ':leftwards_arrow_with_hook:', doing: (gw) => `Rolling back the plan on ${gw}` },
};

/** The live-updated progress message: one line per step. */
export function renderProgress(gateway: string, steps: readonly ProgressStep[], of: ProgressOf = 'check'): RenderedMessage {
  const gw = oneLine(gateway);
  const lines = steps.map((s) => {
    const detail = s.detail && s.detail.trim() !== '' ? ` — ${esc(truncate(oneLine(s.detail), BUDGETS.progressDetail))}` : '';
    const name = s.status === 'running' ? `*${esc(oneLine(s.name))}*…` : esc(oneLine(s.name));
    return truncateMrkdwn(`${STEP_EMOJI[s.status] ?? ':grey_question:'} ${name}${detail}`, BUDGETS.stepLine);
  });
  const fit = fitLines(lines, LIMITS.sectionText, (n) => `… and ${n} more step(s)`);
  const done = steps.filter((s) => s.status === 'done').length;
  const skipped = steps.filter((s) => s.status === 'skipped').length;
  const failed = steps.find((s) => s.status === 'failed');
  const running = steps.find((s) => s.status === 'running');
  const finished = done + skipped;
  const state = failed
    ? `failed at ${oneLine(failed.name)}`
    : running
      ? oneLine(running.name)
      : finished === steps.length && steps.length > 0
        ? 'done'
        : finished > 0
          ? 'in progress'
          : 'queued';
  const title = TITLE[of];
  const blocks: Block[] = [
    header(`${title.emoji} ${title.doing(gw)}`, 'progress_header'),
    section(fit.text === '' ? '_Waiting for a worker…_' : fit.text, 'progress_steps'),
    context([`${done}/${steps.length} step(s) done${skipped > 0 ? `, ${skipped} skipped` : ''}`], 'progress_footer'),
  ];
  return { text: truncate(`${title.doing(gw)}: ${state} (${finished}/${steps.length})`, BUDGETS.fallbackText), blocks };
}
