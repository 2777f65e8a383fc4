import { describe, expect, it } from 'vitest';
import { LAB_NETNS, NETNS_WRITABLE, saturatedFacts, saturatedTable, tableFull } from '../support/facts-fixtures.js';
import { planFor, step, stepOf } from './plan-helpers.js';

describe('plan: saturated inside a network namespace (max read-only)', () => {
  const facts = saturatedFacts({
    netnsInode: LAB_NETNS,
    writable: NETNS_WRITABLE,
    kernelLog: [tableFull('2025-01-15T11:59:00.000Z', LAB_NETNS)],
  });
  const plan = planFor(facts, saturatedTable());

  it('keeps the max step, not writable, and says where to change it', () => {
    const s = step(plan, 'conntrack-max');
    expect(s).toMatchObject({ current: '262144', proposed: '524288', writable: false });
    expect(s.whereToChange).toContain('the host (initial network namespace): `sysctl -w net.netfilter.nf_conntrack_max=524288`');
    expect(s.whereToChange).toContain('container runtimes cannot set it');
  });

  it('timeouts are per namespace: writable here', () => {
    expect(step(plan, 'tcp-timeout-established')).toMatchObject({ proposed: '86400', writable: true });
    expect(step(plan, 'delete-idle-entries')).toMatchObject({ writable: true, optional: true, params: { expected: 150_000 } });
  });

  it('does not write the host sysctl.d for namespace timeouts', () => {
    const s = stepOf(plan, 'persist-sysctl', 'persist-sysctl');
    expect(s.writable).toBe(false);
    expect(s.params['content']).toBe(
      '# Managed by conntrack-ops: changes approved in chat. Edit through the bot.\nnet.netfilter.nf_conntrack_tcp_timeout_established = 86400\n',
    );
    expect(s.whereToChange).toContain('ip netns exec <ns> sysctl -p');
    expect(plan.steps.some((x) => x.kind === 'persist-modprobe' || x.kind === 'hashsize')).toBe(false);
  });
});
