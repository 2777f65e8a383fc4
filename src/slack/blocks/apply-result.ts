/**
 * The result of an apply or roll back: per step before -> after, the verification, notes,
 * and a Roll back button for approvers. It replaces the findings message of the plan.
 */
import { ACTION_IDS } from './findings.js';
import { actions, button, code, confirmDialog, context, duration, esc, header, oneLine, section, slackDate, user, value } from './kit.js';
import { BUDGETS, LIMITS, fitLines, truncate, truncateMrkdwn } from './limits.js';
import type { ApplyResultView, ApplyStepView, Block, RenderedMessage } from './types.js';

const STATUS_EMOJI: Record<string, string> = {
  pending: ':white_circle:',
  running: ':hourglass_flowing_sand:',
  applied: ':white_check_mark:',
  unchanged: ':heavy_minus_sign:',
  skipped: ':fast_forward:',
  refused: ':no_entry:',
  failed: ':x:',
  'rolled-back': ':leftwards_arrow_with_hook:',
  'not-run': ':white_circle:',
  unknown: ':warning:',
};

const OUTCOME_TITLE: Record<string, string> = {
  applied: ':white_check_mark: Plan applied',
  partial: ':warning: Plan partly applied',
  failed: ':x: Apply failed',
  'rolled-back': ':leftwards_arrow_with_hook: Plan rolled back',
  'rollback-failed': ':rotating_light: Roll back failed',
  'apply-failed': ':x: Apply failed',
  refused: ':no_entry: Plan refused, nothing changed',
  'already-applied': ':heavy_minus_sign: Plan already applied, nothing done',
  interrupted: ':warning: Apply interrupted',
  busy: ':hourglass: Gateway busy, nothing done',
  'not-allowed': ':no_entry_sign: Nothing done',
};

/** `wanted` is what the plan proposed: shown for an apply whose step did not get there, never for a roll back (which restores). */
function stepResultLine(s: ApplyStepView, i: number, isRollback: boolean): string {
  const emoji = STATUS_EMOJI[s.status] ?? ':grey_question:';
  const v = (x: string | number | null | undefined): string => code(truncate(oneLine(value(x)), BUDGETS.stepValue));
  let line = `${emoji} ${i + 1}. ${v(s.key)}: ${v(s.before)} → ${v(s.after)} _(${esc(oneLine(s.status))})_`;
  if (!isRollback && s.expected !== undefined && s.expected !== null && String(s.expected) !== String(s.after ?? '')) line += ` — wanted ${v(s.expected)}`;
  if (s.detail && s.detail.trim() !== '') line += `\n      ${esc(oneLine(s.detail))}`;
  return truncateMrkdwn(line, BUDGETS.stepLine);
}

/** Per-step result of an apply (or roll back), before -> after, with a Roll back button. */
export function renderApplyResult(result: ApplyResultView): RenderedMessage {
  if (result.planId.length === 0 || result.planId.length > LIMITS.buttonValue) throw new Error(`plan id must be 1..${LIMITS.buttonValue} characters`);
  const gw = oneLine(result.gateway);
  const isRollback = result.action === 'rollback';
  const title = OUTCOME_TITLE[result.outcome] ?? `:grey_question: ${isRollback ? 'Roll back' : 'Apply'}: ${oneLine(result.outcome)}`;
  const blocks: Block[] = [header(`${title} on ${gw}`, 'apply_header')];

  const counts = result.steps.reduce<Record<string, number>>((acc, s) => ({ ...acc, [s.status]: (acc[s.status] ?? 0) + 1 }), {});
  const summary = Object.entries(counts)
    .map(([k, n]) => `${n} ${esc(k)}`)
    .join(', ');
  const meta = [
    `Plan ${code(result.planId)}`,
    result.by ? `by ${user(result.by)}` : '',
    result.at ? slackDate(result.at) : '',
    result.durationMs !== undefined ? duration(result.durationMs) : '',
  ].filter(Boolean);
  blocks.push(context([`${meta.join(' · ')}${summary ? ` · ${summary}` : ''}`], 'apply_meta'));

  const lines = result.steps.map((s, i) => stepResultLine(s, i, isRollback));
  const fit = fitLines(lines, LIMITS.sectionText, (n) => `… and ${n} more step(s)`);
  blocks.push(section(fit.text === '' ? '_No steps._' : fit.text, 'apply_steps'));

  if (result.verify && result.verify.length > 0) {
    const vlines = result.verify.map((c) =>
      truncateMrkdwn(`${c.ok ? ':white_check_mark:' : ':x:'} ${esc(oneLine(c.name))}${c.detail ? ` — ${esc(truncate(oneLine(c.detail), BUDGETS.progressDetail))}` : ''}`, BUDGETS.stepLine),
    );
    const vfit = fitLines(vlines, LIMITS.sectionText - 20, (n) => `… and ${n} more check(s)`);
    blocks.push(section(`*Verification*\n${vfit.text}`, 'apply_verify'));
  }
  if (result.notes && result.notes.length > 0) {
    const notes = result.notes.slice(0, BUDGETS.notes).map((n) => `:memo: ${esc(truncate(oneLine(n), BUDGETS.noteChars))}`);
    if (result.notes.length > notes.length) notes.push(`… and ${result.notes.length - notes.length} more note(s)`);
    blocks.push(context(notes, 'apply_notes'));
  }

  const changed = result.steps.some((s) => s.status === 'applied');
  const canRollBack = result.canRollBack ?? (!isRollback && changed);
  if (canRollBack) {
    blocks.push(
      actions(
        [
          button({
            text: 'Roll back',
            actionId: ACTION_IDS.rollback,
            value: result.planId,
            style: 'danger',
            confirm: confirmDialog(`Roll back on ${gw}?`, `Every changed step of plan \`${esc(result.planId)}\` goes back to its value before the apply.`, 'Roll back', 'Cancel', 'danger'),
          }),
        ],
        'apply_actions',
      ),
    );
  }
  const text = truncate(`${title.replace(/^:[a-z_-]+: /, '')} on ${gw}: ${summary || 'no steps'} (plan ${result.planId})`, BUDGETS.fallbackText);
  return { text, blocks };
}
