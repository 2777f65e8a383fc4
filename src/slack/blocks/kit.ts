/**
 * Block builders that cannot produce an invalid block: every text is cut to its
 * limit, empty text becomes a placeholder, lists are capped. Plus the formatting
 * helpers (escaping, numbers, dates, severity emoji) the renderers share.
 */
import { SEVERITIES, severityRank, type Severity } from '../../core/model.js';
import { LIMITS, truncate, truncateMrkdwn } from './limits.js';
import type { ActionsBlock, Block, ButtonElement, CheckboxesElement, ConfirmDialog, ContextBlock, DividerBlock, HeaderBlock, Mrkdwn, PlainText, SectionBlock } from './types.js';

/** Slack needs at least one character in every text object. */
const EMPTY = '—';

function nonEmpty(text: string): string {
  return text.trim() === '' ? EMPTY : text;
}

/** Escape the three characters Slack's mrkdwn gives meaning to (docs: "Escaping text"). */
export function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Whitespace runs (newlines included) as one space, trimmed. */
export function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

/** Text safe inside `inline code`: escaped, no backticks, one line. */
export function code(text: string): string {
  return `\`${esc(text).replace(/`/g, 'ˋ').replace(/[\r\n]+/g, ' ') || ' '}\``;
}

/**
 * Text safe inside a ``` block: escaped and without backticks. Any backtick is replaced
 * (not only a full fence): one or two at the end of the body join the closing fence and
 * close the block early, letting the rest render as mrkdwn.
 */
export function codeBlockBody(text: string): string {
  return esc(text).replace(/`/g, 'ˋ');
}

export function plain(text: string, max: number = LIMITS.textObject): PlainText {
  return { type: 'plain_text', text: nonEmpty(truncate(text, max)), emoji: true };
}

export function mrkdwn(text: string, max: number = LIMITS.textObject): Mrkdwn {
  return { type: 'mrkdwn', text: nonEmpty(truncateMrkdwn(text, max)) };
}

export function header(text: string, blockId?: string): HeaderBlock {
  return { type: 'header', ...(blockId ? { block_id: blockId } : {}), text: plain(text.replace(/\s+/g, ' '), LIMITS.headerText) };
}

export function section(text: string, blockId?: string): SectionBlock {
  return { type: 'section', ...(blockId ? { block_id: blockId } : {}), text: mrkdwn(text, LIMITS.sectionText) };
}

/** A two-column section; extra fields beyond Slack's 10 are dropped (callers pass at most 10). */
export function fields(items: readonly string[], blockId?: string): SectionBlock {
  const list = items.slice(0, LIMITS.sectionFields).map((f) => mrkdwn(f, LIMITS.sectionFieldText));
  return { type: 'section', ...(blockId ? { block_id: blockId } : {}), fields: list.length > 0 ? list : [mrkdwn(EMPTY)] };
}

export function context(items: readonly string[], blockId?: string): ContextBlock {
  const list = items.slice(0, LIMITS.contextElements).map((t) => mrkdwn(t, LIMITS.textObject));
  return { type: 'context', ...(blockId ? { block_id: blockId } : {}), elements: list.length > 0 ? list : [mrkdwn(EMPTY)] };
}

export function divider(): DividerBlock {
  return { type: 'divider' };
}

export function confirmDialog(title: string, text: string, confirmLabel: string, denyLabel: string, style?: 'primary' | 'danger'): ConfirmDialog {
  return {
    title: plain(title, LIMITS.confirmTitle),
    text: mrkdwn(text, LIMITS.confirmText),
    confirm: plain(confirmLabel, LIMITS.confirmButton),
    deny: plain(denyLabel, LIMITS.confirmButton),
    ...(style ? { style } : {}),
  };
}

/**
 * A button. `value` is an identifier (a plan id), never data: it is not cut but
 * rejected when it cannot fit, because a shortened id would point at nothing.
 */
export function button(opts: { text: string; actionId: string; value: string; style?: 'primary' | 'danger'; confirm?: ConfirmDialog }): ButtonElement {
  if (opts.value.length === 0 || opts.value.length > LIMITS.buttonValue) throw new Error(`button value must be 1..${LIMITS.buttonValue} characters`);
  if (opts.actionId.length === 0 || opts.actionId.length > LIMITS.actionId) throw new Error(`action_id must be 1..${LIMITS.actionId} characters`);
  return {
    type: 'button',
    text: plain(opts.text, LIMITS.buttonText),
    action_id: opts.actionId,
    value: opts.value,
    ...(opts.style ? { style: opts.style } : {}),
    ...(opts.confirm ? { confirm: opts.confirm } : {}),
  };
}

/** A checkbox group (at most 10 options; option text and description at most 75 characters). */
export function checkboxes(actionId: string, options: readonly { text: string; value: string; description?: string }[]): CheckboxesElement {
  return {
    type: 'checkboxes',
    action_id: actionId,
    options: options.slice(0, LIMITS.checkboxOptions).map((o) => ({
      text: plain(o.text, LIMITS.optionText),
      value: truncate(o.value, LIMITS.optionValue),
      ...(o.description ? { description: plain(o.description, LIMITS.optionText) } : {}),
    })),
  };
}

export function actions(elements: readonly (ButtonElement | CheckboxesElement)[], blockId?: string): ActionsBlock {
  return { type: 'actions', ...(blockId ? { block_id: blockId } : {}), elements: elements.slice(0, LIMITS.actionsElements) };
}

// ---- formatting ----------------------------------------------------------------

export const SEVERITY_ORDER: readonly Severity[] = SEVERITIES;

export const SEVERITY_EMOJI: Record<Severity, string> = {
  critical: ':red_circle:',
  warning: ':large_orange_circle:',
  info: ':large_blue_circle:',
  ok: ':white_check_mark:',
};

export function severityEmoji(severity: string): string {
  return (SEVERITY_EMOJI as Record<string, string>)[severity] ?? ':grey_question:';
}

export { severityRank };

export function worstSeverity(severities: readonly string[]): Severity {
  let best: Severity = 'ok';
  for (const s of severities) if (severityRank(s) < severityRank(best)) best = s as Severity;
  return best;
}

export function int(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  return Math.round(n).toLocaleString('en-US');
}

export function pct(n: number): string {
  if (!Number.isFinite(n)) return '?%';
  return `${n >= 10 || n === 0 ? n.toFixed(0) : n.toFixed(1)}%`;
}

export function value(v: string | number | null | undefined): string {
  if (v === null || v === undefined) return '—';
  return typeof v === 'number' ? int(v) : v;
}

/**
 * A Slack date token: shown in each reader's time zone, with the ISO text as the
 * fallback (docs: "Formatting dates"). Non-dates come back escaped, as they are.
 */
export function slackDate(iso: string, format = '{date_short_pretty} {time}'): string {
  const ms = Date.parse(iso);
  if (!Number.isFinite(ms)) return esc(truncate(iso.replace(/\s+/g, ' '), 40));
  const fallback = new Date(ms).toISOString().replace('.000Z', 'Z');
  return `<!date^${Math.floor(ms / 1000)}^${format}|${fallback}>`;
}

/** A user mention when the id looks like a Slack user id, else the escaped text. */
export function user(id: string): string {
  return /^[UW][A-Z0-9]{2,30}$/.test(id) ? `<@${id}>` : esc(truncate(id.replace(/\s+/g, ' '), 80));
}

export function duration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** Total visible characters of some blocks (for the message budget). */
export function blockChars(blocks: readonly Block[]): number {
  let n = 0;
  for (const b of blocks) {
    switch (b.type) {
      case 'section':
        n += b.text?.text.length ?? 0;
        for (const f of b.fields ?? []) n += f.text.length;
        break;
      case 'header':
        n += b.text.text.length;
        break;
      case 'context':
        for (const e of b.elements) n += e.text.length;
        break;
      case 'actions':
        for (const e of b.elements) n += e.type === 'button' ? e.text.text.length : e.options.reduce((m, o) => m + o.text.text.length + (o.description?.text.length ?? 0), 0);
        break;
      case 'divider':
        break;
    }
  }
  return n;
}
