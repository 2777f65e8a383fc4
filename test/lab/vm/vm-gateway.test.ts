/**
 * The QEMU VM gateway, end to end: boot (TCG), SSH with the pinned host key, the kernel-wide
 * knobs that a network namespace cannot change (nf_conntrack_max, hashsize), the persistence
 * dirs, a saturated table (ASSURED entries, drops, "table full", new SSH refused), raising the
 * max ends the drops, a healthy table, and `lab vm down` from another process.
 *
 * One VM for the file (boot + every step is about 1 minute on an idle 2-core machine).
 * Set CTO_SKIP_VM_TESTS=1 (or CONNTRACK_OPS_SKIP_VM=1, which also skips the prerequisites) to skip.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import ssh2 from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify as stringifyYaml } from 'yaml';
import { parseInventory } from '../../../src/config/inventory.js';
import { vmUp, type VmGateway } from '../../../lab/vm/index.js';
import { REPO_ROOT } from '../../../lab/vm/paths.js';

const skip = process.env.CTO_SKIP_VM_TESTS === '1' || process.env.CONNTRACK_OPS_SKIP_VM === '1';
const timings: Record<string, number> = {};

async function timed<T>(label: string, fn: () => Promise<T>): Promise<T> {
  const t0 = Date.now();
  try {
    return await fn();
  } finally {
    timings[label] = Date.now() - t0;
  }
}

/** Processes whose command line mentions `needle` (QEMU carries its state dir in its args). */
function processesMentioning(needle: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmdline.includes(needle) && Number(entry) !== process.pid) pids.push(Number(entry));
    } catch {
      /* gone */
    }
  }
  return pids;
}

async function readNumber(vm: VmGateway, path: string): Promise<number> {
  return Number((await vm.run(`cat ${path}`)).trim());
}

const MAX = '/proc/sys/net/netfilter/nf_conntrack_max';
const COUNT = '/proc/sys/net/netfilter/nf_conntrack_count';
const HASHSIZE = '/sys/module/nf_conntrack/parameters/hashsize';
const BUCKETS = '/proc/sys/net/netfilter/nf_conntrack_buckets';

describe.skipIf(skip)('VM gateway (QEMU, TCG)', () => {
  let vm: VmGateway | undefined;
  const gw = (): VmGateway => {
    if (!vm) throw new Error('VM not up');
    return vm;
  };

  beforeAll(async () => {
    vm = await timed('vmUp', () => vmUp({ bootMax: 4096, hashsize: 1024, log: (l) => console.log(l) }));
    timings.boot = vm.state.bootMs;
  }, 300_000);

  afterAll(async () => {
    await vm?.down();
    console.log(`VM gateway timings (ms): ${JSON.stringify(timings)}`);
  }, 60_000);

  it("boots Debian's kernel and lets root in over SSH with the pinned host key", async () => {
    const v = gw();
    const fresh = await v.exec('uname -r; id -u; echo "$SSH_CONNECTION"', { newConnection: true });
    expect(fresh.code, fresh.stderr).toBe(0);
    const [kver, uid, conn] = fresh.stdout.trim().split('\n');
    expect(kver).toBe(v.state.kernel.kver);
    expect(kver).not.toBe((await execa('uname', ['-r'])).stdout.trim()); // a kernel of its own
    expect(uid).toBe('0');
    expect(conn?.split(' ')[0]).toBe(v.managementSource);

    // The inventory entry is what the bot gets: ssh2 with the pinned SHA256 fingerprint.
    const entry = v.inventoryEntry;
    expect(entry).toMatchObject({ host: '127.0.0.1', port: v.state.port, user: 'root', sudo: false });
    expect(entry.hostKey).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    const seen: string[] = [];
    const out = await new Promise<string>((resolve, reject) => {
      const c = new ssh2.Client();
      c.on('error', reject)
        .on('ready', () => {
          c.exec(`cat ${MAX}`, (err, stream) => {
            if (err) return reject(err);
            let text = '';
            stream.on('data', (d: Buffer) => (text += d.toString())).stderr.resume();
            stream.on('close', () => {
              c.end();
              resolve(text.trim());
            });
          });
        })
        .connect({
          host: entry.host,
          port: entry.port,
          username: entry.user,
          privateKey: readFileSync(entry.identityFile),
          readyTimeout: 20_000,
          hostVerifier: (key: Buffer) => {
            const fp = `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
            seen.push(fp);
            return fp === entry.hostKey;
          },
        });
    });
    expect(seen).toEqual([entry.hostKey]);
    expect(out).toBe('4096');

    // A wrong pin is refused.
    const dir = await mkdtemp(join(tmpdir(), 'cto-vm-test-'));
    try {
      await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'other')]);
      const otherPub = (await readFile(join(dir, 'other.pub'), 'utf8')).split(' ').slice(0, 2).join(' ');
      await writeFile(join(dir, 'known_hosts'), `[127.0.0.1]:${entry.port} ${otherPub}\n`);
      const args = v.sshArgs({ newConnection: true }).map((a) =>
        a.startsWith('UserKnownHostsFile=') ? `UserKnownHostsFile=${join(dir, 'known_hosts')}` : a,
      );
      const bad = await execa('ssh', [...args, 'true'], { reject: false });
      expect(bad.exitCode).toBe(255);
      expect(bad.stderr).toMatch(/host key|IDENTIFICATION HAS CHANGED|verification failed/i);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }

    // The entry round-trips through the inventory schema.
    const inv = parseInventory(stringifyYaml({ gateways: { [v.name]: entry } }));
    expect(inv.gateways[v.name]).toEqual(entry);
  });

  it('has a writable nf_conntrack_max and hashsize (the whole kernel is ours)', async () => {
    const v = gw();
    expect(await readNumber(v, MAX)).toBe(4096);
    expect(await readNumber(v, HASHSIZE)).toBe(1024);
    // procps sysctl, as the apply step runs it; read back (sysctl -w can exit 0 on failure).
    await v.run('sysctl -w net.netfilter.nf_conntrack_max=8192');
    expect(await readNumber(v, MAX)).toBe(8192);
    await v.run(`sh -c 'echo 2048 > ${HASHSIZE}'`);
    expect(await readNumber(v, HASHSIZE)).toBe(2048);
    expect(await readNumber(v, BUCKETS)).toBe(2048);
    // Back to the boot values for the fill below.
    await v.run(`sysctl -w net.netfilter.nf_conntrack_max=4096 && sh -c 'echo 1024 > ${HASHSIZE}'`);
    expect(await readNumber(v, MAX)).toBe(4096);
    expect(await readNumber(v, HASHSIZE)).toBe(1024);
  });

  it('has writable /etc/sysctl.d and /etc/modprobe.d, and `sysctl -p <file>` loads a file', async () => {
    const v = gw();
    const key = 'net.netfilter.nf_conntrack_udp_timeout_stream';
    const before = (await v.run(`sysctl -n ${key}`)).trim();
    await v.run(
      `sh -c 'mkdir -p /etc/sysctl.d && t=$(mktemp /etc/sysctl.d/90-cto-test.conf.XXXXXX) && cat > "$t" && mv -f "$t" /etc/sysctl.d/90-cto-test.conf'`,
      { input: `# test\n${key} = 151\nnet.netfilter.nf_conntrack_max = 4096\n` },
    );
    const loaded = await v.run('sysctl -p /etc/sysctl.d/90-cto-test.conf');
    expect(loaded).toContain(`${key} = 151`);
    expect((await v.run(`sysctl -n ${key}`)).trim()).toBe('151');
    await v.run(`sysctl -w ${key}=${before} && rm -f /etc/sysctl.d/90-cto-test.conf`);
    await v.run(`sh -c 'echo "options nf_conntrack hashsize=1024" > /etc/modprobe.d/cto-test.conf'`);
    expect((await v.run('cat /etc/modprobe.d/cto-test.conf')).trim()).toBe('options nf_conntrack hashsize=1024');
    await v.run('rm -f /etc/modprobe.d/cto-test.conf');
    // Both firewall front ends the apply step may use are there.
    expect(await v.run('iptables -t raw -S PREROUTING')).toContain('-P PREROUTING ACCEPT');
    expect((await v.exec('nft list tables')).code).toBe(0);
  });

  it('fill saturated: the table is full of ASSURED entries, new flows (and new SSH) are dropped', async () => {
    const v = gw();
    const r = await timed('fillSaturated', () => v.fill('saturated'));
    timings.fillSaturatedInVm = Math.round(r.fillSeconds * 1000);
    expect(r.max).toBe(4096);
    expect(r.count).toBe(r.max);
    expect(r.drop).toBeGreaterThan(r.dropBefore);
    expect(r.tableFullLines).toBeGreaterThan(r.tableFullLinesBefore);
    expect(r.probeSent).toBeGreaterThan(0);
    expect(r.probeReplied).toBe(0);
    expect(r.generatorRunning).toBe(true);

    const assured = Number((await v.run("conntrack -L 2>/dev/null | grep -c ASSURED || true")).trim());
    expect(assured).toBeGreaterThanOrEqual(r.max - 8); // a few slots: the SSH sessions' own entries
    expect(await v.run('dmesg')).toMatch(/nf_conntrack: .*table full/);

    // A full table of assured entries refuses new connections, the warm one keeps working.
    const fresh = await timed('newSshWhileFull', () => v.exec('true', { newConnection: true, connectTimeoutS: 5, timeoutMs: 30_000 }));
    expect(fresh.code).not.toBe(0);
    expect(await readNumber(v, COUNT)).toBe(4096);

    // The generator keeps retrying its unanswered flows: drops keep rising.
    await sleep(4000);
    const later = await v.status();
    expect(later.drop).toBeGreaterThan(r.drop);
  });

  it('raising nf_conntrack_max on the saturated gateway ends the drops', async () => {
    const v = gw();
    await v.run('sysctl -w net.netfilter.nf_conntrack_max=8192');
    expect(await readNumber(v, MAX)).toBe(8192);
    // The retried flows (every 3 s) now fit.
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline && (await readNumber(v, COUNT)) <= 4096 + 32) await sleep(1000);
    expect(await readNumber(v, COUNT)).toBeGreaterThan(4096 + 32);
    await sleep(1000);
    const a = await v.status();
    await sleep(4000);
    const b = await v.status();
    expect(b.drop).toBe(a.drop);
    const fresh = await v.exec('true', { newConnection: true, connectTimeoutS: 10 });
    expect(fresh.code, fresh.stderr).toBe(0);
    await v.run('sysctl -w net.netfilter.nf_conntrack_max=4096');
  });

  it('fill healthy: a quarter of the table, no new drops, new SSH works', async () => {
    const v = gw();
    const r = await timed('fillHealthy', () => v.fill('healthy'));
    expect(r.max).toBe(4096);
    expect(r.assured).toBe(1024);
    expect(r.count).toBeGreaterThanOrEqual(1024);
    expect(r.count).toBeLessThan(1024 + 64);
    await sleep(3000);
    const later = await v.status();
    expect(later.drop).toBe(r.drop);
    const fresh = await v.exec('true', { newConnection: true, connectTimeoutS: 10 });
    expect(fresh.code, fresh.stderr).toBe(0);
  });

  it('`lab vm down` from another process leaves no QEMU behind', async () => {
    const v = gw();
    const { qemuPid, stateDir, name } = v.state;
    expect(processesMentioning(stateDir)).toContain(qemuPid);
    const res = await timed('downFromCli', () =>
      execa('npx', ['tsx', join(REPO_ROOT, 'lab/main.ts'), 'vm', 'down', name], { reject: false, cwd: REPO_ROOT }),
    );
    expect(res.exitCode, res.stderr).toBe(0);
    expect(res.stdout).toContain(`vm ${name}: stopped`);
    expect(existsSync(`/proc/${qemuPid}`) && !readFileSync(`/proc/${qemuPid}/stat`, 'utf8').includes(') Z')).toBe(false);
    expect(processesMentioning(stateDir)).toEqual([]);
    expect(existsSync(stateDir)).toBe(false);
    await v.down(); // idempotent
    vm = undefined;
  });

  it('a VM that fails to come up is killed and leaves nothing behind', async () => {
    const name = `vm-fail-${process.pid}`;
    await expect(vmUp({ name, bootTimeoutMs: 300 })).rejects.toThrow(/not ready after 300 ms/);
    const dir = join(REPO_ROOT, '.vm', 'run', name);
    expect(existsSync(dir)).toBe(false);
    expect(processesMentioning(`cto-vm-${name}`)).toEqual([]);
  });
});
