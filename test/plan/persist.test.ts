import { describe, expect, it } from 'vitest';
import { makeFacts, makeTable } from '../support/facts-fixtures.js';
import { planFor, step, stepOf } from './plan-helpers.js';

describe('plan: runtime values not persistent', () => {
  const facts = makeFacts({
    max: 524_288,
    timeouts: { nf_conntrack_tcp_timeout_established: 3600 },
    persistence: { sysctlFiles: [{ path: '/etc/sysctl.d/99-conntrack.conf', keys: { 'net.netfilter.nf_conntrack_tcp_timeout_time_wait': '30' } }] },
  });
  const plan = planFor(facts, makeTable());

  it('persists the runtime values and flags the file that would override ours', () => {
    expect(plan.steps.map((s) => s.id)).toEqual(['persist-sysctl']);
    const s = stepOf(plan, 'persist-sysctl', 'persist-sysctl');
    expect(s.params['content']).toBe(
      '# Managed by conntrack-ops: changes approved in chat. Edit through the bot.\n' +
        'net.netfilter.nf_conntrack_max = 524288\n' +
        'net.netfilter.nf_conntrack_tcp_timeout_established = 3600\n' +
        'net.netfilter.nf_conntrack_tcp_timeout_time_wait = 120\n',
    );
    expect(s.params['conflicts']).toBe('/etc/sysctl.d/99-conntrack.conf sets nf_conntrack_tcp_timeout_time_wait = 30');
    expect(s.why).toContain('nf_conntrack_max 524288 is runtime-only (boot value 262144 from kernel default)');
    expect(s.why).toContain('remove those lines');
  });

  it('nothing to persist once our file holds the values', () => {
    const persisted = makeFacts({
      max: 524_288,
      persistence: { sysctlFiles: [{ path: '/etc/sysctl.d/90-conntrack-ops.conf', keys: { 'net.netfilter.nf_conntrack_max': '524288' } }] },
    });
    expect(planFor(persisted, makeTable()).steps).toEqual([]);
  });

  it('a resized hash table is persisted in modprobe.d', () => {
    const resized = makeFacts({
      max: 524_288,
      buckets: 524_288,
      persistence: { sysctlFiles: [{ path: '/etc/sysctl.d/90-conntrack-ops.conf', keys: { 'net.netfilter.nf_conntrack_max': '524288' } }] },
    });
    const p = planFor(resized, makeTable());
    expect(p.steps.map((s) => s.id)).toEqual(['persist-modprobe']);
    expect(step(p, 'persist-modprobe').proposed).toBe('options nf_conntrack hashsize=524288\n');
  });
});
