import { describe, expect, it } from 'vitest';
import { makeTable, saturatedFacts, saturatedTable } from '../support/facts-fixtures.js';
import { planFor, step, stepOf } from './plan-helpers.js';

describe('notrack-management', () => {
  it('nft backend gets nft rules in the bot-owned inet table', () => {
    const plan = planFor(saturatedFacts({ firewallBackend: 'nft' }), saturatedTable(), { managementSource: '192.0.2.10', sshPort: 2222 });
    const s = stepOf(plan, 'notrack-management', 'notrack-management');
    expect(s).toMatchObject({ kind: 'notrack-management', optional: true, writable: true });
    expect(s.proposed).toBe(
      'nft add rule inet conntrack_ops prerouting ip saddr 192.0.2.10 tcp dport 2222 notrack comment "conntrack-ops:mgmt-ssh"\n' +
        'nft add rule inet conntrack_ops output ip daddr 192.0.2.10 tcp sport 2222 notrack comment "conntrack-ops:mgmt-ssh"',
    );
    expect(s.params).toMatchObject({ backend: 'nft', family: 'ipv4', source: '192.0.2.10', port: 2222, table: 'inet conntrack_ops' });
    expect(String(s.params['setup'])).toContain('type filter hook prerouting priority raw;');
    expect(s.why).toContain('not NATed');
    expect(s.why).toContain('`ct state untracked accept`');
  });

  it('iptables with an IPv6 management source uses ip6tables', () => {
    const plan = planFor(saturatedFacts(), saturatedTable(), { managementSource: '2001:db8::10' });
    expect(stepOf(plan, 'notrack-management', 'notrack-management').params['ruleIn']).toBe(
      'ip6tables -t raw -I PREROUTING -s 2001:db8::10 -p tcp --dport 22 -m comment --comment conntrack-ops:mgmt-ssh -j CT --notrack',
    );
  });

  it('unknown or malformed management source: no step, a note', () => {
    const unknown = planFor(saturatedFacts(), saturatedTable());
    expect(unknown.steps.some((s) => s.kind === 'notrack-management')).toBe(false);
    expect(unknown.notes.some((n) => n.includes('management source address is unknown'))).toBe(true);
    const bad = planFor(saturatedFacts(), saturatedTable(), { managementSource: '10.0.0.1; reboot' });
    expect(bad.steps.some((s) => s.kind === 'notrack-management')).toBe(false);
    expect(bad.notes).toContain('managementSource "10.0.0.1; reboot" is not an IP address or prefix: NOTRACK for management SSH not proposed.');
  });
});

describe('notrack-flow: only for heavy flows that are not NATed', () => {
  const base = {
    entries: 262_144,
    topSources: [{ key: '10.1.2.3', count: 150_000 }],
  };

  it('routed internal flow (no NAT) gets NOTRACK both ways, arriving and local', () => {
    const table = saturatedTable({
      ...base,
      sourceProfiles: [{ source: '10.1.2.3', count: 150_000, states: { 'tcp ESTABLISHED': 150_000 }, topDestinations: [{ key: '10.9.0.20', count: 140_000 }], natted: 0 }],
    });
    const plan = planFor(saturatedFacts({ firewallBackend: 'nft' }), table);
    const s = step(plan, 'notrack-flow-1');
    expect(s).toMatchObject({ kind: 'notrack-flow', optional: true, current: 'tracked: 140000 entries' });
    expect(s.proposed.split('\n')).toEqual([
      'nft add rule inet conntrack_ops prerouting ip saddr 10.1.2.3 ip daddr 10.9.0.20 notrack comment "conntrack-ops:flow"',
      'nft add rule inet conntrack_ops prerouting ip saddr 10.9.0.20 ip daddr 10.1.2.3 notrack comment "conntrack-ops:flow"',
      'nft add rule inet conntrack_ops output ip saddr 10.1.2.3 ip daddr 10.9.0.20 notrack comment "conntrack-ops:flow"',
      'nft add rule inet conntrack_ops output ip saddr 10.9.0.20 ip daddr 10.1.2.3 notrack comment "conntrack-ops:flow"',
    ]);
  });

  it('NATed heavy hitter: never NOTRACK, say why', () => {
    const table = saturatedTable({
      ...base,
      sourceProfiles: [{ source: '10.1.2.3', count: 150_000, states: { 'tcp SYN_SENT': 150_000 }, topDestinations: [{ key: '203.0.113.50', count: 150_000 }], natted: 149_000 }],
    });
    const plan = planFor(saturatedFacts(), table);
    expect(plan.steps.some((s) => s.kind === 'notrack-flow')).toBe(false);
    expect(plan.notes).toContain(
      'Heavy hitter 10.1.2.3: 149,000 of 150,000 entries are NATed; NOTRACK would bypass NAT and break them, so it is not proposed. Fix the source instead.',
    );
  });

  it('cannot tell (no per-source breakdown): no step, a note', () => {
    const plan = planFor(saturatedFacts(), makeTable({ ...base }));
    expect(plan.steps.some((s) => s.kind === 'notrack-flow')).toBe(false);
    expect(plan.notes).toContain("Cannot tell whether heavy hitter 10.1.2.3's traffic is NATed (no per-source breakdown): NOTRACK not proposed for it.");
  });
});

describe('notrack-flow: partial profiles are not trusted', () => {
  it('a profile covering < 90% of the source is "cannot tell"', () => {
    const table = saturatedTable({
      entries: 262_144,
      topSources: [{ key: '10.1.2.3', count: 150_000 }],
      sourceProfiles: [{ source: '10.1.2.3', count: 100_000, states: {}, topDestinations: [{ key: '10.9.0.20', count: 100_000 }], natted: 0 }],
    });
    const plan = planFor(saturatedFacts(), table);
    expect(plan.steps.some((s) => s.kind === 'notrack-flow')).toBe(false);
    expect(plan.notes).toContain(
      'Heavy hitter 10.1.2.3: its profile covers only 100,000 of 150,000 entries, too few to be sure none is NATed: NOTRACK not proposed.',
    );
  });
});
