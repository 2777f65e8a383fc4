import { describe, expect, it } from 'vitest';
import { BUDGETS, LIMITS, chunkText, cutAtBoundary, fitLines, truncate, truncateMrkdwn } from '../../../src/slack/blocks/index.js';
import { SLACK_DOCUMENTED_LIMITS } from '../../support/slack-api/index.js';
import { NASTY, nastyString, rng } from './fixtures.js';
import { noBrokenSurrogates } from './helpers.js';

const graphemes = (s: string): string[] => [...new Intl.Segmenter('en', { granularity: 'grapheme' }).segment(s)].map((g) => g.segment);

describe('LIMITS', () => {
  it('match the limits the validator enforces (kept apart on purpose, so a typo in one is caught)', () => {
    const v = SLACK_DOCUMENTED_LIMITS;
    expect(LIMITS).toEqual({
      blocksPerMessage: v.blocksPerMessage,
      messageText: v.messageText,
      textObject: v.textObject,
      sectionText: v.sectionText,
      sectionFields: v.sectionFields,
      sectionFieldText: v.sectionFieldText,
      headerText: v.headerText,
      contextElements: v.contextElements,
      actionsElements: v.actionsElements,
      buttonText: v.buttonText,
      buttonValue: v.buttonValue,
      actionId: v.actionId,
      blockId: v.blockId,
      confirmTitle: v.confirmTitle,
      confirmText: v.confirmText,
      confirmButton: v.confirmButton,
      checkboxOptions: v.checkboxOptions,
      optionText: v.optionText,
      optionValue: v.optionValue,
    });
  });

  it('budgets stay under the limits', () => {
    expect(BUDGETS.blocks).toBeLessThan(LIMITS.blocksPerMessage);
    expect(BUDGETS.fallbackText).toBeLessThan(LIMITS.messageText);
    expect(BUDGETS.findingChars).toBeLessThanOrEqual(LIMITS.sectionText);
    expect(BUDGETS.listField).toBeLessThanOrEqual(LIMITS.sectionFieldText);
    expect(BUDGETS.overflowChunk + 6).toBeLessThanOrEqual(LIMITS.sectionText);
    expect(BUDGETS.overflowChunk * BUDGETS.overflowSectionsPerMessage).toBeLessThanOrEqual(BUDGETS.messageChars);
  });
});

describe('cutAtBoundary / truncate', () => {
  it('never splits a surrogate pair, a ZWJ sequence, a flag or a combining mark', () => {
    const family = '👨‍👩‍👧‍👦';
    expect(cutAtBoundary(`ab${family}`, 3)).toBe('ab');
    expect(cutAtBoundary(`ab${family}`, 2 + family.length)).toBe(`ab${family}`);
    expect(cutAtBoundary('x🇩🇪', 3)).toBe('x');
    expect(cutAtBoundary('xa\u0301', 2)).toBe('x');
    expect(cutAtBoundary('😀😀', 3)).toBe('😀');
    expect(truncate('😀😀😀', 4)).toBe('😀…');
    expect(truncate('abc', 3)).toBe('abc');
    expect(truncate('abcd', 3)).toBe('ab…');
    expect(truncate('abcd', 0)).toBe('');
  });

  it('holds on thousands of random hostile strings: length, prefix, whole graphemes', () => {
    const rand = rng(7);
    for (let i = 0; i < 3000; i++) {
      const s = nastyString(1 + Math.floor(rand() * 400), rand);
      const max = Math.floor(rand() * (s.length + 5));
      const cut = cutAtBoundary(s, max);
      expect(cut.length).toBeLessThanOrEqual(max);
      expect(s.startsWith(cut)).toBe(true);
      expect(noBrokenSurrogates(cut)).toBe(true);
      // Whole graphemes: the cut's graphemes are a prefix of the string's.
      const g = graphemes(cut);
      expect(graphemes(s).slice(0, g.length)).toEqual(g);
      const t = truncate(s, max);
      expect(t.length).toBeLessThanOrEqual(max);
      expect(noBrokenSurrogates(t)).toBe(true);
    }
  });

  it('is fast on long strings (10,000 characters, 2,000 times)', () => {
    const s = nastyString(10_000, rng(3));
    const t0 = performance.now();
    for (let i = 0; i < 2000; i++) truncate(s, 3000 - (i % 7));
    expect(performance.now() - t0).toBeLessThan(2000);
  });
});

describe('truncateMrkdwn', () => {
  it('does not cut inside entities, <...> tokens or leave a code block open', () => {
    expect(truncateMrkdwn('abc &amp; def', 7)).toBe('abc …');
    expect(truncateMrkdwn('hi <@U123456> there', 10)).toBe('hi …');
    expect(truncateMrkdwn('at <!date^1700000000^{date}|2023-11-14> ok', 20)).toBe('at …');
    const t = truncateMrkdwn('x\n```\nline1\nline2\nline3\n```', 20);
    expect(t.length).toBeLessThanOrEqual(20);
    expect((t.split('```').length - 1) % 2).toBe(0);
  });

  it('stays within max on random mrkdwn', () => {
    const rand = rng(11);
    for (let i = 0; i < 2000; i++) {
      const s = nastyString(1 + Math.floor(rand() * 300), rand);
      const max = 1 + Math.floor(rand() * 200);
      const t = truncateMrkdwn(s, max);
      expect(t.length).toBeLessThanOrEqual(max);
      expect(noBrokenSurrogates(t)).toBe(true);
    }
  });
});

describe('fitLines', () => {
  it('keeps whole lines and says how many more', () => {
    const lines = Array.from({ length: 100 }, (_, i) => `line ${i}`);
    const fit = fitLines(lines, 50);
    expect(fit.text.length).toBeLessThanOrEqual(50);
    expect(fit.text).toMatch(/^line 0\nline 1\n.*\n… and \d+ more$/s);
    expect(fit.shown + fit.omitted).toBe(100);
    expect(fit.text.endsWith(`… and ${fit.omitted} more`)).toBe(true);
  });

  it('counts hidden items that were never rendered', () => {
    const fit = fitLines(['a', 'b'], 100, (n) => `+${n}`, { hidden: 998 });
    expect(fit).toEqual({ text: 'a\nb\n+998', shown: 2, omitted: 998 });
  });

  it('truncates a first line that alone is too long', () => {
    const fit = fitLines(['x'.repeat(5000), 'y'], 100);
    expect(fit.text.length).toBeLessThanOrEqual(100);
    expect(fit.text.endsWith('… and 1 more')).toBe(true);
  });

  it('returns everything when it fits', () => {
    expect(fitLines(['a', 'b'], 3)).toEqual({ text: 'a\nb', shown: 2, omitted: 0 });
    expect(fitLines([], 3)).toEqual({ text: '', shown: 0, omitted: 0 });
  });
});

describe('chunkText', () => {
  it('splits at line breaks, never inside a grapheme, and loses nothing', () => {
    const rand = rng(5);
    for (let i = 0; i < 200; i++) {
      const s = nastyString(1 + Math.floor(rand() * 20_000), rand);
      const chunks = chunkText(s, 2900);
      expect(chunks.join('')).toBe(s);
      for (const c of chunks) {
        expect(c.length).toBeLessThanOrEqual(2900);
        expect(noBrokenSurrogates(c)).toBe(true);
      }
    }
    expect(NASTY.length).toBeGreaterThan(10);
  });
});
