/**
 * The sudoers allow-list for a gateway user that is not root, generated from the very
 * command templates the bot runs (so the list cannot drift from the code). Every
 * privileged operation of apply / verify / roll back is ONE command line with fixed
 * words; values travel on stdin (tee), so no wildcard is needed except the nft rule
 * handle (a sudoers regular expression, sudo >= 1.9.10).
 *
 * docs/sudoers.conntrack-ops is this output for placeholder values; test/apply checks
 * that it is current and that `visudo -c` accepts it.
 */
import { TIMEOUT_KEYS } from '../core/model.js';
import { MANAGED_FILES, NFT_CHAINS, NFT_TABLE } from '../core/managed.js';
import { addressFamily, managementRules } from '../core/notrack.js';
import { commands, type GatewayCommand } from '../gateway/commands.js';

/** Absolute paths on Debian/Ubuntu (usrmerge). Adjust for other distributions. */
export const BINARIES: Record<string, string> = {
  tee: '/usr/bin/tee',
  mkdir: '/usr/bin/mkdir',
  mv: '/usr/bin/mv',
  rm: '/usr/bin/rm',
  test: '/usr/bin/test',
  cat: '/usr/bin/cat',
  grep: '/usr/bin/grep',
  dmesg: '/usr/bin/dmesg',
  true: '/usr/bin/true',
  sysctl: '/usr/sbin/sysctl',
  conntrack: '/usr/sbin/conntrack',
  iptables: '/usr/sbin/iptables',
  ip6tables: '/usr/sbin/ip6tables',
  'iptables-save': '/usr/sbin/iptables-save',
  'ip6tables-save': '/usr/sbin/ip6tables-save',
  'iptables-legacy-save': '/usr/sbin/iptables-legacy-save',
  nft: '/usr/sbin/nft',
  ip: '/usr/sbin/ip',
};

/** Keys the bot may test and write. */
export const WRITABLE_KEYS = ['nf_conntrack_max', 'nf_conntrack_buckets', 'nf_conntrack_expect_max', ...TIMEOUT_KEYS];

/** Split a template's shell line into argv (our templates only quote with '...'). */
export function shellWords(line: string): string[] {
  const words: string[] = [];
  let cur = '';
  let inQuote = false;
  let has = false;
  for (const ch of line) {
    if (inQuote) {
      if (ch === "'") inQuote = false;
      else cur += ch;
    } else if (ch === "'") {
      inQuote = true;
      has = true;
    } else if (ch === ' ') {
      if (has || cur) words.push(cur);
      cur = '';
      has = false;
    } else {
      cur += ch;
    }
  }
  if (has || cur) words.push(cur);
  return words;
}

function escapeArg(arg: string): string {
  return arg.replace(/([\\,:=])/g, '\\$1');
}

/** One sudoers command spec for the first simple command of a template (before any `|`, `;`, `2>`). */
export function sudoersLine(cmd: GatewayCommand | string): string {
  const shell = typeof cmd === 'string' ? cmd : cmd.shell;
  const words = shellWords(shell);
  const stop = words.findIndex((w) => w === '|' || w === ';' || w.endsWith(';') || /^\d?>/.test(w));
  const argv = stop === -1 ? words : words.slice(0, stop);
  const [bin, ...args] = argv;
  const path = bin ? BINARIES[bin] : undefined;
  if (!bin || !path) throw new Error(`no absolute path known for "${bin ?? ''}" (${shell.slice(0, 60)})`);
  return [path, ...args.map(escapeArg)].join(' ');
}

export interface SudoersInput {
  user: string;
  managementSource: string;
  sshPort: number;
  family?: 'ipv4' | 'ipv6';
}

export function renderSudoers(input: SudoersInput): string {
  const family = input.family ?? addressFamily(input.managementSource) ?? 'ipv4';
  // The very rules a notrack-management step of this source and port adds.
  const mgmt = managementRules({ family, source: input.managementSource, port: input.sshPort });
  const groups: Array<[string, string, string[]]> = [
    [
      'CTO_READ',
      'check and verify: counters, table, kernel log, rulesets (read-only)',
      [
        sudoersLine(commands.conntrackStats()),
        sudoersLine('conntrack -L'),
        sudoersLine(commands.listEstablished()),
        sudoersLine(commands.tableFullLog()),
        sudoersLine('dmesg'),
        sudoersLine('cat /proc/net/nf_conntrack'),
        sudoersLine('cat /proc/net/ip_tables_names'),
        sudoersLine('cat /proc/slabinfo'),
        sudoersLine('iptables -V'),
        ...['iptables-save', 'ip6tables-save', 'iptables-legacy-save'].flatMap((b) => ['nat', 'raw'].map((t) => sudoersLine(`${b} -t ${t}`))),
        sudoersLine('nft -j list ruleset'),
        sudoersLine('nft list ruleset'),
        sudoersLine('ip -o addr'),
        sudoersLine('true'),
      ],
    ],
    [
      'CTO_TEST',
      'pre-flight: is a key writable here (the kernel answers for this namespace)',
      [...WRITABLE_KEYS.map((k) => sudoersLine(commands.testWritableSysctl(k))), sudoersLine(commands.testWritableHashsize())],
    ],
    [
      'CTO_SET',
      'apply / restore values: tee writes the value read from stdin',
      [...WRITABLE_KEYS.map((k) => sudoersLine(commands.setSysctl(k, 0).command)), sudoersLine(commands.writeHashsize(1024).command)],
    ],
    [
      'CTO_FILES',
      `persistence: ${MANAGED_FILES.sysctl}, ${MANAGED_FILES.modprobe} (temp file + rename), loaded with sysctl -p of that file only`,
      (['sysctl', 'modprobe'] as const).flatMap((w) => {
        const c = commands.writeManagedFile(w, '');
        return [sudoersLine(c.mkdir), sudoersLine(c.write.command), sudoersLine(c.install), sudoersLine(commands.removeManagedFile(w))];
      }).concat([sudoersLine(commands.loadSysctlFile())]),
    ],
    [
      'CTO_RULES',
      `NOTRACK for management SSH from ${input.managementSource} to port ${input.sshPort} (iptables raw, or the nft table ${NFT_TABLE})`,
      [
        ...mgmt.flatMap((r) => (['check', 'add', 'delete'] as const).map((op) => sudoersLine(commands.iptablesNotrack(op, r)))),
        sudoersLine(commands.nftListOurs()),
        sudoersLine(commands.nftAddTable()),
        ...NFT_CHAINS.map((c) => sudoersLine(commands.nftAddChain(c))),
        ...mgmt.map((r) => sudoersLine(commands.nftAddRule(r))),
        `${BINARIES['nft']} ^delete rule ${NFT_TABLE} (${NFT_CHAINS.join('|')}) handle [0-9]+$`,
        sudoersLine(commands.nftDeleteTable()),
      ],
    ],
    [
      'CTO_DELETE',
      'delete-idle-entries, slow path: batched "-D ... --state ESTABLISHED" lines on stdin',
      [sudoersLine(commands.conntrackLoadFile())],
    ],
  ];
  const out: string[] = [
    '# conntrack-ops: what the bot may run as root on this gateway, and nothing else.',
    '# Generated from src/gateway/commands.ts by src/apply/sudoers.ts (renderSudoers).',
    `# Install: visudo -f /etc/sudoers.d/conntrack-ops ; user ${input.user}, management source ${input.managementSource}, SSH port ${input.sshPort}.`,
    '# Values are written through tee from stdin, so no argument wildcard is needed (the nft',
    '# rule handle is a sudoers regular expression: sudo >= 1.9.10).',
    '#',
    '# Not covered (known limits): NOTRACK for heavy flows (notrack-flow) names addresses known only',
    '# at plan time: add their exact lines, or apply them as root. The fast netlink delete path',
    '# (python3) is used only by root sessions: a sudo user gets the slow conntrack -R path.',
    '',
  ];
  for (const [alias, comment, lines] of groups) {
    out.push(`# ${comment}`);
    out.push(`Cmnd_Alias ${alias} = \\\n    ${lines.join(', \\\n    ')}`);
    out.push('');
  }
  out.push(`Defaults:${input.user} !requiretty`);
  out.push(`${input.user} ALL=(root) NOPASSWD: ${groups.map((g) => g[0]).join(', ')}`);
  out.push('');
  return out.join('\n');
}

/** The values docs/sudoers.conntrack-ops is rendered with. */
export const DOC_EXAMPLE: SudoersInput = { user: 'conntrack-ops', managementSource: '198.51.100.10', sshPort: 22 };
