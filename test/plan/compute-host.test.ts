import { describe, expect, it } from 'vitest';
import { planSchema } from '../../src/core/model.js';
import { makeFacts, makeTable, saturatedFacts, saturatedTable } from '../support/facts-fixtures.js';
import { planFor, step, stepOf } from './plan-helpers.js';

describe('plan: saturated real host (max writable, memory-bounded)', () => {
  const plan = planFor(saturatedFacts(), saturatedTable(), { managementSource: '192.0.2.10', sshPort: 22 });

  it('is a valid Plan with steps in apply order', () => {
    expect(planSchema.parse(plan)).toEqual(plan);
    expect(plan.steps.map((s) => s.id)).toEqual([
      'conntrack-max',
      'tcp-timeout-established',
      'delete-idle-entries',
      'persist-sysctl',
      'notrack-management',
    ]);
  });

  it('doubles max from the observed need and states the memory it costs', () => {
    const s = step(plan, 'conntrack-max');
    expect(s).toMatchObject({ kind: 'sysctl', key: 'nf_conntrack_max', current: '262144', proposed: '524288', writable: true, optional: false });
    expect(s.whereToChange).toBeUndefined();
    expect(s.params).toMatchObject({
      value: 524_288,
      observedNeed: 262_144,
      target: 524_288,
      entryBytes: 320,
      bucketBytes: 8,
      tableBytes: 169_869_312,
      memoryBudgetBytes: 858_993_459,
      memoryCap: 2_621_440,
    });
    expect(s.why).toContain('the table has been full (drop 48,213, 3 "table full" lines): demand reached at least max 262,144');
    expect(s.why).toContain('524,288 x 320 B + 262,144 buckets x 8 B = 162.0 MiB (1.0% of MemTotal 16.0 GiB; cap 819.2 MiB)');
  });

  it('never shrinks buckets that already equal max (kernel default)', () => {
    expect(plan.steps.some((s) => s.kind === 'hashsize' || s.kind === 'persist-modprobe')).toBe(false);
    expect(plan.notes).toContain('Hash buckets stay at 262,144: already >= max/4 for 524,288 (buckets are never reduced).');
  });

  it('states the per-entry cost and the memory cap in the notes', () => {
    expect(plan.notes[0]).toBe(
      'Memory per entry: 320 B (the nf_conntrack object size in /proc/slabinfo) plus 8 B per hash bucket; the whole table is capped at 5.0% of MemTotal 16.0 GiB = 819.2 MiB. ' +
        'Conntrack extensions (NAT, accounting, timestamps) are allocated separately and add more per entry, which the cap leaves room for.',
    );
  });

  it('persists every sysctl it changes in the managed sysctl.d file', () => {
    const s = stepOf(plan, 'persist-sysctl', 'persist-sysctl');
    expect(s).toMatchObject({ kind: 'persist-sysctl', key: '/etc/sysctl.d/90-conntrack-ops.conf', current: '(absent)', writable: true });
    expect(s.params['content']).toBe(
      '# Managed by conntrack-ops: changes approved in chat. Edit through the bot.\n' +
        'net.netfilter.nf_conntrack_max = 524288\n' +
        'net.netfilter.nf_conntrack_tcp_timeout_established = 86400\n',
    );
    expect(s.why).toContain('/etc/modules-load.d/conntrack-ops.conf');
  });
});

describe('plan: buckets below max/4', () => {
  const facts = saturatedFacts({ buckets: 16_384, hashsize: 16_384, persistence: { modprobeFiles: [{ path: '/etc/modprobe.d/nf.conf', hashsize: 16_384 }], sysctlFiles: [{ path: '/etc/sysctl.d/80-ct.conf', keys: { 'net.netfilter.nf_conntrack_max': '262144' } }] } });
  const plan = planFor(facts, saturatedTable());

  it('raises buckets to max/4 of the new max and persists them in modprobe.d', () => {
    expect(step(plan, 'hashsize')).toMatchObject({
      kind: 'hashsize',
      current: '16384',
      proposed: '131072',
      writable: true,
      params: { value: 131_072, via: '/sys/module/nf_conntrack/parameters/hashsize' },
    });
    const modprobe = step(plan, 'persist-modprobe');
    expect(modprobe).toMatchObject({ key: '/etc/modprobe.d/conntrack-ops.conf', current: '(absent)', proposed: 'options nf_conntrack hashsize=131072\n' });
    expect(modprobe.why).toContain('/etc/modprobe.d/nf.conf (hashsize=16384), read after this file so it wins');
  });

  it('bucket memory counts against the cap', () => {
    expect(stepOf(plan, 'conntrack-max', 'sysctl').params['tableBytes']).toBe(524_288 * 320 + 131_072 * 8);
  });
});

describe('plan: healthy gateway', () => {
  const plan = planFor(makeFacts(), makeTable(), { managementSource: '192.0.2.10' });
  it('proposes nothing and says so', () => {
    expect(plan.steps).toEqual([]);
    expect(plan.notes).toEqual([
      'Nothing to change: no critical or warning finding.',
      'Management SSH is tracked; exempting it (NOTRACK) is offered when the table is under pressure.',
    ]);
  });
});

describe('plan: high but no drops', () => {
  it('raises max to 2x the count, rounded to a multiple of 65,536', () => {
    const plan = planFor(makeFacts({ count: 220_000 }), makeTable({ entries: 221_000 }));
    expect(step(plan, 'conntrack-max')).toMatchObject({ proposed: '458752', params: { observedNeed: 221_000, target: 458_752 } });
  });
});

describe('plan: old drops, table quiet now', () => {
  it('proposes nothing and says the drop counters are history', () => {
    const facts = makeFacts({ stats: { drop: 1200 } });
    const plan = planFor(facts, makeTable());
    expect(plan.steps).toEqual([]);
    expect(plan.notes[0]).toBe('No change proposed: the table is 4.6% full and was not full in the last hour; the findings are for follow-up.');
  });
});
