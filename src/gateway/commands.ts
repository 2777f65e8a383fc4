/**
 * Fixed command templates: the only way to build something the SSH session runs.
 * Parameters are typed and validated (zod) and rendered by the template itself;
 * no free text from a user ever reaches a shell.
 */
import { z } from 'zod';
import { HASHSIZE_PATH, MANAGED_FILES, NFT_CHAINS, NFT_TABLE, type ManagedFile, type NftChain } from '../core/managed.js';
import { hashsizeValueSchema, netfilterKeySchema } from '../core/model.js';
import { notrackRuleSchema, portSchema, type NotrackRule } from '../core/notrack.js';
import { helperLine } from './sudo-helper/invoke.js';
import { GATEWAY_SNAPSHOT_DIR, planIdSchema, SNAPSHOT_RETENTION_DAYS } from './sudo-helper/policy.js';

declare const commandBrand: unique symbol;

export interface GatewayCommand {
  /** Short human label for progress, logs and errors. */
  readonly label: string;
  /** The exact shell line run on the gateway. */
  readonly shell: string;
  /** Needs root: a session whose user is not root runs `sudoShell` instead. */
  readonly privileged: boolean;
  /**
   * The line a sudo session runs instead of `shell`: the same operation through the root-owned
   * helper (`sudo -n <helper> <verb> <args>`, gateway/sudo-helper). Null: not privileged, or
   * root sessions only (refused under sudo).
   */
  readonly sudoShell: string | null;
  /** `exec` stops reading (and ends the command) past this many stdout bytes. */
  readonly maxOutputBytes: number;
  readonly [commandBrand]: true;
}

/**
 * What one collected command may print. The largest honest output is the facts script on a
 * gateway with a big firewall (iptables-save of ~50k rules is ~5 MB); the table dump and the
 * idle-entry listing are streamed, never collected.
 */
export const DEFAULT_MAX_OUTPUT_BYTES = 16 * 1024 * 1024;

/** How a command runs when the session is not root. */
type Privilege = { kind: 'none' } | { kind: 'helper'; line: string } | { kind: 'root-only' };
const UNPRIVILEGED: Privilege = { kind: 'none' };
const ROOT_ONLY: Privilege = { kind: 'root-only' };
function viaHelper(line: string): Privilege {
  return { kind: 'helper', line };
}

function command(label: string, shell: string, privilege: Privilege, maxOutputBytes = DEFAULT_MAX_OUTPUT_BYTES): GatewayCommand {
  return {
    label,
    shell,
    privileged: privilege.kind !== 'none',
    sudoShell: privilege.kind === 'helper' ? privilege.line : null,
    maxOutputBytes,
  } as GatewayCommand;
}

/** The helper's rule arguments: family chain tag saddr daddr sport dport ('-' for none). */
function helperRuleArgs(r: NotrackRule): Array<string | number | undefined> {
  return [r.family, r.chain, r.tag, r.saddr, r.daddr, r.sport, r.dport];
}

export const ipSchema = z.union([z.ipv4(), z.ipv6()]);
const nonNegativeInt = z.number().int().min(0).max(2 ** 31 - 1);

/** A command whose input travels on stdin (the value never appears on the command line). */
export interface StdinCommand {
  readonly command: GatewayCommand;
  readonly stdin: string;
}

/** Temp file a managed file is written to before the rename. */
export function managedTempPath(which: ManagedFile): string {
  const path = MANAGED_FILES[which];
  const slash = path.lastIndexOf('/');
  return `${path.slice(0, slash)}/.${path.slice(slash + 1)}.tmp`;
}

/** Managed file contents: printable text lines only, bounded. */
const managedContentSchema = z
  .string()
  .max(16_384)
  .regex(/^[\x20-\x7e\n]*$/, 'managed file content must be printable ASCII lines');

function iptablesMatch(r: NotrackRule): string {
  const parts: string[] = [r.chain];
  if (r.saddr) parts.push('-s', r.saddr);
  if (r.daddr) parts.push('-d', r.daddr);
  if (r.proto) parts.push('-p', r.proto);
  if (r.sport !== undefined) parts.push('--sport', String(r.sport));
  if (r.dport !== undefined) parts.push('--dport', String(r.dport));
  parts.push('-m', 'comment', '--comment', r.tag, '-j', 'CT', '--notrack');
  return parts.join(' ');
}

/** The nft chain of a rule (the lower-case twin of its iptables chain). */
export function nftChainOf(r: NotrackRule): NftChain {
  return r.chain === 'PREROUTING' ? 'prerouting' : 'output';
}

/** nft rule body (after `nft add rule inet conntrack_ops <chain>`); the comment is quoted for nft. */
export function nftRuleBody(r: NotrackRule): string {
  const ip = r.family === 'ipv4' ? 'ip' : 'ip6';
  const parts: string[] = [];
  if (r.saddr) parts.push(ip, 'saddr', r.saddr);
  if (r.daddr) parts.push(ip, 'daddr', r.daddr);
  if (r.proto && r.sport !== undefined) parts.push(r.proto, 'sport', String(r.sport));
  if (r.proto && r.dport !== undefined) parts.push(r.proto, 'dport', String(r.dport));
  parts.push('notrack', 'comment', `"${r.tag}"`);
  return parts.join(' ');
}

/** Fields a conntrack entry is deleted by (exact tuple of the original direction). */
export const entryTupleSchema = z.object({
  proto: z.literal(6),
  src: ipSchema,
  dst: ipSchema,
  sport: portSchema,
  dport: portSchema,
  /** Conntrack id (`-o id`): the netlink delete only removes the very entry that was listed. */
  id: z.number().int().min(0).max(2 ** 32 - 1).nullable(),
  zone: z.number().int().min(0).max(65535).nullable(),
});
export type EntryTuple = z.infer<typeof entryTupleSchema>;

export const commands = {
  /** Read-only: one `sh` script printing all facts (see diagnostics/facts-script.ts). */
  script(label: string, script: string): GatewayCommand {
    // Scripts are module constants; the label documents which one in logs.
    return command(label, script, UNPRIVILEGED);
  },

  readSysctl(key: string): GatewayCommand {
    const k = netfilterKeySchema.parse(key);
    return command(`read ${k}`, `cat /proc/sys/net/netfilter/${k}`, UNPRIVILEGED);
  },

  writeSysctl(key: string, value: number): GatewayCommand {
    const k = netfilterKeySchema.parse(key);
    const v = nonNegativeInt.parse(value);
    return command(`sysctl -w ${k}=${v}`, `sysctl -w net.netfilter.${k}=${v}`, viaHelper(helperLine('set', k, v)));
  },

  readHashsize(): GatewayCommand {
    return command('read hashsize', `cat ${HASHSIZE_PATH}`, UNPRIVILEGED);
  },

  /**
   * Set the hash size: `tee <parameter>` with the value on stdin (one allow-listable
   * command line; tee's exit status is honest, unlike `sysctl -w`). Read it back.
   */
  writeHashsize(value: number): StdinCommand {
    const v = hashsizeValueSchema.parse(value);
    return { command: command(`hashsize=${v}`, `tee ${HASHSIZE_PATH}`, viaHelper(helperLine('set-hashsize', v))), stdin: `${v}\n` };
  },

  /** Print a managed file, or a marker when it does not exist. */
  readManagedFile(which: ManagedFile): GatewayCommand {
    const path = MANAGED_FILES[which];
    return command(`read ${path}`, `if [ -e ${path} ]; then echo __EXISTS__; cat ${path}; else echo __ABSENT__; fi`, UNPRIVILEGED);
  },

  /**
   * Write a managed file atomically, as three commands run in order (under sudo the helper's
   * prepare-file, write-file, install-file, which check every line of the content):
   * `mkdir -p <dir>`, `tee <dir>/.<name>.tmp` (content on stdin; the name does not end
   * in .conf, so neither sysctl nor modprobe reads a half-written file), `mv -f` onto the
   * final path (rename is atomic within the directory).
   */
  writeManagedFile(which: ManagedFile, content: string): { mkdir: GatewayCommand; write: StdinCommand; install: GatewayCommand } {
    const path = MANAGED_FILES[which];
    const dir = path.slice(0, path.lastIndexOf('/'));
    const tmp = managedTempPath(which);
    const text = managedContentSchema.parse(content);
    return {
      mkdir: command(`mkdir -p ${dir}`, `mkdir -p ${dir}`, viaHelper(helperLine('prepare-file', which))),
      // Under sudo the helper checks every line (only our keys within bounds; only the hashsize option).
      write: { command: command(`write ${tmp}`, `tee ${tmp}`, viaHelper(helperLine('write-file', which))), stdin: text },
      install: command(`install ${path}`, `mv -f ${tmp} ${path}`, viaHelper(helperLine('install-file', which))),
    };
  },

  removeManagedFile(which: ManagedFile): GatewayCommand {
    const path = MANAGED_FILES[which];
    return command(`remove ${path}`, `rm -f ${path}`, viaHelper(helperLine('remove-file', which)));
  },

  /** Load only our sysctl file, never `sysctl --system` (that re-applies unrelated settings). */
  loadSysctlFile(): GatewayCommand {
    return command(`sysctl -p ${MANAGED_FILES.sysctl}`, `sysctl -p ${MANAGED_FILES.sysctl}`, viaHelper(helperLine('load-sysctl')));
  },

  countEntries(): GatewayCommand {
    return command('count entries', 'cat /proc/sys/net/netfilter/nf_conntrack_count', UNPRIVILEGED);
  },

  conntrackStats(): GatewayCommand {
    return command('conntrack -S', 'conntrack -S', viaHelper(helperLine('stats')));
  },

  // ------------------------------------------------------------------ apply / roll back
  // Every privileged command below is ONE command line with fixed words (values on
  // stdin or validated numbers/addresses); a sudo session runs the helper verb that does
  // the same operation (gateway/sudo-helper), the only sudo entry docs/sudoers.conntrack-ops allows.

  /** Whether root may write a netfilter sysctl here (read-only in a non-initial netns for max/buckets/expect_max). */
  testWritableSysctl(key: string): GatewayCommand {
    const k = netfilterKeySchema.parse(key);
    return command(`test -w ${k}`, `test -w /proc/sys/net/netfilter/${k}`, viaHelper(helperLine('writable', k)));
  },

  testWritableHashsize(): GatewayCommand {
    return command('test -w hashsize', `test -w ${HASHSIZE_PATH}`, viaHelper(helperLine('writable', 'hashsize')));
  },

  /**
   * Set a netfilter sysctl by writing its /proc/sys file with `tee` (value on stdin).
   * Unlike `sysctl -w`, whose exit status is 0 even on "Invalid argument", tee fails
   * when the kernel refuses the write. The value is read back either way.
   */
  setSysctl(key: string, value: number): StdinCommand {
    const k = netfilterKeySchema.parse(key);
    const v = nonNegativeInt.parse(value);
    return { command: command(`set ${k}=${v}`, `tee /proc/sys/net/netfilter/${k}`, viaHelper(helperLine('set', k, v))), stdin: `${v}\n` };
  },

  /** Read-only state for the apply pre-flight and verify: every netfilter value, memory, slab size, netns. */
  readApplyState(): GatewayCommand {
    return command(
      'read apply state',
      [
        // A non-root user's PATH has no sbin: the tools are looked for where Debian puts them.
        'PATH="$PATH:/usr/sbin:/sbin"',
        'cd /proc/sys/net/netfilter 2>/dev/null && for f in nf_conntrack_*; do [ -f "$f" ] && printf "sysctl %s %s\\n" "$f" "$(cat "$f" 2>/dev/null | tr -s "\\t " " ")"; done',
        `printf "hashsize %s\\n" "$(cat ${HASHSIZE_PATH} 2>/dev/null)"`,
        'awk \'/^(MemTotal|MemAvailable):/ {print "mem", $1, $2}\' /proc/meminfo',
        'awk \'$1 == "nf_conntrack" {print "slab", $4}\' /proc/slabinfo 2>/dev/null',
        'printf "netns %s\\n" "$(readlink /proc/self/ns/net 2>/dev/null)"',
        'printf "conntrack-tool %s\\n" "$(command -v conntrack >/dev/null 2>&1 && echo yes || echo no)"',
        'printf "python3 %s\\n" "$(command -v python3 >/dev/null 2>&1 && echo yes || echo no)"',
        'printf "iptables %s\\n" "$(command -v iptables >/dev/null 2>&1 && echo yes || echo no)"',
        'printf "nft %s\\n" "$(command -v nft >/dev/null 2>&1 && echo yes || echo no)"',
        'printf "now %s\\n" "$(date +%s)"',
        'true',
      ].join('; '),
      UNPRIVILEGED,
    );
  },

  /** Kernel log lines about a full table (for the verify: new lines since the apply). */
  tableFullLog(): GatewayCommand {
    const filter = '| grep -E "nf_conntrack: .*table full" | tail -n 200; true';
    return command(
      'kernel log: table full',
      `dmesg --time-format iso 2>/dev/null ${filter}`,
      viaHelper(`${helperLine('kernel-log')} 2>/dev/null ${filter}`),
    );
  },

  /** The same where dmesg has no --time-format (busybox): the kernel's own [seconds] stamps. */
  tableFullLogPlain(): GatewayCommand {
    const filter = '| grep -E "nf_conntrack: .*table full" | tail -n 200; true';
    // Under sudo the helper's kernel-log picks --time-format iso or plain dmesg itself.
    return command('kernel log: table full (plain dmesg)', `dmesg 2>/dev/null ${filter}`, viaHelper(`${helperLine('kernel-log')} 2>/dev/null ${filter}`));
  },

  /** The kernel's counters where conntrack-tools is not installed (per CPU, hex; world-readable). */
  readProcStat(): GatewayCommand {
    return command('read /proc/net/stat/nf_conntrack', 'cat /proc/net/stat/nf_conntrack', UNPRIVILEGED);
  },

  /** iptables / ip6tables raw-table NOTRACK rule: check (exit 1 when absent), insert, delete. */
  iptablesNotrack(op: 'check' | 'add' | 'delete', rule: NotrackRule): GatewayCommand {
    const r = notrackRuleSchema.parse(rule);
    const bin = r.family === 'ipv4' ? 'iptables' : 'ip6tables';
    const flag = { check: '-C', add: '-I', delete: '-D' }[op];
    return command(`${bin} raw ${op} ${r.chain} ${r.tag}`, `${bin} -t raw ${flag} ${iptablesMatch(r)}`, viaHelper(helperLine('iptables-notrack', op, ...helperRuleArgs(r))));
  },

  /** nft: list our table with handles (exit 1 when it does not exist). */
  nftListOurs(): GatewayCommand {
    return command('nft list conntrack_ops', `nft -a list table ${NFT_TABLE}`, viaHelper(helperLine('nft-list')));
  },

  nftAddTable(): GatewayCommand {
    return command('nft add table conntrack_ops', `nft add table ${NFT_TABLE}`, viaHelper(helperLine('nft-add-table')));
  },

  nftAddChain(chain: NftChain): GatewayCommand {
    const c = z.enum(NFT_CHAINS).parse(chain);
    return command(
      `nft add chain ${c}`,
      `nft add chain ${NFT_TABLE} ${c} '{ type filter hook ${c} priority raw; policy accept; }'`,
      viaHelper(helperLine('nft-add-chain', c)),
    );
  },

  nftAddRule(rule: NotrackRule): GatewayCommand {
    const r = notrackRuleSchema.parse(rule);
    return command(
      `nft add rule ${nftChainOf(r)} ${r.tag}`,
      `nft add rule ${NFT_TABLE} ${nftChainOf(r)} '${nftRuleBody(r)}'`,
      viaHelper(helperLine('nft-add-rule', ...helperRuleArgs(r))),
    );
  },

  nftDeleteRule(chain: NftChain, handle: number): GatewayCommand {
    const c = z.enum(NFT_CHAINS).parse(chain);
    const h = z.number().int().min(1).max(2 ** 31 - 1).parse(handle);
    return command(`nft delete rule ${c} handle ${h}`, `nft delete rule ${NFT_TABLE} ${c} handle ${h}`, viaHelper(helperLine('nft-delete-rule', c, h)));
  },

  nftDeleteTable(): GatewayCommand {
    return command('nft delete table conntrack_ops', `nft delete table ${NFT_TABLE}`, viaHelper(helperLine('nft-delete-table')));
  },

  /** ESTABLISHED TCP entries with their conntrack id (the delete-idle step selects from these). */
  listEstablished(): GatewayCommand {
    return command('conntrack -L tcp ESTABLISHED', 'conntrack -L -p tcp --state ESTABLISHED -o id', viaHelper(helperLine('list-established')));
  },

  /**
   * Batched deletes read from stdin (`-D -p tcp -s .. -d .. --sport .. --dport .. --state ESTABLISHED [-w zone]`
   * lines). conntrack-tools 1.4.7 accepts -D in --load-file, but each line is a full table dump
   * filtered in user space (0.04-0.8 s per line at 150-200k entries measured): the slow path.
   */
  conntrackLoadFile(): GatewayCommand {
    return command('conntrack -R - (batched -D)', 'conntrack -R -', viaHelper(helperLine('conntrack-delete')));
  },

  // ------------------------------------------------------------------ the snapshot's gateway copy
  // <dir>/<planId>.json, root only (dir 0700, file 0600), one line of JSON; written before the
  // first change of an apply, read by a roll back when Redis lost its copy (apply/gateway-snapshot.ts).

  writeGatewaySnapshot(planId: string): GatewayCommand {
    const id = planIdSchema.parse(planId);
    const dir = GATEWAY_SNAPSHOT_DIR;
    const tmp = `${dir}/.${id}.json.tmp`;
    return command(
      `write snapshot copy ${id}`,
      `umask 077 && mkdir -p ${dir} && chmod 0700 ${dir} ${dir.slice(0, dir.lastIndexOf('/'))} && ` +
        `{ find ${dir} -type f -name '*.json' -mtime +${SNAPSHOT_RETENTION_DAYS} -exec rm -f {} \\; ; true; } && cat > ${tmp} && mv -f ${tmp} ${dir}/${id}.json`,
      viaHelper(helperLine('snapshot-write', id)),
    );
  },

  /** Prints the copy; exit 3 when there is none. */
  readGatewaySnapshot(planId: string): GatewayCommand {
    const id = planIdSchema.parse(planId);
    const file = `${GATEWAY_SNAPSHOT_DIR}/${id}.json`;
    return command(`read snapshot copy ${id}`, `if [ -f ${file} ]; then cat ${file}; else exit 3; fi`, viaHelper(helperLine('snapshot-read', id)));
  },

  removeGatewaySnapshot(planId: string): GatewayCommand {
    const id = planIdSchema.parse(planId);
    return command(`remove snapshot copy ${id}`, `rm -f ${GATEWAY_SNAPSHOT_DIR}/${id}.json`, viaHelper(helperLine('snapshot-remove', id)));
  },

  /**
   * Fast path: a fixed Python script that sends one IPCTNL_MSG_CT_DELETE per tuple (by exact
   * tuple + conntrack id: an O(1) hash lookup in the kernel). Tuples on stdin. Only used when the
   * session is root (an interpreter running a script is not something the sudo helper offers).
   */
  netlinkDelete(script: string): GatewayCommand {
    if (script.includes("'")) throw new Error('netlink delete script must not contain single quotes');
    return command('netlink delete (python3)', `python3 -I -c '${script}'`, ROOT_ONLY);
  },
} as const;

/**
 * A NOTRACK rule as people read it in a plan: the iptables command line exactly as it
 * is run, or the nft rule as `nft add rule <table> <chain> <body>` (run with the body quoted).
 */
export function notrackRuleText(backend: 'iptables' | 'nft', rule: NotrackRule): string {
  if (backend === 'iptables') return commands.iptablesNotrack('add', rule).shell;
  const r = notrackRuleSchema.parse(rule);
  return `nft add rule ${NFT_TABLE} ${nftChainOf(r)} ${nftRuleBody(r)}`;
}

/** The commands that create the bot's nft table and chains, as one line for people. */
export function nftSetupText(): string {
  return [commands.nftAddTable(), ...NFT_CHAINS.map((c) => commands.nftAddChain(c))].map((c) => c.shell).join('; ');
}
