import { expect } from 'vitest';
import type { types } from '@slack/bolt';
import { BUDGETS, blockChars, type Block, type RenderedMessage } from '../../../src/slack/blocks/index.js';
import { formatIssues, validateMessage, validateBlocks } from '../../support/slack-api/index.js';

/** Compile-time check: rendered blocks can go wherever Slack's SDK wants blocks. */
export function asKnownBlocks(blocks: Block[]): (types.KnownBlock | types.Block)[] {
  return blocks;
}

/** The message passes the validator the local Slack API uses, and our own budgets. */
export function expectValidMessage(m: RenderedMessage, opts: { budget?: boolean } = {}): void {
  const issues = validateBlocks(m.blocks);
  expect(formatIssues(issues), 'Block Kit issues').toEqual([]);
  expect(validateMessage({ text: m.text, blocks: m.blocks })).toEqual({ ok: true });
  expect(m.text.length).toBeLessThanOrEqual(BUDGETS.fallbackText);
  if (opts.budget ?? true) {
    expect(m.blocks.length).toBeLessThanOrEqual(BUDGETS.blocks);
    expect(blockChars(m.blocks)).toBeLessThanOrEqual(BUDGETS.messageChars);
  }
  // Not JSON.stringify: it escapes lone surrogates (\\udXXX) and would hide them.
  expect(noBrokenSurrogates(m.text), 'broken surrogate in text').toBe(true);
  expect(noBrokenSurrogates(allText(m)), 'broken surrogate in blocks').toBe(true);
}

/** True when every surrogate in the text is part of a pair. */
export function noBrokenSurrogates(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const n = text.charCodeAt(i + 1);
      if (!(n >= 0xdc00 && n <= 0xdfff)) return false;
      i++;
    } else if (c >= 0xdc00 && c <= 0xdfff) {
      return false;
    }
  }
  return true;
}

/** All visible text of a message, for content assertions. */
export function allText(m: { blocks: Block[] }): string {
  const out: string[] = [];
  for (const b of m.blocks) {
    switch (b.type) {
      case 'section':
        if (b.text) out.push(b.text.text);
        for (const f of b.fields ?? []) out.push(f.text);
        break;
      case 'header':
        out.push(b.text.text);
        break;
      case 'context':
        for (const e of b.elements) out.push(e.text);
        break;
      case 'actions':
        for (const e of b.elements) out.push(...(e.type === 'button' ? [e.text.text] : e.options.map((o) => o.text.text)));
        break;
      case 'divider':
        break;
    }
  }
  return out.join('\n');
}

export function buttons(m: { blocks: Block[] }): { action_id: string; value: string | undefined; style: string | undefined; text: string; hasConfirm: boolean }[] {
  return m.blocks.flatMap((b) =>
    b.type === 'actions'
      ? b.elements.flatMap((e) => (e.type === 'button' ? [{ action_id: e.action_id, value: e.value, style: e.style, text: e.text.text, hasConfirm: e.confirm !== undefined }] : []))
      : [],
  );
}
