/**
 * Lab lifecycle on real network namespaces (root): up, SSH with the pinned host key, the
 * gateway's own mount namespace, the host namespace untouched, concurrent labs, down, and
 * down after a crash.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatewayConfigSchema, loadInventory } from '../../src/config/inventory.js';
import { HOST_NETNS, netnsGuard, nsRun, run } from '../../lab/exec.js';
import { fingerprintOf } from '../../lab/ssh.js';
import { stateRoot } from '../../lab/state.js';
import { fillScenario, gatewayExec, labDown, labDownAll, labTableSummary, labUp, listLabs, sshExec, type Lab } from '../../lab/index.js';

const hostIpForward = () => readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim();

async function netnsList(): Promise<string[]> {
  return (await run('ip', ['netns', 'list'])).stdout.split('\n').map((l) => l.split(' ')[0] ?? '').filter(Boolean);
}
async function hostLinks(): Promise<string[]> {
  return [...(await run('ip', ['-o', 'link', 'show'])).stdout.matchAll(/^\d+:\s+([^:@\s]+)/gm)].map((m) => m[1]!);
}
async function labPids(lab: Lab): Promise<number[]> {
  const out: number[] = [];
  for (const ns of [lab.namespaces.gateway, lab.namespaces.server, ...lab.namespaces.clients]) {
    const r = await run('ip', ['netns', 'pids', ns], { check: false });
    out.push(...r.stdout.split(/\s+/).filter(Boolean).map(Number));
  }
  return out;
}
const alive = (pid: number) => existsSync(`/proc/${pid}`) && !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');

/** Nothing of lab `name` is left: namespaces, host link, state dir, processes. */
async function expectGone(name: string, pids: number[]): Promise<void> {
  expect((await netnsList()).filter((n) => n.startsWith(`${name}-`))).toEqual([]);
  expect((await hostLinks()).filter((l) => l.startsWith(`${name}-`))).toEqual([]);
  expect(existsSync(join(stateRoot(), name))).toBe(false);
  expect(existsSync(join(stateRoot(), `.fill-${name}.lock`))).toBe(false);
  expect(pids.filter(alive)).toEqual([]);
  expect((await listLabs(name)).filter((l) => l.name === name)).toEqual([]);
}

describe('lab lifecycle', () => {
  let lab: Lab | undefined;
  const ipForwardBefore = hostIpForward();
  const modprobeBefore = existsSync('/etc/modprobe.d');
  let sysctlDirBefore: string[] = [];
  let tmp = '';

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'cto-lab-test-'));
    sysctlDirBefore = existsSync('/etc/sysctl.d') ? (await readdir('/etc/sysctl.d')).sort() : [];
    lab = await labUp({ clients: 2, sourcesPerClient: 3 });
  });

  afterAll(async () => {
    if (lab) await labDown(lab);
    await rm(tmp, { recursive: true, force: true });
  });

  it('produces a valid inventory entry (pinned host key as ssh-keygen -lf prints it)', async () => {
    const l = lab!;
    const entry = gatewayConfigSchema.parse(l.inventoryEntry);
    expect(entry).toMatchObject({ host: l.mgmt.gatewayAddress, port: 22, user: 'root' });
    const fp = (await run('ssh-keygen', ['-lf', join(l.dir, 'ssh_host_ed25519_key.pub')])).stdout.split(/\s+/)[1];
    expect(entry.hostKey).toBe(fp);
    expect(fingerprintOf(l.ssh!.hostKeyLine)).toBe(fp);
    const file = join(tmp, 'inventory.yaml');
    await l.writeInventory(file);
    await l.writeInventory(file, { gatewayName: 'second' }); // merges
    const inv = await loadInventory(file);
    expect(Object.keys(inv.gateways).sort()).toEqual([l.name, 'second'].sort());
    expect(inv.gateways[l.name]?.hostKey).toBe(fp);
    for (const ip of [...l.clientIps, l.serverAddress, l.externalAddress, l.mgmt.hostAddress, l.mgmt.gatewayAddress]) {
      expect(ip).toMatch(/^198\.1[89]\./);
    }
  });

  it('accepts SSH with the lab key and the pinned host key, into the gateway namespace', async () => {
    const l = lab!;
    const r = await sshExec(l, 'readlink /proc/self/ns/net; cat /proc/sys/net/ipv4/ip_forward; id -u');
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual([`net:[${l.gatewayNetnsInode}]`, '1', '0']);

    // A different pinned key must be refused (StrictHostKeyChecking=yes).
    const wrong = join(tmp, 'wrong_known_hosts');
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(tmp, 'other')]);
    const otherPub = (await readFile(join(tmp, 'other.pub'), 'utf8')).split(' ').slice(0, 2).join(' ');
    await writeFile(wrong, `${l.mgmt.gatewayAddress} ${otherPub}\n`);
    const bad = await run(
      'ssh',
      ['-F', '/dev/null', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${wrong}`, '-o', 'IdentitiesOnly=yes', '-i', l.inventoryEntry.identityFile, `root@${l.mgmt.gatewayAddress}`, 'true'],
      { check: false },
    );
    expect(bad.exitCode).not.toBe(0);
    expect(bad.stderr).toMatch(/host key/i);
  });

  it('matches the pinned fingerprint over ssh2 too', async () => {
    const l = lab!;
    const seen = await new Promise<string>((resolve, reject) => {
      const c = new Client();
      let fp = '';
      c.on('ready', () => {
        c.end();
        resolve(fp);
      });
      c.on('error', reject);
      c.connect({
        host: l.inventoryEntry.host,
        port: l.inventoryEntry.port,
        username: 'root',
        privateKey: readFileSync(l.inventoryEntry.identityFile),
        readyTimeout: 10_000,
        hostVerifier: (key: Buffer) => {
          fp = `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
          return fp === l.inventoryEntry.hostKey;
        },
      });
    });
    expect(seen).toBe(l.inventoryEntry.hostKey);
  });

  it('gives the gateway lab-owned /etc/sysctl.d and /etc/modprobe.d that never reach the host', async () => {
    const l = lab!;
    const file = `99-cto-lab-test-${l.name}.conf`;
    const r = await sshExec(
      l,
      [
        `echo 'net.netfilter.nf_conntrack_tcp_timeout_established = 3600' > /etc/sysctl.d/${file}`,
        `echo 'options nf_conntrack hashsize=65536' > /etc/modprobe.d/${file}`,
        'test -d /run/sshd && echo run-sshd',
        'ls /etc/sysctl.d',
        'sysctl -p /etc/sysctl.d/' + file,
        'cat /proc/sys/net/netfilter/nf_conntrack_tcp_timeout_established',
        '(echo 1 > /proc/sys/kernel/printk_ratelimit) 2>/dev/null && echo kernel-writable || echo kernel-readonly',
      ].join('; '),
    );
    expect(r.exitCode, r.stderr).toBe(0);
    const out = r.stdout.split('\n');
    expect(out).toContain('run-sshd');
    expect(out).toContain(file);
    expect(out).toContain('3600');
    expect(out).toContain('kernel-readonly');
    // In the lab's directories, not in the host's /etc.
    expect(existsSync(join(l.dir, 'sysctl.d', file))).toBe(true);
    expect(existsSync(join(l.dir, 'modprobe.d', file))).toBe(true);
    expect(existsSync(join('/etc/sysctl.d', file))).toBe(false);
    expect(existsSync('/etc/sysctl.d') ? (await readdir('/etc/sysctl.d')).sort() : []).toEqual(sysctlDirBefore);
    expect(existsSync('/etc/modprobe.d')).toBe(modprobeBefore);
    if (modprobeBefore) expect(existsSync(join('/etc/modprobe.d', file))).toBe(false);
    // The timeout changed in the gateway namespace only.
    expect(readFileSync('/proc/sys/net/netfilter/nf_conntrack_tcp_timeout_established', 'utf8').trim()).not.toBe('3600');
    await gatewayExec(l, ['sysctl', '-qw', 'net.netfilter.nf_conntrack_tcp_timeout_established=432000']);
  });

  it('touches the initial namespace only with one veth end and its address', async () => {
    const l = lab!;
    expect(hostIpForward()).toBe(ipForwardBefore);
    const links = (await hostLinks()).filter((x) => x.startsWith(`${l.name}-`));
    expect(links).toEqual([l.mgmt.link]);
    const addrs = (await run('ip', ['-o', 'addr', 'show', 'dev', l.mgmt.link])).stdout.trim().split('\n');
    expect(addrs).toHaveLength(1);
    expect(addrs[0]).toContain(`inet ${l.mgmt.hostAddress}/30`);
    // The guard refuses to run outside a lab namespace.
    const inode = l.gatewayNetnsInode!;
    const inHost = await run('sh', ['-c', `${netnsGuard(inode)}; echo ran`], { check: false });
    expect(inHost.exitCode).toBe(97);
    expect(inHost.stdout).not.toContain('ran');
    await expect(nsRun('not-a-lab', ['true'])).rejects.toThrow(/non-lab/);
    const inside = await nsRun(l.namespaces.gateway, ['readlink', '/proc/self/ns/net']);
    expect(inside.stdout.trim()).toBe(`net:[${inode}]`);
    expect(inside.stdout.trim()).not.toBe(HOST_NETNS);
  });

  it('runs labs concurrently on distinct subnets, with iptables or nft MASQUERADE', async () => {
    const [a, b] = await Promise.all([labUp({ firewall: 'nft', clients: 1, sourcesPerClient: 2 }), labUp({ firewall: 'iptables', clients: 1, sourcesPerClient: 2 })]);
    try {
      expect(a.slot).not.toBe(b.slot);
      expect(a.slot).not.toBe(lab!.slot);
      const rules = await gatewayExec(a, ['nft', 'list', 'table', 'ip', 'nat']);
      expect(rules.stdout).toMatch(/oifname "wan0" masquerade/);
      const [ra, rb] = await Promise.all([
        fillScenario(a, 'healthy', { healthy: { udp: 100, unreplied: 10, established: 20, timewait: 20 } }),
        fillScenario(b, 'healthy', { healthy: { udp: 100, unreplied: 10, established: 20, timewait: 20 } }),
      ]);
      for (const [l, r] of [[a, ra], [b, rb]] as const) {
        expect(r.after.count).toBeGreaterThanOrEqual(140);
        const s = await labTableSummary(l);
        expect(s.natAddresses[0]?.[0]).toBe(l.externalAddress);
      }
    } finally {
      await Promise.all([labDown(a), labDown(b)]);
    }
  });

  it('labDown removes namespaces, veth, processes and state, and is idempotent', async () => {
    const l = await labUp({ clients: 1, sourcesPerClient: 1 });
    const pids = await labPids(l);
    expect(pids.length).toBeGreaterThanOrEqual(3); // sshd, udp echo, tcp responder
    const res = await labDown(l);
    expect(res.namespaces.sort()).toEqual([l.namespaces.gateway, l.namespaces.server, ...l.namespaces.clients].sort());
    await expectGone(l.name, pids);
    const again = await labDown(l.name);
    expect(again.namespaces).toEqual([]);
  });

  it('cleans up after a process that crashed during labUp or during a fill', async () => {
    const child = fileURLToPath(new URL('./fixtures/crash-child.ts', import.meta.url));
    const tsx = fileURLToPath(new URL('../../node_modules/tsx/dist/esm/index.mjs', import.meta.url));
    const suffix = Math.random().toString(36).slice(2, 7);
    const names = [`cto-cu${suffix}`, `cto-cf${suffix}`];
    try {
      const [duringUp, duringFill] = await Promise.all([
        run(process.execPath, ['--import', tsx, child, names[0]!, 'during-up', '20'], { check: false, timeoutMs: 60_000 }),
        run(process.execPath, ['--import', tsx, child, names[1]!, 'during-fill', '1500'], { check: false, timeoutMs: 90_000 }),
      ]);
      expect(duringUp.exitCode).not.toBe(0); // SIGKILLed
      expect(duringUp.stdout).not.toContain('UP');
      expect(duringFill.stdout).toContain('UP');
      expect(duringFill.stdout).not.toContain('FILLED');
      for (const name of names) {
        const pids: number[] = [];
        const left = (await netnsList()).filter((n) => n.startsWith(`${name}-`));
        expect(left.length, `${name} left namespaces behind`).toBeGreaterThan(0);
        for (const ns of left) {
          const r = await run('ip', ['netns', 'pids', ns], { check: false });
          pids.push(...r.stdout.split(/\s+/).filter(Boolean).map(Number));
        }
        if (name === names[1]) {
          // An orphan (its creator is dead): the sweep takes it. Scoped to this lab's name.
          expect(pids.length).toBeGreaterThan(0);
          const swept = await labDownAll(name, { onlyOrphans: true });
          expect(swept.map((r) => r.name)).toEqual([name]);
        } else {
          await labDown(name);
        }
        await expectGone(name, pids);
      }
    } finally {
      for (const name of names) await labDown(name).catch(() => {});
    }
  });

  it('labDownAll with onlyOrphans keeps a live lab', async () => {
    const res = await labDownAll(lab!.name, { onlyOrphans: true });
    expect(res).toEqual([]);
    expect((await netnsList()).includes(lab!.namespaces.gateway)).toBe(true);
  });
});
