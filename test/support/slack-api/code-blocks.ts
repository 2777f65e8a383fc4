/** Reading back what the bot wrote: the ``` code blocks of messages, in order, put back together. */
import type { StoredMessage } from './server.js';

function sectionText(block: unknown): string | null {
  if (typeof block !== 'object' || block === null) return null;
  const b = block as { type?: unknown; text?: { text?: unknown } };
  return b.type === 'section' && typeof b.text?.text === 'string' ? b.text.text : null;
}

/** The bodies of the sections that are one code block each (thread replies of an overflow), joined. */
export function joinedCodeBlocks(messages: readonly StoredMessage[]): string {
  return messages
    .flatMap((m) => m.blocks.map(sectionText))
    .filter((t): t is string => t !== null && t.startsWith('```') && t.endsWith('```') && t.length >= 6)
    .map((t) => t.slice(3, -3))
    .join('');
}
