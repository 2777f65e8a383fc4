/**
 * The findings of a saved file (offline) in Slack: the same body as a live check's, marked
 * OFFLINE with the time the file was taken, never a button, within Slack's limits whatever
 * the report and the file name hold.
 */
import { describe, expect, it } from 'vitest';
import { renderOfflineFindings } from '../../../src/slack/blocks/index.js';
import { hugeReport, nastyString, realisticReport, rng } from './fixtures.js';
import { allText, buttons, expectValidMessage } from './helpers.js';

const input = { fileName: 'gw-3.saved', collectedAt: '2026-11-24T15:00:00Z', lines: 262_331, bytes: 41_234_567, sharedBy: 'U0ALICE01' };

describe('renderOfflineFindings', () => {
  it('marks the report OFFLINE with the time the file was taken, and has no button even for a writable plan', () => {
    const report = realisticReport();
    expect(report.plan.steps.some((s) => s.writable)).toBe(true);
    const m = renderOfflineFindings(report, input);
    expectValidMessage(m);
    const text = allText(m);
    expect(text).toMatch(/OFFLINE/);
    expect(text).toMatch(/not approvable/);
    expect(text).toContain('2026-11-24T15:00:00Z');
    expect(text).toContain('262,331 lines');
    expect(text).toContain('`gw-3.saved`');
    expect(m.text).toMatch(/^OFFLINE \(saved file\)/);
    expect(buttons(m)).toEqual([]);
    expect(m.blocks.some((b) => b.type === 'actions')).toBe(false);
  });

  it('stays within the limits with a huge report and a hostile file name', () => {
    const rand = rng(11);
    const m = renderOfflineFindings(hugeReport(), { ...input, fileName: nastyString(5000, rand) });
    expectValidMessage(m);
    expect(buttons(m)).toEqual([]);
    expect(m.overflow).toBeDefined();
  });
});
