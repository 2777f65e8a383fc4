import { describe, expect, it } from 'vitest';
import type { HistoryRecord, LastCheck } from '../../../src/store/history-store.js';
import type { StepState } from '../../../src/worker/ports.js';
import {
  ACTION_IDS,
  COMMANDS,
  renderApplyResult,
  renderHelp,
  renderHistory,
  renderOverflowReplies,
  renderProgress,
  renderStatus,
  renderUsage,
  type ApplyResultView,
  type HistoryRecordView,
  type LastCheckView,
  type ProgressStep,
} from '../../../src/slack/blocks/index.js';
import { PLAN_ID, nastyString, rng } from './fixtures.js';
import { allText, asKnownBlocks, buttons, expectValidMessage } from './helpers.js';

// The renderer inputs are structural twins of the stores' and worker's types: this
// fails to compile if they drift apart.
const _history: HistoryRecordView = {} as HistoryRecord;
const _last: LastCheckView = {} as LastCheck;
const _step: ProgressStep = {} as StepState;
void [_history, _last, _step];

describe('renderProgress', () => {
  it('one line per step with its status', () => {
    const m = renderProgress('gw-3', [
      { name: 'Connect', status: 'done', detail: '0.29 s' },
      { name: 'Dump table', status: 'running' },
      { name: 'Analyse', status: 'pending' },
    ]);
    expectValidMessage(m);
    asKnownBlocks(m.blocks);
    const t = allText(m);
    expect(t).toContain(':white_check_mark: Connect — 0.29 s');
    expect(t).toContain(':hourglass_flowing_sand: *Dump table*…');
    expect(t).toContain(':white_circle: Analyse');
    expect(t).toContain('1/3 step(s) done');
    expect(m.text).toBe('Checking gw-3: Dump table (1/3)');
  });

  it('between two steps the job is in progress, not queued', () => {
    const m = renderProgress('gw-3', [{ name: 'Connect', status: 'done' }, { name: 'Dump table', status: 'pending' }]);
    expect(m.text).toBe('Checking gw-3: in progress (1/2)');
    expect(renderProgress('gw-3', [{ name: 'Connect', status: 'pending' }]).text).toBe('Checking gw-3: queued (0/1)');
  });

  it('a skipped step (refused, not chosen) is finished, not failed', () => {
    const m = renderProgress('gw-3', [{ name: 'timeout', status: 'done' }, { name: '/etc/sysctl.d file', status: 'skipped', detail: 'refused: not writable here' }, { name: 'NOTRACK', status: 'pending' }], 'apply');
    expectValidMessage(m);
    expect(allText(m)).toContain(':fast_forward: /etc/sysctl.d file — refused: not writable here');
    expect(allText(m)).toContain('1/3 step(s) done, 1 skipped');
    expect(m.text).toBe('Applying the plan on gw-3: in progress (2/3)');
    expect(renderProgress('gw-3', [{ name: 'a', status: 'done' }, { name: 'b', status: 'skipped' }], 'apply').text).toBe('Applying the plan on gw-3: done (2/2)');
  });

  it('says what runs: a check, an apply or a roll back', () => {
    const steps = [{ name: 'nf_conntrack_tcp_timeout_time_wait -> 30', status: 'running' as const }];
    expect(renderProgress('gw-3', steps).blocks[0]).toMatchObject({ type: 'header', text: { text: ':mag: Checking gw-3' } });
    const apply = renderProgress('gw-3', steps, 'apply');
    expectValidMessage(apply);
    expect(apply.blocks[0]).toMatchObject({ type: 'header', text: { text: ':gear: Applying the plan on gw-3' } });
    expect(apply.text).toBe('Applying the plan on gw-3: nf_conntrack_tcp_timeout_time_wait -> 30 (0/1)');
    expect(renderProgress('gw-3', steps, 'rollback').text).toMatch(/^Rolling back the plan on gw-3: /);
  });

  it('a failure is shown with its detail', () => {
    const m = renderProgress('gw-3', [{ name: 'Connect', status: 'failed', detail: 'connect timed out <after 10 s>' }]);
    expectValidMessage(m);
    expect(allText(m)).toContain(':x: Connect — connect timed out &lt;after 10 s&gt;');
    expect(m.text).toContain('failed at Connect');
  });

  it('stays valid with 1,000 steps and 10,000-character names', () => {
    const rand = rng(9);
    const steps: ProgressStep[] = Array.from({ length: 1000 }, (_, i) => ({ name: nastyString(10_000, rand), status: (['pending', 'running', 'done', 'failed'] as const)[i % 4] ?? 'done', detail: nastyString(10_000, rand) }));
    const m = renderProgress(nastyString(10_000, rand), steps);
    expectValidMessage(m);
    expect(allText(m)).toMatch(/… and \d+ more step\(s\)/);
  });
});

describe('renderApplyResult', () => {
  const result: ApplyResultView = {
    planId: PLAN_ID,
    gateway: 'gw-3',
    action: 'apply',
    outcome: 'partial',
    by: 'U0BOB0001',
    at: '2026-11-24T14:12:00.000Z',
    durationMs: 2300,
    steps: [
      { key: 'nf_conntrack_tcp_timeout_established', status: 'applied', before: 432000, after: 7200 },
      { key: 'nf_conntrack_max', status: 'failed', before: 262144, after: 262144, expected: 524288, detail: 'read-only in this namespace (sysctl printed "Invalid argument", exit 0)' },
      { key: 'NOTRACK tcp dport 22', status: 'skipped', before: 'tracked', after: null },
      { key: 'weird', status: 'quarantined', before: 'a', after: 'b' },
    ],
    verify: [
      { name: 'read back', ok: true },
      { name: 'table below 90%', ok: false, detail: 'still 99%: existing entries keep their old timeout' },
    ],
    notes: ['Idle ESTABLISHED entries need `conntrack -D` to go.'],
  };

  it('per step before -> after, verification, and a Roll back button whose value is the plan id', () => {
    const m = renderApplyResult(result);
    expectValidMessage(m);
    asKnownBlocks(m.blocks);
    const t = allText(m);
    expect(t).toContain(':white_check_mark: 1. `nf_conntrack_tcp_timeout_established`: `432,000` → `7,200` _(applied)_');
    expect(t).toContain(':x: 2. `nf_conntrack_max`: `262,144` → `262,144` _(failed)_ — wanted `524,288`');
    expect(t).toContain('read-only in this namespace');
    expect(t).toContain(':fast_forward: 3. `NOTRACK tcp dport 22`: `tracked` → `—` _(skipped)_');
    expect(t).toContain(':grey_question: 4. `weird`: `a` → `b` _(quarantined)_');
    expect(t).toContain(':x: table below 90% — still 99%');
    expect(m.blocks[0]).toMatchObject({ type: 'header', text: { text: ':warning: Plan partly applied on gw-3' } });
    expect(buttons(m)).toEqual([{ action_id: ACTION_IDS.rollback, value: PLAN_ID, style: 'danger', text: 'Roll back', hasConfirm: true }]);
    expect(ACTION_IDS.rollback).toBe('plan_rollback');
  });

  it('no Roll back after a roll back, or when nothing changed, unless asked', () => {
    expect(buttons(renderApplyResult({ ...result, action: 'rollback', outcome: 'rolled-back' }))).toEqual([]);
    expect(buttons(renderApplyResult({ ...result, steps: [{ key: 'k', status: 'unchanged', before: 1, after: 1 }] }))).toEqual([]);
    expect(buttons(renderApplyResult({ ...result, steps: [], canRollBack: true }))).toHaveLength(1);
  });

  it('stays valid with 1,000 hostile steps', () => {
    const rand = rng(12);
    const m = renderApplyResult({
      ...result,
      gateway: nastyString(5000, rand),
      outcome: nastyString(500, rand),
      steps: Array.from({ length: 1000 }, () => ({ key: nastyString(10_000, rand), status: nastyString(50, rand), before: nastyString(10_000, rand), after: rand() * 1e12, detail: nastyString(10_000, rand) })),
      verify: Array.from({ length: 500 }, () => ({ name: nastyString(3000, rand), ok: rand() < 0.5, detail: nastyString(3000, rand) })),
      notes: Array.from({ length: 50 }, () => nastyString(10_000, rand)),
    });
    expectValidMessage(m);
  });

  it('a roll back shows what it restored, not what the plan wanted; refused steps and every outcome have their own mark', () => {
    const rolledBack = renderApplyResult({ ...result, action: 'rollback', outcome: 'rolled-back', steps: [{ key: 'nf_conntrack_tcp_timeout_time_wait', status: 'rolled-back', before: 30, after: 120, expected: 30 }] });
    expect(allText(rolledBack)).toContain(':leftwards_arrow_with_hook: 1. `nf_conntrack_tcp_timeout_time_wait`: `30` → `120` _(rolled-back)_');
    expect(allText(rolledBack)).not.toContain('wanted');
    const refused = renderApplyResult({ ...result, outcome: 'refused', steps: [{ key: '/etc/sysctl.d/90-conntrack-ops.conf', status: 'refused', before: null, after: null, expected: 'x' }] });
    expect(allText(refused)).toContain(':no_entry: 1. `/etc/sysctl.d/90-conntrack-ops.conf`');
    expect(refused.blocks[0]).toMatchObject({ type: 'header', text: { text: ':no_entry: Plan refused, nothing changed on gw-3' } });
    for (const outcome of ['applied', 'apply-failed', 'refused', 'already-applied', 'busy', 'interrupted', 'rolled-back', 'rollback-failed', 'not-allowed']) {
      expect(JSON.stringify(renderApplyResult({ ...result, outcome }).blocks[0])).not.toContain(':grey_question:');
    }
  });

  it('refuses a plan id that cannot be a button value', () => {
    expect(() => renderApplyResult({ ...result, planId: '' })).toThrow(/plan id/);
  });
});

describe('help, usage, status, history', () => {
  it('help lists the commands', () => {
    const m = renderHelp();
    expectValidMessage(m);
    for (const c of COMMANDS) expect(allText(m)).toContain(c.usage.replace(/</g, '&lt;').replace(/>/g, '&gt;'));
  });

  it('usage shows the error, escaped, then the commands', () => {
    const m = renderUsage('unknown subcommand "<!here>"');
    expectValidMessage(m);
    expect(allText(m)).toContain(':warning: unknown subcommand "&lt;!here&gt;"');
    expect(allText(m)).toContain('*Usage*');
    expectValidMessage(renderUsage(''));
    expectValidMessage(renderUsage(nastyString(50_000, rng(2))));
  });

  const last: LastCheckView = { at: '2026-11-24T14:05:12.000Z', planId: PLAN_ID, worst: 'critical', count: 262_100, max: 262_144, percent: 99.98, findings: ['drops-observed', 'table-saturated', 'heavy-hitter', 'timewait-pile'] };

  it('status: fullest gateway first, running jobs', () => {
    const m = renderStatus({ gateway: null, lastChecks: { 'gw-1': { ...last, worst: 'ok', percent: 3, count: 8000, findings: [] }, 'gw-3': last }, running: [{ id: 'check-gw-2-1', gateway: 'gw-2', name: 'check' }] });
    expectValidMessage(m);
    const t = allText(m);
    expect(t.indexOf('*gw-3*')).toBeLessThan(t.indexOf('*gw-1*'));
    expect(t).toContain(':red_circle: *gw-3* 100% (262,100/262,144)');
    expect(t).toContain('drops-observed, table-saturated, heavy-hitter +1');
    expect(t).toContain(':hourglass_flowing_sand: check gw-2 `check-gw-2-1`');
    const empty = renderStatus({ gateway: 'gw-9', lastChecks: {}, running: [] });
    expectValidMessage(empty);
    expect(allText(empty)).toContain('_No checks yet._');
  });

  it('status stays valid with 1,000 gateways and hostile names', () => {
    const rand = rng(4);
    const lastChecks = Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`${nastyString(2000, rand)}${i}`, { ...last, planId: nastyString(3000, rand), worst: nastyString(20, rand), findings: Array.from({ length: 50 }, () => nastyString(1000, rand)) }]));
    const running = Array.from({ length: 1000 }, () => ({ id: nastyString(500, rand), gateway: nastyString(500, rand), name: nastyString(500, rand) }));
    expectValidMessage(renderStatus({ gateway: nastyString(1000, rand), lastChecks, running }));
  });

  const records: HistoryRecordView[] = [
    { at: '2026-11-24T14:12:00.000Z', gateway: 'gw-3', event: 'applied', actor: 'U0BOB0001', planId: PLAN_ID, summary: '2 of 3 steps applied' },
    { at: '2026-11-24T14:10:00.000Z', gateway: 'gw-3', event: 'approved', actor: 'U0BOB0001', planId: PLAN_ID, summary: '3 steps queued for apply' },
    { at: '2026-11-24T14:05:12.000Z', gateway: 'gw-3', event: 'check', actor: 'U0ALICE01', planId: PLAN_ID, summary: 'critical, 5 findings' },
  ];

  it('history: who, when, plan id, outcome', () => {
    const m = renderHistory('gw-3', records);
    expectValidMessage(m);
    const t = allText(m);
    expect(t).toMatch(/^:wrench: <!date\^\d+\^[^>]+> \*applied\* by <@U0BOB0001> · plan `3f6c1d2e-8a4b-4c7d-9e1f-2a3b4c5d6e7f` — 2 of 3 steps applied$/m);
    expect(t).toContain(':white_check_mark:');
    expect(t).toContain('*approved* by <@U0BOB0001>');
    expect(t).toContain('3 record(s), newest first');
    expect(allText(renderHistory('gw-3', []))).toContain('_Nothing recorded for gw-3 yet._');
  });

  it('history stays valid with 1,000 hostile records', () => {
    const rand = rng(6);
    const many = Array.from({ length: 1000 }, () => ({ at: nastyString(30, rand), gateway: nastyString(300, rand), event: nastyString(100, rand), actor: nastyString(100, rand), planId: nastyString(3000, rand), summary: nastyString(10_000, rand) }));
    const m = renderHistory(nastyString(10_000, rand), many);
    expectValidMessage(m);
    expect(allText(m)).toMatch(/… and \d+ older record\(s\)/);
  });
});

describe('renderOverflowReplies', () => {
  it('never leaves a broken entity at a chunk edge', () => {
    const text = '&'.repeat(20_000);
    const { messages } = renderOverflowReplies(text, { maxMessages: 50 });
    for (const m of messages) {
      expectValidMessage(m);
      for (const b of m.blocks) if (b.type === 'section') expect((b.text?.text ?? '').replace(/^```|```$/g, '')).toMatch(/^(&amp;)+$/);
    }
  });
});
