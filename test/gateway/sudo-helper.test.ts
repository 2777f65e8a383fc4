/**
 * The sudo helper's validation, run by the shells gateways have: dash and busybox ash (and
 * bash). The copy under test is rendered with `test.root` (every path under a scratch
 * directory, kernel-facing commands printed as `RUN argv` instead of run): the installed
 * helper has no such option, which the first case checks. Each refusal must exit 64 and
 * leave the scratch tree as it was; each accepted call must do exactly the expected thing.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { GATEWAY_SNAPSHOT_DIR, REFUSED_EXIT } from '../../src/gateway/sudo-helper/policy.js';
import { renderHelperScript } from '../../src/gateway/sudo-helper/script.js';
import { HELPER_VERBS } from '../../src/gateway/sudo-helper/invoke.js';

const scratch = mkdtempSync(join(tmpdir(), 'cto-helper-'));
const root = join(scratch, 'root');
const helperFile = join(scratch, 'helper.sh');
writeFileSync(helperFile, renderHelperScript({ test: { root } }));

function hasShell(argv: string[]): boolean {
  return spawnSync(argv[0] as string, [...argv.slice(1), '-c', 'exit 0']).status === 0;
}
const SHELLS: Array<[string, string[]]> = ([
  ['dash', ['dash']],
  ['busybox ash', ['busybox', 'sh']],
  ['bash', ['bash', '--posix']],
] as Array<[string, string[]]>).filter(([, argv]) => hasShell(argv));

const MAX = join(root, 'proc/sys/net/netfilter/nf_conntrack_max');

function resetRoot(): void {
  rmSync(root, { recursive: true, force: true });
  mkdirSync(join(root, 'proc/sys/net/netfilter'), { recursive: true });
  mkdirSync(join(root, 'etc'), { recursive: true });
  mkdirSync(join(root, 'tmp'), { recursive: true });
  writeFileSync(MAX, '262144\n');
  writeFileSync(join(root, 'shadow'), 'root:SECRET:1:0:99999:7:::\n');
}

/** Every file under root with its content (what "no effect" compares). */
function tree(dir = root, prefix = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) Object.assign(out, tree(p, `${prefix}${name}/`), { [`${prefix}${name}/`]: 'dir' });
    else out[`${prefix}${name}`] = readFileSync(p, 'utf8');
  }
  return out;
}

function helper(shell: string[], args: string[], stdin = ''): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(shell[0] as string, [...shell.slice(1), helperFile, ...args], { input: stdin, encoding: 'utf8', timeout: 20_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const tuple = '-D -p tcp -s 198.18.0.1 -d 198.18.0.2 --sport 40000 --dport 80 --state ESTABLISHED';

/** Refused: exit 64, a "refused" line, and nothing under root changed. */
const REFUSED: Array<[string, string[], string?]> = [
  ['no verb', []],
  ['unknown verb', ['sh']],
  ['dmesg flags on the read verb', ['kernel-log', '-F', '/etc/shadow']],
  ['dmesg -C on the read verb', ['kernel-log', '-C']],
  ['extra argument to a table read', ['dump', '-F']],
  ['a ruleset that is not ours', ['ruleset', 'filter']],
  ['a key outside the list', ['set', 'kernel.core_pattern', '1024']],
  ['path in a key', ['set', '../../../shadow', '1024']],
  ['nf_conntrack_max = 2^31', ['set', 'nf_conntrack_max', '2147483648']],
  ['nf_conntrack_max above the bound', ['set', 'nf_conntrack_max', '67108865']],
  ['nf_conntrack_max with a sign', ['set', 'nf_conntrack_max', '-1']],
  ['a timeout of 0', ['set', 'nf_conntrack_tcp_timeout_established', '0']],
  ['a value with a shell metacharacter', ['set', 'nf_conntrack_max', '1024;id']],
  ['hashsize too small', ['set-hashsize', '1']],
  ['sysctl file: kernel.core_pattern', ['write-file', 'sysctl'], 'kernel.core_pattern=|/tmp/x\n'],
  ['sysctl file: our key, any value', ['write-file', 'sysctl'], 'net.netfilter.nf_conntrack_max = 2147483648\n'],
  ['sysctl file: a good line then a bad one', ['write-file', 'sysctl'], 'net.netfilter.nf_conntrack_max = 524288\nkernel.modprobe = /tmp/x\n'],
  ['modprobe file: install directive', ['write-file', 'modprobe'], 'install nf_conntrack /bin/sh -c "id > /tmp/pwned"\n'],
  ['modprobe file: another module', ['write-file', 'modprobe'], 'options nf_nat hashsize=4096\n'],
  ['a managed file that is not ours', ['write-file', 'passwd'], 'root::0:0::/root:/bin/sh\n'],
  ['conntrack -F on stdin', ['conntrack-delete'], '-F\n'],
  ['-D without a tuple', ['conntrack-delete'], '-D\n'],
  ['-D of a whole source', ['conntrack-delete'], '-D -s 198.18.0.1\n'],
  ['shell metacharacters in a tuple', ['conntrack-delete'], '-D -p tcp -s 198.18.0.1;id -d 198.18.0.2 --sport 40000 --dport 80 --state ESTABLISHED\n'],
  ['a good line then -F', ['conntrack-delete'], `${tuple}\n-F\n`],
  ['an empty batch', ['conntrack-delete'], ''],
  ['a NUL byte hidden in a tuple', ['conntrack-delete'], `${tuple}\0 -F\n`],
  ['a last line without its newline', ['conntrack-delete'], tuple],
  ['more delete input than the bound', ['conntrack-delete'], `${tuple}\n`.repeat(20_000)],
  ['sysctl file with a NUL byte', ['write-file', 'sysctl'], 'net.netfilter.nf_conntrack_max = 524288\0\nkernel.x = 1\n'],
  ['sysctl file larger than the bound', ['write-file', 'sysctl'], `# ${'x'.repeat(20_000)}\n`],
  ['iptables rule of another shape', ['iptables-notrack', 'add', 'ipv4', 'PREROUTING', 'conntrack-ops:mgmt-ssh', '198.18.0.1', '198.18.0.2', '-', '22']],
  ['iptables rule in another table spelled as chain', ['iptables-notrack', 'add', 'ipv4', 'FORWARD', 'conntrack-ops:flow', '198.18.0.1', '198.18.0.2', '-', '-']],
  ['iptables rule with a foreign tag', ['iptables-notrack', 'add', 'ipv4', 'PREROUTING', 'other', '198.18.0.1', '-', '-', '22']],
  ['nft rule with an address that is not one', ['nft-add-rule', 'ipv4', 'PREROUTING', 'conntrack-ops:mgmt-ssh', '198.18.0.256', '-', '-', '22']],
  ['a flow NOTRACK of everything', ['iptables-notrack', 'add', 'ipv4', 'PREROUTING', 'conntrack-ops:flow', '0.0.0.0/0', '0.0.0.0/0', '-', '-']],
  ['a management NOTRACK of a /8', ['nft-add-rule', 'ipv4', 'PREROUTING', 'conntrack-ops:mgmt-ssh', '10.0.0.0/8', '-', '-', '22']],
  ['nft delete in another table', ['nft-delete-rule', 'filter', '3']],
  ['nft delete of handle 0', ['nft-delete-rule', 'output', '0']],
  ['snapshot path traversal', ['snapshot-write', '../../etc/passwd'], '{"a":1}\n'],
  ['snapshot read traversal', ['snapshot-read', '../../shadow']],
  ['snapshot remove traversal', ['snapshot-remove', '../../../shadow']],
  ['snapshot that is not one JSON line', ['snapshot-write', 'plan-1234abcd'], '{"a":1}\n{"b":2}\n'],
  ['snapshot with a control character', ['snapshot-write', 'plan-1234abcd'], '{"a":"\u001b[2J"}\n'],
  ['snapshot larger than the bound', ['snapshot-write', 'plan-1234abcd'], `{"a":"${'x'.repeat(262_144)}"}\n`],
];

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('the installed helper', () => {
  it('has no test switch: fixed root, commands run', () => {
    const text = renderHelperScript();
    expect(text).toContain("R=''\n");
    expect(text).toContain('x() { "$@"; }');
    expect(text).not.toContain('RUN');
  });

  it('has exactly the verbs the command templates call it with', () => {
    const text = renderHelperScript();
    const body = text.slice(text.indexOf('case $verb in'));
    const cases = [...body.matchAll(/^  ([a-z-]+)\)/gm)].map((m) => m[1]);
    expect(cases.sort()).toEqual([...HELPER_VERBS].sort());
  });

  it('parses under every shell here', () => {
    for (const [, argv] of SHELLS) execFileSync(argv[0] as string, [...argv.slice(1), '-n', helperFile]);
  });
});

for (const [name, shell] of SHELLS) {
  describe(`the helper under ${name}`, () => {
    beforeEach(resetRoot);

    it.each(REFUSED)('refuses %s, with no effect', (_what, args, stdin) => {
      const before = tree();
      const r = helper(shell, args, stdin ?? '');
      expect(r.code).toBe(REFUSED_EXIT);
      expect(r.stderr).toMatch(/^conntrack-ops-helper: refused: /);
      expect(r.stdout).not.toMatch(/RUN|SECRET/);
      expect(tree()).toEqual(before);
    });

    it('sets an allowed key within bounds (through tee, the honest exit status)', () => {
      const r = helper(shell, ['set', 'nf_conntrack_max', '524288']);
      expect(r.code).toBe(0);
      expect(helper(shell, ['set-hashsize', '65536']).code).toBe(0);
    });

    it('writes, installs and loads a valid sysctl file; a valid modprobe file', () => {
      const text = '# managed by conntrack-ops, plan p\nnet.netfilter.nf_conntrack_max = 524288\nnet.netfilter.nf_conntrack_tcp_timeout_established = 86400\n';
      expect(helper(shell, ['prepare-file', 'sysctl']).code).toBe(0);
      expect(helper(shell, ['write-file', 'sysctl'], text).code).toBe(0);
      expect(helper(shell, ['install-file', 'sysctl']).code).toBe(0);
      const file = join(root, 'etc/sysctl.d/90-conntrack-ops.conf');
      expect(readFileSync(file, 'utf8')).toBe(text);
      expect(statSync(file).mode & 0o777).toBe(0o644);
      expect(helper(shell, ['load-sysctl']).stdout).toBe(`RUN sysctl -p ${file}\n`);
      expect(helper(shell, ['prepare-file', 'modprobe']).code).toBe(0);
      expect(helper(shell, ['write-file', 'modprobe'], '# m\noptions nf_conntrack hashsize=131072\n').code).toBe(0);
      expect(helper(shell, ['install-file', 'modprobe']).code).toBe(0);
      expect(helper(shell, ['remove-file', 'modprobe']).code).toBe(0);
      expect(existsSync(join(root, 'etc/modprobe.d/conntrack-ops.conf'))).toBe(false);
    });

    it('refuses to install or load a file that was changed behind its back', () => {
      mkdirSync(join(root, 'etc/sysctl.d'), { recursive: true });
      writeFileSync(join(root, 'etc/sysctl.d/.90-conntrack-ops.conf.tmp'), 'kernel.core_pattern = |/tmp/x\n');
      expect(helper(shell, ['install-file', 'sysctl']).code).toBe(REFUSED_EXIT);
      writeFileSync(join(root, 'etc/sysctl.d/90-conntrack-ops.conf'), 'kernel.core_pattern = |/tmp/x\n');
      const r = helper(shell, ['load-sysctl']);
      expect(r.code).toBe(REFUSED_EXIT);
      expect(r.stdout).toBe('');
    });

    it('dumps the table from /proc/net/nf_conntrack when it gives a line, else with conntrack -L (as TABLE_DUMP_COMMAND)', () => {
      const proc = join(root, 'proc/net/nf_conntrack');
      mkdirSync(join(root, 'proc/net'), { recursive: true });
      writeFileSync(proc, 'ipv4     2 udp      17 27 src=198.18.0.1 dst=198.18.0.2 sport=1 dport=2 [UNREPLIED] src=198.18.0.2 dst=198.18.0.1 sport=2 dport=1 mark=0 zone=0 use=2\n');
      expect(helper(shell, ['dump'])).toMatchObject({ code: 0, stdout: `RUN cat ${proc}\n` });
      // empty (a namespace with no entries, or a masked file) or missing: the tool, where there is one
      const fallback = spawnSync('sh', ['-c', 'command -v conntrack']).status === 0 ? 'RUN conntrack -L\n' : `RUN cat ${proc}\n`;
      writeFileSync(proc, '');
      expect(helper(shell, ['dump'])).toMatchObject({ code: 0, stdout: fallback });
      rmSync(proc);
      expect(helper(shell, ['dump'])).toMatchObject({ code: 0, stdout: fallback });
    });

    it('passes exact tuples (with a zone, IPv6) to conntrack -R', () => {
      const lines = `${tuple}\n${tuple} -w 7\n-D -p tcp -s 2001:db8::1 -d 2001:db8::2 --sport 1 --dport 65535 --state ESTABLISHED\n`;
      const r = helper(shell, ['conntrack-delete'], lines);
      expect(r.code).toBe(0);
      expect(r.stdout).toBe('RUN conntrack -R -\n');
    });

    it('builds the NOTRACK rules the bot uses, word for word', () => {
      expect(helper(shell, ['iptables-notrack', 'check', 'ipv4', 'OUTPUT', 'conntrack-ops:mgmt-ssh', '-', '198.51.100.10', '22', '-']).stdout).toBe(
        'RUN iptables -t raw -C OUTPUT -d 198.51.100.10 -p tcp --sport 22 -m comment --comment conntrack-ops:mgmt-ssh -j CT --notrack\n',
      );
      expect(helper(shell, ['nft-add-rule', 'ipv4', 'PREROUTING', 'conntrack-ops:flow', '10.1.2.3', '10.9.0.20', '-', '-']).stdout).toBe(
        'RUN nft add rule inet conntrack_ops prerouting ip saddr 10.1.2.3 ip daddr 10.9.0.20 notrack comment "conntrack-ops:flow"\n',
      );
      expect(helper(shell, ['iptables-notrack', 'delete', 'ipv6', 'PREROUTING', 'conntrack-ops:mgmt-ssh', '2001:db8:1::/48', '-', '-', '2222']).stdout).toBe(
        'RUN ip6tables -t raw -D PREROUTING -s 2001:db8:1::/48 -p tcp --dport 2222 -m comment --comment conntrack-ops:mgmt-ssh -j CT --notrack\n',
      );
      expect(helper(shell, ['nft-delete-rule', 'output', '12']).stdout).toBe('RUN nft delete rule inet conntrack_ops output handle 12\n');
    });

    it('keeps a snapshot copy root-only under its fixed directory, reads and removes it', () => {
      const dir = join(root, GATEWAY_SNAPSHOT_DIR);
      expect(helper(shell, ['snapshot-write', 'plan-1234abcd'], '{"version":1}\n').code).toBe(0);
      expect(statSync(dir).mode & 0o777).toBe(0o700);
      expect(statSync(join(dir, 'plan-1234abcd.json')).mode & 0o777).toBe(0o600);
      expect(helper(shell, ['snapshot-read', 'plan-1234abcd']).stdout).toBe('{"version":1}\n');
      expect(helper(shell, ['snapshot-remove', 'plan-1234abcd']).code).toBe(0);
      expect(helper(shell, ['snapshot-read', 'plan-1234abcd']).code).toBe(3);
      expect(readdirSync(dir)).toEqual([]);
    });
  });
}
