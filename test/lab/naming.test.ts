import { describe, expect, it } from 'vitest';
import { labOfResource, normalizeLabName, planAddresses, slotsTouchedBy } from '../../lab/naming.js';

describe('lab naming and addressing', () => {
  it('derives every resource from the lab name', () => {
    expect(labOfResource('cto-ab12cd-gw')).toBe('cto-ab12cd');
    expect(labOfResource('cto-ab12cd-c3')).toBe('cto-ab12cd');
    expect(labOfResource('cto-ab12cd-m')).toBe('cto-ab12cd');
    expect(labOfResource('cto-ab12cd-srv')).toBe('cto-ab12cd');
    expect(labOfResource('cto-fixture-24745-c')).toBeNull();
    expect(labOfResource('eth0')).toBeNull();
    expect(normalizeLabName('demo')).toBe('cto-demo');
    expect(() => normalizeLabName('cto-Bad_Name')).toThrow();
    expect(`${normalizeLabName('abcdefgh')}-m`.length).toBeLessThanOrEqual(15);
  });

  it('keeps every address in 198.18.0.0/15 and inside the slot', () => {
    const p = planAddresses('cto-x', 42, 7, 29);
    const all = [p.mgmt.hostAddress, p.mgmt.gatewayAddress, p.externalAddress, p.serverAddress, ...p.clients.flatMap((c) => [c.gatewayLan, ...c.ips])];
    for (const ip of all) expect(ip).toMatch(/^198\.1[89]\.42\.\d+$/);
    expect(new Set(all).size).toBe(all.length);
    expect(p.clients[6]!.ips.at(-1)).toBe('198.18.42.254');
  });

  it('finds the slots an address or route touches', () => {
    expect(slotsTouchedBy('198.18.7.1/30')).toEqual([7]);
    expect(slotsTouchedBy('198.19.9.0/24')).toEqual([9]);
    expect(slotsTouchedBy('10.0.0.0/8')).toEqual([]);
    expect(slotsTouchedBy('198.18.0.0/15')).toHaveLength(256);
  });
});
