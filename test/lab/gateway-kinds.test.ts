/**
 * Pure parts of the lab's gateway kinds: the IPv6 address plan (inside 2001:2::/48, one /56
 * per slot) and which binaries hiding a tool means on this machine.
 */
import { describe, expect, it } from 'vitest';
import { hostPort } from '../../src/analysis/format.js';
import { hiddenDirs, hideScript } from '../../lab/hidden-tools.js';
import { planAddresses6 } from '../../lab/naming.js';

describe('IPv6 address plan', () => {
  it('gives each slot its own /56 of 2001:2::/48, a /64 per link', () => {
    const p = planAddresses6(5, 2, 3, 'nat66');
    expect(p.labPrefix).toBe('2001:2:0:500::/56');
    expect([p.externalAddress, p.serverAddress]).toEqual(['2001:2:0:500::1', '2001:2:0:500::2']);
    expect(p.clients.map((c) => [c.gatewayLan, ...c.ips])).toEqual([
      ['2001:2:0:501::1', '2001:2:0:501::2', '2001:2:0:501::3', '2001:2:0:501::4'],
      ['2001:2:0:502::1', '2001:2:0:502::2', '2001:2:0:502::3', '2001:2:0:502::4'],
    ]);
    expect(planAddresses6(254, 7, 29, 'routed').clients[6]?.ips[28]).toBe('2001:2:0:fe07::1e');
    expect(() => planAddresses6(0, 1, 1, 'routed')).toThrow(/out of range/);
  });

  it('writes an IPv6 destination with its port so the port can be told from the address', () => {
    expect(hostPort('2001:2:0:500::2', 7001)).toBe('[2001:2:0:500::2]:7001');
    expect(hostPort('198.19.5.2', 7001)).toBe('198.19.5.2:7001');
  });
});

describe('hidden tools', () => {
  it('hiding iptables covers every flavour in the real PATH directories, and nothing else', async () => {
    const dirs = await hiddenDirs(['iptables']);
    const names = dirs.flatMap((d) => d.names);
    for (const n of ['iptables', 'ip6tables', 'iptables-save', 'ip6tables-save', 'iptables-legacy-save', 'iptables-nft', 'xtables-nft-multi']) expect(names).toContain(n);
    for (const n of ['nft', 'conntrack', 'ip', 'sshd']) expect(names).not.toContain(n);
    // /sbin and /bin are links into /usr here: only real directories get an overlay.
    expect(dirs.every((d) => !['/sbin', '/bin'].includes(d.dir))).toBe(true);
    const script = hideScript('/tmp/lab-x', dirs).join('\n');
    expect(script).toContain("mknod '/tmp/lab-x/hide-0-upper/iptables' c 0 0");
    expect(script).toMatch(/mount -t overlay cto-lab-hide -o lowerdir='\/usr\/sbin',upperdir=/);
    expect(await hiddenDirs([])).toEqual([]);
  });
});
