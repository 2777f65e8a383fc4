/**
 * Fault: the bot's SSH key in an attacker's hands (defect 3). A real lab gateway, its sshd,
 * a non-root user `cto` whose only sudo entry is the shipped one (the helper). Each escape
 * the old sudoers allowed is tried AS THAT USER OVER REAL SSH, and each must be refused AND
 * have had no effect, read as root on the gateway: /etc/shadow's content never printed, the
 * kernel log not cleared, no file written or changed, the table not flushed, no value set.
 *
 * Figure: sudo escapes that succeed, out of N tried (must be 0).
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { conntrackCount, fillScenario, gatewayExec, labDown, labUp, sshExec, type Lab } from '../../lab/index.js';
import type { GatewayConfig } from '../../src/config/inventory.js';
import { commands } from '../../src/gateway/commands.js';
import { GatewaySession } from '../../src/gateway/ssh-session.js';
import { GATEWAY_SNAPSHOT_DIR, HELPER_PATH, REFUSED_EXIT } from '../../src/gateway/sudo-helper/policy.js';
import { addHelperSudoUser } from '../support/sudo-gateway-user.js';

const USER = 'cto';
const H = `sudo -n ${HELPER_PATH}`;
const EST = '/proc/sys/net/netfilter/nf_conntrack_tcp_timeout_established';

let lab: Lab;
let bot: GatewaySession;

/** What a root reader on the gateway sees: the state every escape must leave as it was. */
interface GatewayState {
  shadow: string;
  passwd: string;
  kernelLogLines: number;
  corePattern: string;
  established: string;
  max: string;
  sysctlD: string;
  modprobeD: string;
  snapshots: string;
  rawRules: string;
  entries: number;
}

function digest(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

/** Read as root: through the gateway's sshd (its mount namespace: lab /etc, /var/lib) and its netns. */
async function gatewayState(): Promise<GatewayState> {
  const files = await sshExec(
    lab,
    [
      'sha256sum /etc/shadow /etc/passwd | cut -c1-16',
      'cat /proc/sys/kernel/core_pattern',
      `cat ${EST} /proc/sys/net/netfilter/nf_conntrack_max`,
      'ls -la /etc/sysctl.d /etc/modprobe.d | sha256sum | cut -c1-16',
      `ls -la ${GATEWAY_SNAPSHOT_DIR} 2>/dev/null | sha256sum | cut -c1-16`,
      'dmesg | wc -l',
    ].join('; '),
  );
  const [shadow, passwd, corePattern, established, max, dirs, snapshots, kernelLogLines] = files.stdout.trim().split('\n');
  const raw = await gatewayExec(lab, ['iptables', '-t', 'raw', '-S']);
  return {
    shadow: shadow ?? '',
    passwd: passwd ?? '',
    corePattern: corePattern ?? '',
    established: established ?? '',
    max: max ?? '',
    sysctlD: dirs ?? '',
    modprobeD: dirs ?? '',
    snapshots: snapshots ?? '',
    kernelLogLines: Number(kernelLogLines),
    rawRules: digest(raw.stdout),
    entries: await conntrackCount(lab),
  };
}

interface Escape {
  name: string;
  /** Run by the bot user, as its login shell reads it. */
  line: string;
  stdin?: string;
}

const TUPLE_OK = '-D -p tcp -s 198.18.0.1 -d 198.18.0.2 --sport 40000 --dport 80 --state ESTABLISHED';
const ESCAPES: Escape[] = [
  // the old allow-list's raw commands: sudo takes nothing but the helper now
  { name: 'sudo dmesg -F /etc/shadow', line: 'sudo -n /usr/bin/dmesg -F /etc/shadow' },
  { name: 'sudo dmesg -C', line: 'sudo -n /usr/bin/dmesg -C' },
  { name: 'sudo dmesg (PATH lookup) -F /etc/shadow', line: 'sudo -n dmesg -F /etc/shadow' },
  { name: 'sudo tee nf_conntrack_max', line: 'sudo -n /usr/bin/tee /proc/sys/net/netfilter/nf_conntrack_tcp_timeout_established', stdin: '1\n' },
  { name: 'sudo tee + mv + sysctl -p', line: 'sudo -n /usr/bin/tee /etc/sysctl.d/.90-conntrack-ops.conf.tmp; sudo -n /usr/bin/mv -f /etc/sysctl.d/.90-conntrack-ops.conf.tmp /etc/sysctl.d/90-conntrack-ops.conf; sudo -n /usr/sbin/sysctl -p /etc/sysctl.d/90-conntrack-ops.conf', stdin: 'kernel.core_pattern=|/tmp/x\n' },
  { name: 'sudo tee into modprobe.d', line: 'sudo -n /usr/bin/tee /etc/modprobe.d/.conntrack-ops.conf.tmp', stdin: 'install nf_conntrack /bin/sh -c id\n' },
  { name: 'sudo conntrack -R - with -F', line: 'sudo -n /usr/sbin/conntrack -R -', stdin: '-F\n' },
  { name: 'sudo conntrack -F', line: 'sudo -n /usr/sbin/conntrack -F' },
  { name: 'sudo sh -c', line: 'sudo -n /bin/sh -c "cat /etc/shadow"' },
  { name: 'sudo -s', line: 'sudo -n -s cat /etc/shadow' },
  { name: 'sudo -e (sudoedit) of shadow', line: 'sudo -n -e /etc/shadow' },
  // the helper with arguments it must not take
  { name: 'helper kernel-log -F /etc/shadow', line: `${H} kernel-log -F /etc/shadow` },
  { name: 'helper kernel-log -C', line: `${H} kernel-log -C` },
  { name: 'helper dump -F', line: `${H} dump -F` },
  { name: 'helper stats -F /etc/shadow', line: `${H} stats -F /etc/shadow` },
  { name: 'helper slabinfo /etc/shadow', line: `${H} slabinfo /etc/shadow` },
  { name: 'helper ruleset with a shell command', line: `${H} ruleset 'nft; cat /etc/shadow'` },
  { name: 'helper writable /etc/shadow', line: `${H} writable ../../../../etc/shadow` },
  { name: 'helper unknown verb dmesg', line: `${H} dmesg -C` },
  // values and files
  { name: 'helper set nf_conntrack_max 2^31', line: `${H} set nf_conntrack_max 2147483648` },
  { name: 'helper set established timeout 2^31-1', line: `${H} set nf_conntrack_tcp_timeout_established 2147483647` },
  { name: 'helper set established timeout 0', line: `${H} set nf_conntrack_tcp_timeout_established 0` },
  { name: 'helper set kernel.core_pattern', line: `${H} set ../../kernel/core_pattern 1024` },
  { name: 'helper sysctl file kernel.core_pattern=|/tmp/x', line: `${H} prepare-file sysctl && ${H} write-file sysctl`, stdin: 'kernel.core_pattern=|/tmp/x\n' },
  { name: 'helper sysctl file: our key, then core_pattern', line: `${H} write-file sysctl`, stdin: 'net.netfilter.nf_conntrack_tcp_timeout_established = 3600\nkernel.core_pattern = |/tmp/x\n' },
  { name: 'helper modprobe file install directive', line: `${H} prepare-file modprobe && ${H} write-file modprobe`, stdin: 'install nf_conntrack /bin/sh -c "id > /tmp/pwned"\n' },
  { name: 'helper write a file that is not ours', line: `${H} write-file ../passwd`, stdin: 'x\n' },
  // deletes
  { name: 'helper conntrack-delete -F', line: `${H} conntrack-delete`, stdin: '-F\n' },
  { name: 'helper conntrack-delete -D without tuple', line: `${H} conntrack-delete`, stdin: '-D\n' },
  { name: 'helper conntrack-delete -D of a whole source', line: `${H} conntrack-delete`, stdin: '-D -s 198.18.1.2\n' },
  { name: 'helper conntrack-delete with shell metacharacters', line: `${H} conntrack-delete`, stdin: '-D -p tcp -s 198.18.0.1;cat /etc/shadow -d 198.18.0.2 --sport 40000 --dport 80 --state ESTABLISHED\n' },
  { name: 'helper conntrack-delete good line then -F', line: `${H} conntrack-delete`, stdin: `${TUPLE_OK}\n-F\n` },
  { name: 'helper conntrack-delete -I', line: `${H} conntrack-delete`, stdin: '-I -p tcp -s 198.18.0.1 -d 198.18.0.2 --sport 1 --dport 2 --state ESTABLISHED --timeout 9\n' },
  // rules
  { name: 'helper NOTRACK everything', line: `${H} iptables-notrack add ipv4 PREROUTING conntrack-ops:flow 0.0.0.0/0 0.0.0.0/0 - -` },
  { name: 'helper iptables flush-like shape', line: `${H} iptables-notrack add ipv4 PREROUTING conntrack-ops:mgmt-ssh -F - - 22` },
  { name: 'helper nft delete from another table', line: `${H} nft-delete-rule nat 1` },
  // the snapshot copy
  { name: 'helper snapshot-write ../../etc/passwd', line: `${H} snapshot-write ../../etc/passwd`, stdin: '{"a":1}\n' },
  { name: 'helper snapshot-read ../../etc/shadow', line: `${H} snapshot-read ../../../../etc/shadow` },
  { name: 'helper snapshot-remove ../../etc/passwd', line: `${H} snapshot-remove ../../../../etc/passwd` },
  { name: 'helper snapshot-write a shell line', line: `${H} snapshot-write plan-1234abcd`, stdin: 'root::0:0::/root:/bin/sh\n' },
];

beforeAll(async () => {
  lab = await labUp({ clients: 1, sourcesPerClient: 2 });
  await addHelperSudoUser(lab, USER);
  await fillScenario(lab, ['healthy', 'dead-established'], { dead: 200, established: 0 });
  const config: GatewayConfig = { ...lab.inventoryEntry, user: USER, sudo: true };
  bot = await GatewaySession.connect(lab.name, config);
}, 180_000);

afterAll(async () => {
  bot?.close();
  if (lab) await labDown(lab);
});

describe(`sudo escapes as the bot's user (${USER}) over real SSH`, () => {
  it(`refuses each of the ${ESCAPES.length} escapes, with no effect on the gateway`, async () => {
    const who = await bot.exec(commands.script('who (test)', 'id -un'));
    expect(who.stdout.trim()).toBe(USER);
    const shadowLine = (await sshExec(lab, `grep '^${USER}:' /etc/shadow`)).stdout.trim();
    expect(shadowLine.startsWith(`${USER}:`)).toBe(true);
    let before = await gatewayState();
    expect(before.kernelLogLines).toBeGreaterThan(0);
    expect(before.entries).toBeGreaterThanOrEqual(200);

    const succeeded: string[] = [];
    for (const e of ESCAPES) {
      const r = await bot.exec(commands.script(`escape: ${e.name} (test)`, e.line), { allowFailure: true, ...(e.stdin !== undefined ? { stdin: e.stdin } : {}) });
      const after = await gatewayState();
      const leaked = r.stdout.includes(`${USER}:`) || r.stdout.includes('root:') || r.stderr.includes('root:');
      // The kernel log is the machine's (other labs log into it) and the table gains the SSH
      // sessions' entries: "not cleared" and "not flushed" are read as "not shrunk to a fraction".
      const { kernelLogLines: logBefore, entries: entriesBefore, ...fixedBefore } = before;
      const { kernelLogLines: logAfter, entries: entriesAfter, ...fixedAfter } = after;
      const changed = JSON.stringify(fixedAfter) !== JSON.stringify(fixedBefore) || logAfter < logBefore * 0.5 || entriesAfter < entriesBefore * 0.9;
      if (r.code === 0 || leaked || changed) succeeded.push(`${e.name}: exit ${r.code}${leaked ? ', shadow printed' : ''}${changed ? `, changed ${JSON.stringify(before)} -> ${JSON.stringify(after)}` : ''}`);
      if (changed) before = after;
      // The helper's own refusals say so (exit 64); sudo's own refusals exit 1.
      if (e.line.startsWith(H) && !e.line.includes('&&')) expect(r.code, e.name).toBe(REFUSED_EXIT);
    }
    console.log(`sudo escapes that succeed: ${succeeded.length} of ${ESCAPES.length} tried`);
    expect(succeeded).toEqual([]);
  }, 300_000);

  it('while the helper still does its job for the same user (its read verbs answer)', async () => {
    const ping = await bot.exec(commands.script('helper ping (test)', `${H} ping`));
    expect(ping.stdout.trim()).toBe('ok');
    const stats = await bot.exec(commands.conntrackStats());
    expect(stats.stdout).toMatch(/cpu=0\s/);
  });
});
