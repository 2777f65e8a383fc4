import { describe, expect, it } from 'vitest';
import { chooseEstablishedTimeout } from '../../src/plan/compute-timeouts.js';
import { IDLE_THRESHOLDS } from '../../src/plan/compute.js';
import { idleCounts, makeFacts, makeTable, saturatedFacts, saturatedTable } from '../support/facts-fixtures.js';
import { planFor, step, stepOf } from './plan-helpers.js';

it('exports the idle thresholds the aggregator must count', () => {
  expect(IDLE_THRESHOLDS).toEqual([300, 600, 1800, 3600, 7200, 21_600, 86_400]);
});

describe('ESTABLISHED timeout from idle times', () => {
  it('dead entries only: 1 d frees 150,000 with nothing at risk', () => {
    const plan = planFor(saturatedFacts(), saturatedTable());
    const s = step(plan, 'tcp-timeout-established');
    expect(s).toMatchObject({ current: '432000', proposed: '86400', params: { freedNow: 150_000, atRisk: 0, countAfter: 112_144 } });
    expect(s.why).toContain('takes the table from 262,144 to 112,144 (42.8% of 262,144, within the 50.0% goal)');
    const d = step(plan, 'delete-idle-entries');
    expect(d).toMatchObject({
      kind: 'delete-idle-entries',
      optional: true,
      writable: true,
      params: { proto: 'tcp', state: 'ESTABLISHED', idleAtLeastSeconds: 86_400, timeoutUsed: 432_000, remainingAtMost: 345_600, expected: 150_000 },
    });
    expect(d.proposed).toBe('delete those 150000 entries one tuple at a time (no flush)');
  });

  it('goes down to 2 h when that is what brings the table under half, and counts the risk', () => {
    const table = saturatedTable({
      entries: 250_000,
      establishedIdle: {
        timeoutUsed: 432_000,
        total: 220_000,
        idleAtLeast: idleCounts({ 300: 200_000, 600: 180_000, 1800: 150_000, 3600: 140_000, 7200: 130_000, 21_600: 80_000, 86_400: 60_000 }),
      },
    });
    const plan = planFor(saturatedFacts({ count: 250_000 }), table);
    const s = step(plan, 'tcp-timeout-established');
    expect(s).toMatchObject({ proposed: '7200', params: { freedNow: 130_000, atRisk: 70_000, countAfter: 120_000 } });
    expect(s.why).toContain('At risk: 70,000 entries idle between 2 h and 1 d may be quiet but alive');
    expect(s.why).toContain('default TCP keepalive (2 h) will be cut');
    expect(step(plan, 'delete-idle-entries').params).toMatchObject({ idleAtLeastSeconds: 7200, remainingAtMost: 424_800, expected: 130_000 });
  });

  it('counts what the delete removes now, not entries that expire within the new timeout anyway', () => {
    // 150,000 idle >= 1 d, but 40,000 of them have less than a day left (idle over 4 days):
    // a delete after lowering to 1 d leaves those to expire and removes 110,000 now, which
    // leaves 152,144 (above the 131,072 goal); after lowering to 6 h it removes all 150,000.
    const table = saturatedTable({
      establishedIdle: {
        timeoutUsed: 432_000,
        total: 200_000,
        idleAtLeast: idleCounts({ 3600: 150_000, 7200: 150_000, 21_600: 150_000, 86_400: 150_000 }),
        deletable: idleCounts({ 3600: 150_000, 7200: 150_000, 21_600: 150_000, 86_400: 110_000 }),
      },
    });
    const plan = planFor(saturatedFacts(), table);
    expect(step(plan, 'tcp-timeout-established')).toMatchObject({ proposed: '21600', params: { freedNow: 150_000, atRisk: 0, countAfter: 112_144 } });
    expect(step(plan, 'delete-idle-entries').params).toMatchObject({ idleAtLeastSeconds: 21_600, expected: 150_000 });
    // With the goal out of reach at 1 d only because of those 40,000, counting them (the old
    // reading) would have proposed 1 d and promised 150,000 that the delete never removes.
    const oneDay = { ...table, establishedIdle: { ...table.establishedIdle, deletable: idleCounts({ 3600: 150_000, 7200: 150_000, 21_600: 150_000, 86_400: 150_000 }) } };
    expect(chooseEstablishedTimeout(saturatedFacts(), oneDay)).toMatchObject({ choice: { proposed: 86_400, freed: 150_000 } });
  });

  it('when no candidate reaches the goal, the largest timeout with the smallest-candidate relief wins', () => {
    const table = saturatedTable({
      establishedIdle: { timeoutUsed: 432_000, total: 250_000, idleAtLeast: idleCounts({ 3600: 30_000, 7200: 30_000, 21_600: 20_000, 86_400: 10_000 }) },
    });
    const decision = chooseEstablishedTimeout(saturatedFacts(), table);
    expect(decision).toEqual({
      choice: { current: 432_000, proposed: 7200, freed: 30_000, atRisk: 20_000, after: 232_144, goal: 131_072, reachesGoal: false, timeoutUsed: 432_000 },
    });
  });

  it('an active table (nothing idle >= 1 h) gets no timeout change, with the reason', () => {
    const table = saturatedTable({ establishedIdle: { timeoutUsed: 432_000, total: 200_000, idleAtLeast: idleCounts({ 300: 5000 }) } });
    const plan = planFor(saturatedFacts(), table);
    expect(plan.steps.some((s) => s.key === 'nf_conntrack_tcp_timeout_established' || s.kind === 'delete-idle-entries')).toBe(false);
    expect(plan.notes).toContain('ESTABLISHED timeout not changed: no ESTABLISHED entry is idle >= 1 h: the ESTABLISHED timeout is not what fills the table.');
  });

  it('without conntrack-tools the delete step is not writable and says why', () => {
    const plan = planFor(saturatedFacts({ hasConntrackTool: false }), saturatedTable());
    const d = step(plan, 'delete-idle-entries');
    expect(d.writable).toBe(false);
    expect(d.whereToChange).toContain('install conntrack-tools');
  });
});

describe('TIME_WAIT pile', () => {
  it('lowers TIME_WAIT to 30 s and estimates what stays', () => {
    const table = makeTable({
      entries: 250_000,
      states: { 'tcp TIME_WAIT': 100_000, 'tcp ESTABLISHED': 150_000 },
      establishedIdle: { timeoutUsed: 432_000, total: 150_000, idleAtLeast: idleCounts({}) },
    });
    const plan = planFor(makeFacts({ count: 250_000 }), table);
    const s = step(plan, 'tcp-timeout-time-wait');
    expect(s).toMatchObject({ key: 'nf_conntrack_tcp_timeout_time_wait', current: '120', proposed: '30', params: { expectedAfter: 25_000, freed: 75_000 } });
    expect(s.why).toContain('~833 closes/s');
    expect(stepOf(plan, 'persist-sysctl', 'persist-sysctl').params['content']).toContain('net.netfilter.nf_conntrack_tcp_timeout_time_wait = 30');
  });
});

describe('entries still on an older, longer timer (timeout lowered without a delete)', () => {
  it('is reported and explained; no blind delete is proposed for them', () => {
    const facts = saturatedFacts({ timeouts: { nf_conntrack_tcp_timeout_established: 3600 } });
    const table = saturatedTable({
      establishedIdle: { timeoutUsed: 3600, total: 200_000, idleAtLeast: idleCounts({ 300: 20_000, 600: 10_000, 1800: 5000 }), aboveTimeout: 150_000 },
    });
    const plan = planFor(facts, table);
    expect(plan.steps.some((s) => s.kind === 'delete-idle-entries')).toBe(false);
    expect(plan.notes).toContain('ESTABLISHED timeout not changed: the ESTABLISHED timeout is already 1 h.');
    expect(plan.notes).toContain(
      '150,000 ESTABLISHED entries still carry timers longer than the 1 h timeout (set before it was lowered); their idle time is unknown, so no delete is proposed for them: they have seen no packet since the change and expire on their old timers.',
    );
  });
});
