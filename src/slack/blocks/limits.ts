/**
 * Slack's Block Kit limits, in one place, and the helpers that cut text to fit them.
 *
 * Documented limits (docs.slack.dev reference pages for each block / element / object,
 * the same numbers as the JSDoc in @slack/types): see the comments below. Lengths are
 * counted in UTF-16 code units (JS `.length`), which is never less than the number of
 * characters Slack counts, so text cut here always fits.
 */

export const LIMITS = {
  /** Blocks in one message (modals allow 100). */
  blocksPerMessage: 50,
  /** chat.postMessage `text`: longer is msg_too_long. */
  messageText: 40_000,
  /** Any text object (section text, context element, confirm text is lower). */
  textObject: 3000,
  sectionText: 3000,
  sectionFields: 10,
  sectionFieldText: 2000,
  /** Header: plain_text only. */
  headerText: 150,
  contextElements: 10,
  actionsElements: 25,
  buttonText: 75,
  buttonValue: 2000,
  actionId: 255,
  blockId: 255,
  confirmTitle: 100,
  confirmText: 300,
  confirmButton: 30,
  /** Checkbox group: options, option text and description (option object), option value. */
  checkboxOptions: 10,
  optionText: 75,
  optionValue: 150,
} as const;

/**
 * Our own budgets, below Slack's limits: a message that uses all 50 blocks at 3000
 * characters is unreadable, and Slack has been seen to refuse messages with about
 * 13,000 characters of block text (msg_blocks_too_long, bolt-js#2509) although no
 * limit is documented. Detail beyond these goes to the thread (`overflow`).
 */
export const BUDGETS = {
  /** Visible characters across all blocks of one message. */
  messageChars: 12_000,
  /** Notification / fallback `text`. */
  fallbackText: 1000,
  /** Blocks we allow ourselves per message (leaves room for callers to append a few). */
  blocks: 45,
  findingsShown: 15,
  findingChars: 1200,
  /** Floor of the per-finding share when there are many findings. */
  findingMinChars: 280,
  findingsChars: 4500,
  evidenceLines: 10,
  planChars: 3000,
  stepLine: 600,
  /** One value (current / proposed) inside a plan line. */
  stepValue: 120,
  topListLines: 10,
  /** One line of a top-N / states / timeouts list. */
  listLine: 64,
  /** One list field (top sources, states...). */
  listField: 800,
  stateLines: 8,
  notes: 3,
  noteChars: 400,
  historyLines: 25,
  progressDetail: 300,
  /** Full plain-text detail returned as `overflow` (for a thread reply or a file). */
  overflowChars: 200_000,
  /** Characters of one code-block chunk in a thread reply. */
  overflowChunk: 2900,
  /** Code-block sections per thread reply (keeps each reply under messageChars). */
  overflowSectionsPerMessage: 4,
} as const;

const ELLIPSIS = '…';

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

let segmenter: Intl.Segmenter | null = null;
function graphemes(): Intl.Segmenter {
  segmenter ??= new Intl.Segmenter('en', { granularity: 'grapheme' });
  return segmenter;
}

/**
 * The longest prefix of `text` of at most `max` UTF-16 units that does not split a
 * grapheme cluster (so never a surrogate pair, a flag, a ZWJ emoji or a combining mark).
 */
export function cutAtBoundary(text: string, max: number): string {
  if (max <= 0) return '';
  if (text.length <= max) return text;
  // Fast path: below U+0300 there are no surrogates, combining marks, joiners or
  // variation selectors, so a cut between two such characters splits nothing.
  if (text.charCodeAt(max - 1) < 0x300 && text.charCodeAt(max) < 0x300) return text.slice(0, max);
  // Only the neighbourhood of the cut matters: segment a small window around it, so
  // truncating 1,000 strings of 10,000 characters costs no more than short ones.
  const windowStart = Math.max(0, max - 64);
  const window = text.slice(windowStart, max + 16);
  let end = windowStart;
  for (const seg of graphemes().segment(window)) {
    const segEnd = windowStart + seg.index + seg.segment.length;
    if (segEnd > max) break;
    end = segEnd;
  }
  // A cluster longer than the window (combining-mark abuse): fall back to code points.
  if (end === windowStart && windowStart > 0) end = isHighSurrogate(text.charCodeAt(max - 1)) ? max - 1 : max;
  if (end > 0 && isHighSurrogate(text.charCodeAt(end - 1))) end -= 1;
  return text.slice(0, end);
}

/** `text` cut to at most `max` units, with an ellipsis when cut. */
export function truncate(text: string, max: number, ellipsis: string = ELLIPSIS): string {
  if (text.length <= max) return text;
  if (max <= 0) return '';
  if (ellipsis.length >= max) return cutAtBoundary(ellipsis, max);
  return cutAtBoundary(text, max - ellipsis.length) + ellipsis;
}

/**
 * Like `truncate`, for mrkdwn: also never cuts inside an entity (`&amp;`) or an
 * angle-bracket token (`<@U123>`, `<!date^...|...>`, `<https://...|link>`).
 */
export function truncateMrkdwn(text: string, max: number, ellipsis: string = ELLIPSIS): string {
  if (text.length <= max) return text;
  if (max <= 0) return '';
  if (ellipsis.length >= max) return cutAtBoundary(ellipsis, max);
  const room = max - ellipsis.length;
  let head = mrkdwnHead(text, room);
  // An odd number of ``` fences means the cut is inside a code block: close it.
  if ((head.split('```').length - 1) % 2 === 1) head = `${mrkdwnHead(text, room - 4)}\n\`\`\``;
  return head + ellipsis;
}

function mrkdwnHead(text: string, room: number): string {
  let head = cutAtBoundary(text, room);
  const lt = head.lastIndexOf('<');
  if (lt > head.lastIndexOf('>')) head = head.slice(0, lt);
  const amp = head.lastIndexOf('&');
  if (amp >= 0 && amp >= head.length - 5 && !head.slice(amp).includes(';')) head = head.slice(0, amp);
  return head;
}

export interface LinesFit {
  text: string;
  shown: number;
  omitted: number;
}

/**
 * Join as many whole lines as fit in `max` units, then "… and N more" (from `more`).
 * A first line longer than the limit is itself truncated rather than dropped.
 */
export function fitLines(
  lines: readonly string[],
  max: number,
  more: (omitted: number) => string = (n) => `… and ${n} more`,
  opts: { maxLines?: number; joiner?: string; hidden?: number } = {},
): LinesFit {
  const joiner = opts.joiner ?? '\n';
  const hidden = opts.hidden ?? 0;
  const total = lines.length + hidden;
  const maxLines = Math.min(opts.maxLines ?? lines.length, lines.length);
  if (hidden === 0 && maxLines === lines.length) {
    const all = lines.join(joiner);
    if (all.length <= max) return { text: all, shown: lines.length, omitted: 0 };
  }
  let text = '';
  let shown = 0;
  for (let i = 0; i < maxLines; i++) {
    const line = lines[i] ?? '';
    const candidate = shown === 0 ? line : `${text}${joiner}${line}`;
    const remaining = total - (i + 1);
    const tail = remaining > 0 ? `${joiner}${more(remaining)}` : '';
    if (candidate.length + tail.length > max) break;
    text = candidate;
    shown = i + 1;
  }
  if (shown === 0 && lines.length > 0) {
    const tail = total > 1 ? `${joiner}${more(total - 1)}` : '';
    const first = truncateMrkdwn(lines[0] ?? '', Math.max(0, max - tail.length));
    return { text: `${first}${tail}`, shown: 1, omitted: total - 1 };
  }
  const omitted = total - shown;
  if (omitted > 0) text = shown === 0 ? more(omitted) : `${text}${joiner}${more(omitted)}`;
  return { text, shown, omitted };
}

/** Split text into chunks of at most `max` units, preferring line breaks, never splitting a grapheme. */
export function chunkText(text: string, max: number): string[] {
  if (max < 16) throw new Error('chunk size must be at least 16');
  const chunks: string[] = [];
  let rest = text;
  while (rest.length > max) {
    let piece = cutAtBoundary(rest, max);
    const nl = piece.lastIndexOf('\n');
    if (nl > max / 2) piece = piece.slice(0, nl + 1);
    // A single grapheme cluster longer than max (combining-mark abuse): cut at a code point.
    if (piece.length === 0) piece = rest.slice(0, isHighSurrogate(rest.charCodeAt(max - 1)) ? max - 1 : max);
    chunks.push(piece);
    rest = rest.slice(piece.length);
  }
  if (rest.length > 0 || chunks.length === 0) chunks.push(rest);
  return chunks;
}
