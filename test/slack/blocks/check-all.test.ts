/** The `check all` summary: one line per gateway, within Slack's limits for any number of gateways, gateway text escaped. */
import { describe, expect, it } from 'vitest';
import { renderCheckAllSummary, type CheckAllResult } from '../../../src/slack/blocks/check-all.js';
import { blockChars, BUDGETS } from '../../../src/slack/blocks/index.js';
import { validateMessage } from '../../support/slack-api/index.js';

const AT = '2026-12-04T21:00:00.000Z';

function view(n: number, result: (i: number) => CheckAllResult | undefined) {
  const gateways = Array.from({ length: n }, (_, i) => `gw-${String(i).padStart(4, '0')}`);
  const results: Record<string, CheckAllResult> = {};
  gateways.forEach((g, i) => {
    const r = result(i);
    if (r) results[g] = r;
  });
  return { requestedBy: 'U0ALICE01', startedAt: AT, gateways, results };
}

describe('renderCheckAllSummary', () => {
  it('says what is running, then what each gateway needs; attention first', () => {
    const running = renderCheckAllSummary(view(3, () => undefined));
    expect(running.text).toBe('Check of all 3 gateways: 0/3 done, 0 with findings, 0 failed');
    const done = renderCheckAllSummary(
      view(3, (i) => (i === 0 ? { state: 'healthy', worst: 'ok', percent: 4 } : i === 1 ? { state: 'findings', worst: 'warning', percent: 81, findings: 2, steps: 3 } : { state: 'failed', error: 'ssh: connect timed out' })),
    );
    expect(done.text).toBe('Check of all 3 gateways: 3/3 done, 1 with findings, 1 failed');
    const body = JSON.stringify(done.blocks);
    expect(body).toContain('Check of all 3 gateways done');
    expect(body.indexOf('gw-0002')).toBeLessThan(body.indexOf('gw-0001'));
    expect(body.indexOf('gw-0001')).toBeLessThan(body.indexOf('gw-0000'));
    expect(body).toContain('a plan of 3 steps (in the thread)');
    expect(validateMessage(done)).toMatchObject({ ok: true });
  });

  it('escapes gateway text in a failure (no mention or link renders) and keeps it on one line', () => {
    const m = renderCheckAllSummary(view(1, () => ({ state: 'failed', error: '<!channel> <https://evil.example|re-auth>\nsecond line' })));
    const body = JSON.stringify(m.blocks);
    expect(body).not.toContain('<!channel>');
    expect(body).not.toContain('<https://evil');
    expect(body).toContain('&lt;!channel&gt;');
    expect(body).not.toMatch(/re-auth&gt;\\nsecond/);
  });

  for (const n of [1, 50, 400, 3000]) {
    it(`${n} gateways fit Slack's limits (validated as Slack would) and every one is shown or counted`, () => {
      const m = renderCheckAllSummary(view(n, (i) => (i % 3 === 0 ? { state: 'failed', error: 'x'.repeat(500) } : i % 3 === 1 ? { state: 'findings', worst: 'critical', percent: 99, findings: 12, steps: 5 } : undefined)));
      expect(validateMessage(m)).toMatchObject({ ok: true });
      expect(m.blocks.length).toBeLessThanOrEqual(BUDGETS.blocks);
      expect(blockChars(m.blocks)).toBeLessThanOrEqual(BUDGETS.messageChars);
      const body = m.blocks.map((b) => JSON.stringify(b)).join('\n');
      const shown = (body.match(/\*gw-\d{4}\*/g) ?? []).length;
      const more = Number(/… and (\d+) more gateway/.exec(body)?.[1] ?? 0);
      expect(shown + more).toBe(n);
    });
  }
});
