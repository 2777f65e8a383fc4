import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { webApi } from '@slack/bolt';
import { checkReportSchema } from '../../../src/core/model.js';
import { ACTION_IDS, BLOCK_IDS, renderDecision, renderExpired, renderFindings, renderOverflowReplies } from '../../../src/slack/blocks/index.js';
import { startSlackApi, type SlackApiServer } from '../../support/slack-api/index.js';
import { hugeReport, PLAN_ID, realisticReport } from './fixtures.js';
import { allText, asKnownBlocks, buttons, expectValidMessage } from './helpers.js';

const opts = { planId: PLAN_ID, requestedBy: 'U0ALICE01', expiresAt: '2026-11-24T14:35:12.000Z', approvable: true };

describe('renderFindings on a realistic report', () => {
  const report = realisticReport();
  const m = renderFindings(report, opts);

  it('is a valid message within our budgets, without overflow', () => {
    expectValidMessage(m);
    expect(m.overflow).toBeUndefined();
    asKnownBlocks(m.blocks);
  });

  it('has a header with the gateway and the worst severity', () => {
    expect(m.blocks[0]).toEqual({ type: 'header', block_id: 'findings_header', text: { type: 'plain_text', text: ':red_circle: conntrack check: gw-3', emoji: true } });
    expect(m.text).toContain('gw-3');
    expect(m.text).toContain('worst critical');
  });

  it('shows the key numbers: count/max and %, drops, early drops, insert_failed, table-full messages and when', () => {
    const t = allText(m);
    expect(t).toContain('262,100 / 262,144 (100%)');
    expect(t).toContain('*Dropped* (`drop`)\n18,344');
    expect(t).toContain('*Early drops*\n2,210');
    expect(t).toContain('*Insert failed*\n7');
    expect(t).toMatch(/"table full" in kernel log\*\n42, last <!date\^\d+\^\{date_short_pretty\} \{time\}\|2026-11-24T14:04:58Z>/);
  });

  it('shows top talkers, states and timeouts', () => {
    const t = allText(m);
    expect(t).toContain('181,220  10.20.0.15');
    expect(t).toContain('150,002  203.0.113.10');
    expect(t).toContain('190,440  tcp ESTABLISHED');
    expect(t).toContain('tcp_timeout_established 432,000');
  });

  it('lists findings worst first with their evidence', () => {
    const t = allText(m);
    expect(t.indexOf('Packets are being dropped')).toBeLessThan(t.indexOf('ESTABLISHED timeout is 5 days'));
    expect(t.indexOf('ESTABLISHED timeout is 5 days')).toBeLessThan(t.indexOf('Management SSH is tracked'));
    expect(t).toContain('• drop: 18,344');
    expect(t).toContain('• ratio: 0.788');
    expect(t).toContain('"table full, dropping packet"');
  });

  it('shows the plan as key: current -> proposed, marking optional and not-writable steps', () => {
    const t = allText(m);
    expect(t).toContain('*Change plan* — 5 step(s), 2 optional, 1 not writable here');
    expect(t).toContain('1. `nf_conntrack_tcp_timeout_established`: `432000` → `7200`');
    expect(t).toMatch(/2\. `nf_conntrack_max`: `262144` → `524288` :no_entry: _not writable here — change it in the host \(init namespace\): sysctl -w net\.netfilter\.nf_conntrack_max=524288_/);
    expect(t).toContain('4. `NOTRACK tcp dport 22 on mgmt0`: `tracked` → `untracked` _(optional)_');
    expect(t).toContain(':memo: Memory estimate uses 320 bytes per entry (slabinfo).');
  });

  it('has Approve (primary, confirmed), Approve + optional (confirmed) and Reject (danger) whose value is only the plan id', () => {
    expect(buttons(m)).toEqual([
      { action_id: ACTION_IDS.approve, value: PLAN_ID, style: 'primary', text: 'Approve', hasConfirm: true },
      { action_id: ACTION_IDS.approveAll, value: PLAN_ID, style: undefined, text: 'Approve + optional', hasConfirm: true },
      { action_id: ACTION_IDS.reject, value: PLAN_ID, style: 'danger', text: 'Reject', hasConfirm: false },
    ]);
    expect(ACTION_IDS).toMatchObject({ approve: 'plan_approve', approveAll: 'plan_approve_all', reject: 'plan_reject', rollback: 'plan_rollback' });
    const t = allText(m);
    expect(t).toContain('On approval: 2 step(s) applied, plus the optional steps ticked above (Approve + optional: all 2).');
    expect(t).toMatch(/Requested by <@U0ALICE01> · plan `3f6c1d2e-8a4b-4c7d-9e1f-2a3b4c5d6e7f` · expires <!date\^\d+\^/);
  });

  it('makes each optional step approvable on its own: one checkbox per step, above the buttons, none ticked', () => {
    const i = m.blocks.findIndex((b) => b.type === 'actions' && b.block_id === BLOCK_IDS.optionalSteps);
    const group = m.blocks[i];
    expect(group?.type === 'actions' && group.elements).toEqual([
      {
        type: 'checkboxes',
        action_id: ACTION_IDS.optionalSteps,
        options: [
          { text: { type: 'plain_text', text: 'Exempt management SSH from tracking (NOTRACK)', emoji: true }, value: 's4', description: { type: 'plain_text', text: 's4', emoji: true } },
          { text: { type: 'plain_text', text: 'Delete 150000 idle entries now', emoji: true }, value: 's5', description: { type: 'plain_text', text: 'ESTABLISHED idle > 7200 s', emoji: true } },
        ],
      },
    ]);
    expect(m.blocks[i + 1]?.block_id).toBe(BLOCK_IDS.actions);
  });

  it('escapes mrkdwn in data', () => {
    const r = realisticReport();
    r.findings = [{ id: 'heavy-hitter', severity: 'warning', title: '<!channel> & <@U999> *pwn*', evidence: { '<b>': '&x' } }];
    const out = renderFindings(r, opts);
    expectValidMessage(out);
    const t = allText(out);
    expect(t).toContain('&lt;!channel&gt; &amp; &lt;@U999&gt;');
    expect(t).not.toContain('<!channel>');
    expect(t).toContain('• &lt;b&gt;: &amp;x');
  });

  it('refuses a plan id that cannot be a button value rather than cutting it', () => {
    expect(() => renderFindings(report, { ...opts, planId: '' })).toThrow(/plan id/);
    expect(() => renderFindings(report, { ...opts, planId: 'p'.repeat(2001) })).toThrow(/plan id/);
  });
});

describe('renderFindings without approval, and after the decision', () => {
  const report = realisticReport();

  it('not approvable: no buttons, and says why', () => {
    const m = renderFindings(report, { ...opts, approvable: false });
    expectValidMessage(m);
    expect(buttons(m)).toEqual([]);
    expect(allText(m)).toContain('cannot be approved from here');
  });

  it('no steps: no buttons even if approvable', () => {
    const r = realisticReport();
    r.plan = { steps: [], notes: [] };
    r.findings = [{ id: 'table-healthy', severity: 'ok', title: 'Table healthy', evidence: { percent: 3 } }];
    const m = renderFindings(r, opts);
    expectValidMessage(m);
    expect(buttons(m)).toEqual([]);
    expect(allText(m)).toContain('No changes proposed');
    expect(m.blocks[0]).toMatchObject({ type: 'header', text: { text: ':white_check_mark: conntrack check: gw-3' } });
  });

  it('approved: buttons gone, who and when', () => {
    const m = renderDecision({ report, planId: PLAN_ID, decision: 'approved', by: 'U0BOB0001', at: '2026-11-24T14:10:00.000Z', requestedBy: 'U0ALICE01' });
    expectValidMessage(m);
    expect(buttons(m)).toEqual([]);
    const t = allText(m);
    const unix = Math.floor(Date.parse('2026-11-24T14:10:00.000Z') / 1000);
    expect(t).toContain(`:white_check_mark: *Approved* by <@U0BOB0001> <!date^${unix}^{date_short_pretty} {time}|2026-11-24T14:10:00Z>`);
    expect(t).toContain('Requested by <@U0ALICE01>');
    expect(t).toContain('*Change plan*');
    expect(m.text).toContain('approved');
  });

  it('rejected, with a reason', () => {
    const m = renderDecision({ report, planId: PLAN_ID, decision: 'rejected', by: 'U0BOB0001', at: '2026-11-24T14:10:00.000Z', reason: 'change freeze <today>' });
    expectValidMessage(m);
    expect(buttons(m)).toEqual([]);
    expect(allText(m)).toContain(':no_entry_sign: *Rejected* by <@U0BOB0001>');
    expect(allText(m)).toContain('Reason: change freeze &lt;today&gt;');
  });

  it('expired', () => {
    const m = renderExpired({ report, planId: PLAN_ID, expiresAt: '2026-11-24T14:35:12.000Z' });
    expectValidMessage(m);
    expect(buttons(m)).toEqual([]);
    expect(allText(m)).toContain(':hourglass: *Expired*');
    expect(allText(m)).toContain('/conntrack check gw-3');
  });
});

describe('renderFindings on huge and hostile reports', () => {
  it('1,000 findings, 1,000 steps, 1,000 top talkers, 10,000-character strings with emoji: valid, cut, with overflow', () => {
    const report = hugeReport();
    const m = renderFindings(report, opts);
    expectValidMessage(m);
    const t = allText(m);
    expect(t).toMatch(/… and \d+ more finding\(s\) \(.+\): full detail in the thread\./);
    expect(t).toMatch(/… and \d+ more step\(s\): the full plan is in the thread\./);
    expect(t).toMatch(/… and \d+ more/);
    expect(buttons(m).every((b) => b.value === PLAN_ID)).toBe(true);
    expect(buttons(m).map((b) => b.action_id)).toContain(ACTION_IDS.approve);
    expect(m.overflow).toBeDefined();
    const overflow = m.overflow ?? '';
    expect(overflow).toContain('Findings (1000):');
    expect(overflow).toContain('Plan (1000 steps):');
    expect(overflow.length).toBeLessThanOrEqual(200_000);
  });

  it('the overflow becomes valid thread replies', () => {
    const m = renderFindings(hugeReport({ findings: 40, steps: 40, stringLength: 300 }), opts);
    const overflow = m.overflow ?? '';
    expect(overflow.length).toBeGreaterThan(3000);
    const replies = renderOverflowReplies(overflow, { maxMessages: 100 });
    expect(replies.complete).toBe(true);
    for (const r of replies.messages) expectValidMessage(r);
    // Nothing lost: the code blocks put back together are the (escaped) overflow; every backtick neutralised, so none closes a fence.
    const joined = replies.messages.flatMap((r) => r.blocks.map((b) => (b.type === 'section' ? (b.text?.text ?? '').replace(/^```|```$/g, '') : ''))).join('');
    expect(joined).toBe(overflow.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/`/g, 'ˋ'));
    expect(joined).not.toContain('`');
    const few = renderOverflowReplies(overflow, { maxMessages: 1 });
    expect(few.complete).toBe(false);
    expect(few.messages).toHaveLength(1);
    expectValidMessage(few.messages[0] ?? { text: '', blocks: [] });
  });

  it('stays valid on 200 random hostile reports of every size', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const r = (seed * 7919) % 97;
      const report = hugeReport({ seed, findings: r % 23, steps: (r * 3) % 31, talkers: r % 17, stringLength: 1 + ((r * 131) % 4000), notes: r % 5, evidence: r % 13 });
      const m = renderFindings(report, { ...opts, approvable: seed % 2 === 0 });
      expectValidMessage(m);
      const d = renderDecision({ report, planId: PLAN_ID, decision: seed % 3 === 0 ? 'approved' : 'rejected', by: 'U0BOB0001', at: '2026-11-24T14:10:00.000Z', reason: 'x'.repeat(r * 50) });
      expectValidMessage(d);
    }
  });

  it('a report straight from JSON (as stored in Redis) renders the same', () => {
    const report = realisticReport();
    const again = checkReportSchema.parse(JSON.parse(JSON.stringify(report)));
    expect(renderFindings(again, opts)).toEqual(renderFindings(report, opts));
  });
});

describe('rendered findings through the local Slack API', () => {
  let slack: SlackApiServer;
  beforeAll(async () => {
    slack = await startSlackApi();
  });
  afterAll(async () => {
    await slack.close();
  });

  it('post, then update to the decision, then thread the overflow: Slack accepts all of it', async () => {
    const client = new webApi.WebClient(slack.token, { slackApiUrl: slack.apiUrl, retryConfig: { retries: 0 } });
    const report = hugeReport({ findings: 300, steps: 300, talkers: 300, stringLength: 2000 });
    const m = renderFindings(report, opts);
    const posted = await client.chat.postMessage({ channel: 'C0OPS0001', text: m.text, blocks: asKnownBlocks(m.blocks) });
    const ts = posted.ts ?? '';
    expect(slack.message('C0OPS0001', ts)?.blocks).toEqual(m.blocks);
    for (const reply of renderOverflowReplies(m.overflow ?? '', { maxMessages: 3 }).messages) {
      await client.chat.postMessage({ channel: 'C0OPS0001', thread_ts: ts, text: reply.text, blocks: asKnownBlocks(reply.blocks) });
    }
    expect(slack.replies('C0OPS0001', ts)).toHaveLength(3);
    const d = renderDecision({ report, planId: PLAN_ID, decision: 'approved', by: 'U0BOB0001', at: '2026-11-24T14:10:00.000Z' });
    await client.chat.update({ channel: 'C0OPS0001', ts, text: d.text, blocks: asKnownBlocks(d.blocks) });
    const current = slack.message('C0OPS0001', ts);
    expect(current?.versions).toHaveLength(2);
    expect(JSON.stringify(current?.blocks)).not.toContain('plan_approve');
  });
});
