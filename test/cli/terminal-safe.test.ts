/** Gateway text on a terminal: control characters become visible escapes, layout newlines stay. */
import { describe, expect, it } from 'vitest';
import { renderReportText } from '../../src/cli/render-text.js';
import { terminalSafe } from '../../src/cli/terminal-safe.js';
import { realisticReport } from '../slack/blocks/fixtures.js';

const CONTROLS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

describe('terminalSafe', () => {
  it('shows C0, DEL and C1 controls as \\xNN; keeps tabs, and newlines only when asked', () => {
    expect(terminalSafe('a\u001b]0;t\u0007b\u009b2J\u007fc\td\re\nf')).toBe('a\\x1b]0;t\\x07b\\x9b2J\\x7fc\td\\x0de\\x0af');
    expect(terminalSafe('a\nb\u001b[2J', { keepNewlines: true })).toBe('a\nb\\x1b[2J');
    expect(terminalSafe('plain text, ünïcödé, 中文')).toBe('plain text, ünïcödé, 中文');
  });

  it('a check report whose gateway text carries escapes prints none of them', () => {
    const report = realisticReport();
    report.facts.kernelRelease = '6.1.0\u001b]0;pwned\u0007';
    report.plan.notes = ['note \u001b[2J\u009b31m cleared'];
    const text = renderReportText(report);
    expect(text).toContain('6.1.0\\x1b]0;pwned\\x07');
    expect(text).not.toMatch(CONTROLS);
    expect(text.split('\n').length).toBeGreaterThan(10);
  });
});
