/**
 * Thread replies for the detail that did not fit a message (`overflow` of
 * renderFindings): code-block sections of at most BUDGETS.overflowChunk characters,
 * BUDGETS.overflowSectionsPerMessage per reply. Past `maxMessages` replies the rest is
 * left out (`complete: false`) and the caller uploads the whole text as a file too
 * (src/slack/publish/check-message.ts), so nothing is lost.
 */
import { codeBlockBody, context, section } from './kit.js';
import { BUDGETS, LIMITS, chunkText, truncate } from './limits.js';
import type { Block, RenderedMessage } from './types.js';

export interface OverflowReplies {
  messages: RenderedMessage[];
  /** False when the text needed more than `maxMessages` replies and the rest was left out. */
  complete: boolean;
}

/** Move a partial `&amp;` / `&lt;` / `&gt;` at the end of a chunk to the start of the next one. */
function keepEntitiesWhole(chunks: string[]): string[] {
  const out = [...chunks];
  for (let i = 0; i < out.length - 1; i++) {
    const c = out[i] ?? '';
    const amp = c.lastIndexOf('&');
    if (amp >= 0 && amp >= c.length - 4 && !c.slice(amp).includes(';')) {
      out[i] = c.slice(0, amp);
      out[i + 1] = c.slice(amp) + (out[i + 1] ?? '');
    }
  }
  return out.filter((c, i) => c.length > 0 || i === 0);
}

export function renderOverflowReplies(overflow: string, opts: { title?: string; maxMessages?: number } = {}): OverflowReplies {
  const title = opts.title ?? 'Full detail';
  const maxMessages = Math.max(1, opts.maxMessages ?? 3);
  // Escaping grows the text, so chunk the escaped body with room for the fences.
  const body = codeBlockBody(overflow);
  const chunks = keepEntitiesWhole(chunkText(body, Math.min(BUDGETS.overflowChunk, LIMITS.sectionText - 16)));
  const perMessage = BUDGETS.overflowSectionsPerMessage;
  const needed = Math.ceil(chunks.length / perMessage);
  const complete = needed <= maxMessages;
  const messages: RenderedMessage[] = [];
  for (let m = 0; m < Math.min(needed, maxMessages); m++) {
    const part = chunks.slice(m * perMessage, (m + 1) * perMessage);
    const blocks: Block[] = part.map((c, i) => section(`\`\`\`${c}\`\`\``, `overflow_${m}_${i}`));
    const last = m === Math.min(needed, maxMessages) - 1;
    if (last && !complete) {
      blocks.push(context([`… ${chunks.length - (m + 1) * perMessage} more part(s) not shown: ${overflow.length} characters in all.`], `overflow_${m}_more`));
    }
    messages.push({ text: truncate(`${title} (${m + 1}/${complete ? needed : `${maxMessages}+`})`, BUDGETS.fallbackText), blocks });
  }
  return { messages, complete };
}
