/**
 * Gateway-derived text made safe for a terminal: C0 controls (ESC, BEL, CR, backspace...),
 * DEL and C1 controls (U+0080-U+009F, which include the 8-bit CSI) are shown as visible
 * `\xNN` escapes instead of being sent to the terminal, where they could move the cursor,
 * rewrite earlier lines, set the window title or hide text. A newline is kept only where
 * it is layout (`keepNewlines`); a tab is kept (it only moves right).
 */

/** C0 except tab and newline, DEL, C1. */
const CONTROLS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;
const CONTROLS_AND_NEWLINE = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f]/g;

function visible(c: string): string {
  return `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
}

export function terminalSafe(text: string, opts: { keepNewlines?: boolean } = {}): string {
  return text.replace(opts.keepNewlines ? CONTROLS : CONTROLS_AND_NEWLINE, visible);
}
