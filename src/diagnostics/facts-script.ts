/**
 * Runbook steps 1 and 3 (and the inputs of step 2's analysis) in ONE ssh exec: a
 * fixed, read-only POSIX sh script that prints every fact in delimited sections, and
 * its parser.
 *
 * Output format (markers in dump-format.ts; one block per section, in this order):
 *
 *   @@section <name>@@
 *   <output of the section's command(s); stderr is discarded>
 *   @@end <name> rc=<exit status>@@
 *
 * A section whose command is not installed prints `@@missing <command>@@` as its only
 * content line, with rc=127. The script always exits 0. It never changes anything:
 * it reads /proc and /sys, runs listing commands (conntrack -S, iptables-save, nft
 * -j list ruleset or nft list ruleset, ip -o addr, dmesg) and greps config files. No input of any kind is
 * interpolated into it. Reads that need root run as root when the session is root;
 * when it is not, through the root-owned helper's read verbs (`sudo -n <helper> stats |
 * dump | kernel-log | slabinfo | ruleset <name> | ip-tables-names | writable-all`, fixed
 * flags, gateway/sudo-helper) when `sudo -n <helper> ping` answers; else as the user, and
 * their sections report what the user may see. Never `sudo` of a raw command.
 */
import { HASHSIZE_PATH } from '../core/managed.js';
import { SUDO_HELPER } from '../gateway/sudo-helper/invoke.js';
import { gatewayFactsSchema, TIMEOUT_KEYS, type GatewayFacts, type NatRule } from '../core/model.js';
import {
  ESTABLISHED_TIMEOUT_HEADER,
  MARKER_CLOSE,
  SECTION_BEGIN,
  SECTION_BEGIN_LINE,
  SECTION_END,
  SECTION_END_LINE,
  SECTION_MISSING,
  SECTION_MISSING_LINE,
  SHORT_TIMER_HEADER,
} from './dump-format.js';
import { parseConntrackStatsCli, parseProcStatConntrack } from './parsers/conntrack-stats.js';
import { parseKernelLog } from './parsers/kernel-log.js';
import { parseIptablesSave, parseNftRuleset, type NftRules } from './parsers/nat-rules.js';
import { NftJsonError, parseNftJson } from './parsers/nft-json.js';
import { parseModprobeGrep, parseSysctlGrep } from './parsers/persistence.js';
import {
  interfaceMatches,
  parseBootTime,
  parseIpAddr,
  parseKeyValueInts,
  parseMeminfo,
  parseNetnsInode,
  parseNetnsSince,
  parsePortRange,
  parseProcSysGrep,
  parseSlabObjsize,
} from './parsers/system.js';

export const FACTS_SCRIPT_VERSION = 3;

/** Kernel log lines kept (the newest); the kernel rate-limits "table full" to ~10 per burst. */
export const KERNEL_LOG_MAX_LINES = 2000;

/** Section names in output order. */
export const FACT_SECTIONS = [
  'meta',
  'kernel-release',
  'netns',
  'sysctl',
  'writable',
  'hashsize',
  'conntrack-stats',
  'proc-stat',
  'meminfo',
  'slabinfo',
  'port-range',
  'iptables-version',
  'iptables-nat',
  'iptables-raw',
  'ip6tables-nat',
  'ip6tables-raw',
  'iptables-legacy-nat',
  'iptables-legacy-raw',
  'nft-ruleset-json',
  'nft-ruleset',
  'nft-warnings',
  'ip-addr',
  'kernel-log-source',
  'kernel-log',
  'sysctl-files',
  'modprobe-files',
  'conntrack-tool',
] as const;
export type FactSection = (typeof FACT_SECTIONS)[number];

/**
 * The facts script. POSIX sh (dash, bash, busybox ash); the login shell of the SSH
 * user must be a Bourne-style shell. Read-only.
 */
export const FACTS_SCRIPT = `export LC_ALL=C
PATH="$PATH:/usr/sbin:/sbin:/usr/bin:/bin"
P=
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1 && ${SUDO_HELPER} ping >/dev/null 2>&1; then P='${SUDO_HELPER}'; fi
have() { command -v "$1" >/dev/null 2>&1; }
begin() { printf '${SECTION_BEGIN} %s${MARKER_CLOSE}\\n' "$1"; }
end() { printf '\\n${SECTION_END} %s rc=%s${MARKER_CLOSE}\\n' "$1" "$2"; }
missing() { printf '${SECTION_BEGIN} %s${MARKER_CLOSE}\\n${SECTION_MISSING} %s${MARKER_CLOSE}\\n${SECTION_END} %s rc=127${MARKER_CLOSE}\\n' "$1" "$2" "$1"; }
run() { n=$1; shift; begin "$n"; "$@" 2>/dev/null; end "$n" $?; }
tool() { n=$1; c=$2; shift 2; if have "$c"; then run "$n" "$c" "$@"; else missing "$n" "$c"; fi; }
# a root read: as root (or the user) the command itself; under sudo the helper's verb (fixed flags)
pr() { v=$1; shift; if [ -n "$P" ]; then $P $v; else "$@"; fi; }
rtool() { n=$1; v=$2; c=$3; shift 3; if ! have "$c"; then missing "$n" "$c"; else run "$n" pr "$v" "$c" "$@"; fi; }
begin meta; printf 'version=${FACTS_SCRIPT_VERSION}\\nuid=%s\\nsudo=%s\\n' "$(id -u)" "\${P:+helper}"; end meta 0
run kernel-release uname -r
# the namespace inode; when a bind mount pins it (ip netns, container runtimes), its nsfs
# ctime is the namespace's creation time (an unpinned inode is made anew by every open)
begin netns; i=$(readlink /proc/self/ns/net); echo "$i"; if grep -qF " $i " /proc/self/mountinfo 2>/dev/null; then echo pinned=yes; stat -L -c 'ctime=%Z' /proc/self/ns/net 2>/dev/null; fi; end netns 0
# one grep reads every key ("path:value"); sysctl files return EOF on reads at an
# offset, so the shell's byte-wise \`read\` would see only the first digit
run sysctl grep -H . /proc/sys/net/netfilter/nf_conntrack_*
# one \`test -w\` per file; under sudo the helper answers for the keys the bot writes
# (never \`sudo sh -c\`), and a key outside its list reads as not writable
begin writable
if [ -n "$P" ]; then $P writable-all 2>/dev/null; else
for f in /proc/sys/net/netfilter/nf_conntrack_* ${HASHSIZE_PATH}; do [ -e "$f" ] || continue; if test -w "$f" 2>/dev/null; then w=1; else w=0; fi; printf '%s=%s\\n' "\${f##*/}" "$w"; done
fi
end writable 0
run hashsize cat ${HASHSIZE_PATH}
rtool conntrack-stats stats conntrack -S
run proc-stat cat /proc/net/stat/nf_conntrack
run meminfo grep -E '^(MemTotal|MemFree|MemAvailable):' /proc/meminfo
begin slabinfo; if [ -n "$P" ]; then $P slabinfo 2>/dev/null; else grep -E '^nf_conntrack ' /proc/slabinfo 2>/dev/null; fi; end slabinfo $?
run port-range cat /proc/sys/net/ipv4/ip_local_port_range
tool iptables-version iptables -V
rtool iptables-nat 'ruleset iptables-nat' iptables-save -t nat
rtool iptables-raw 'ruleset iptables-raw' iptables-save -t raw
rtool ip6tables-nat 'ruleset ip6tables-nat' ip6tables-save -t nat
rtool ip6tables-raw 'ruleset ip6tables-raw' ip6tables-save -t raw
legacy=
if have iptables-legacy-save && ! iptables -V 2>/dev/null | grep -q legacy; then
  if { if [ -n "$P" ]; then $P ip-tables-names; else cat /proc/net/ip_tables_names; fi; } 2>/dev/null | grep -q .; then legacy=1; fi
fi
# legacy (x_tables) rules next to iptables-nft: printed only when legacy tables exist, else empty
if [ -n "$legacy" ]; then rtool iptables-legacy-nat 'ruleset iptables-legacy-nat' iptables-legacy-save -t nat; else begin iptables-legacy-nat; end iptables-legacy-nat 0; fi
if [ -n "$legacy" ]; then rtool iptables-legacy-raw 'ruleset iptables-legacy-raw' iptables-legacy-save -t raw; else begin iptables-legacy-raw; end iptables-legacy-raw 0; fi
# nft: JSON where this nft has it (an iptables-nft rule carries "xt" there); else the text,
# keeping its stderr (nftables 1.0.6+ writes "table ... is managed by iptables-nft" there)
if have nft; then
  begin nft-ruleset-json; pr 'ruleset nft-json' nft -j list ruleset 2>/dev/null; j=$?; end nft-ruleset-json $j
  if [ "$j" = 0 ]; then begin nft-ruleset; end nft-ruleset 0; begin nft-warnings; end nft-warnings 0
  else
    begin nft-ruleset; { w=$(pr 'ruleset nft' nft list ruleset 2>&1 1>&3 3>&-); r=$?; } 3>&1; end nft-ruleset $r
    begin nft-warnings; printf '%s\\n' "$w" | grep -F 'iptables-nft'; end nft-warnings 0
  fi
else missing nft-ruleset-json nft; missing nft-ruleset nft; missing nft-warnings nft; fi
tool ip-addr ip -o addr
src=none
# under sudo the helper's kernel-log: dmesg with fixed flags, only conntrack and net_ratelimit lines
if [ -n "$P" ]; then src=helper
elif have dmesg; then
  if dmesg --time-format iso >/dev/null 2>&1; then src=dmesg-iso
  elif dmesg >/dev/null 2>&1; then src=dmesg; fi
fi
if [ "$src" = none ] && have journalctl && journalctl -k -b -n 1 --no-pager >/dev/null 2>&1; then src=journal; fi
# the gateway's clock and uptime, to date plain dmesg's [seconds since boot] stamps (busybox dmesg has no --time-format)
begin kernel-log-source; echo "$src"; echo "clock $(date +%s) uptime $(cut -d' ' -f1 /proc/uptime)"; end kernel-log-source 0
begin kernel-log
case "$src" in
  helper) $P kernel-log 2>/dev/null ;;
  dmesg-iso) dmesg --time-format iso 2>/dev/null ;;
  dmesg) dmesg 2>/dev/null ;;
  journal) journalctl -k -b -o short-iso-precise --no-pager 2>/dev/null ;;
esac | grep -E 'conntrack|net_ratelimit' | tail -n ${KERNEL_LOG_MAX_LINES}
end kernel-log 0
begin sysctl-files
for f in /etc/sysctl.d/*.conf /run/sysctl.d/*.conf /usr/local/lib/sysctl.d/*.conf /usr/lib/sysctl.d/*.conf /lib/sysctl.d/*.conf /etc/sysctl.conf; do
  [ -f "$f" ] && grep -H 'nf_conntrack' "$f" 2>/dev/null
done
end sysctl-files 0
begin modprobe-files
for f in /etc/modprobe.d/*.conf /run/modprobe.d/*.conf /usr/local/lib/modprobe.d/*.conf /usr/lib/modprobe.d/*.conf /lib/modprobe.d/*.conf; do
  [ -f "$f" ] && grep -H -E '^[[:space:]]*options[[:space:]]+nf_conntrack[[:space:]]' "$f" 2>/dev/null
done
end modprobe-files 0
if have conntrack; then begin conntrack-tool; command -v conntrack; end conntrack-tool 0; else missing conntrack-tool conntrack; fi
exit 0
`;

/**
 * The table dump, streamed by the check: `/proc/net/nf_conntrack` when it exists and gives
 * a first line, else `conntrack -L` (same parser; the /proc lines start with
 * "ipv4     2"/"ipv6     10", always carry zone=, print IPv6 in full form and use= one
 * higher). The kernel walks /proc in about 0.6 s at 262,144 entries where `conntrack -L`
 * takes 0.9 s (netlink messages decoded and printed by the tool). The probe reads one line
 * (`read` stops the probe's cat after its first page): a file that is missing, unreadable
 * or masked (an empty file or /dev/null mounted over it, a mount namespace without it)
 * falls back to the tool; an empty table falls back too and the tool prints nothing either.
 * Needs root (CAP_NET_ADMIN for conntrack -L, /proc/net/nf_conntrack is 0440): when not
 * root, the helper's `dump` verb through sudo. The tool's "N flow entries have been shown."
 * summary goes to stderr and is never parsed.
 */
export const TABLE_DUMP_COMMAND =
  // First line: the ESTABLISHED timeout at the moment of the dump (world-readable), so the
  // dump needs nothing from the facts script and both run at once (idle = timeout - remaining).
  'T=/proc/sys/net/netfilter/nf_conntrack_tcp_timeout_; ' +
  `echo "${ESTABLISHED_TIMEOUT_HEADER} $(cat \${T}established 2>/dev/null)"; ` +
  `echo "${SHORT_TIMER_HEADER} $(cat \${T}unacknowledged 2>/dev/null) $(cat \${T}max_retrans 2>/dev/null)"; ` +
  'PATH="$PATH:/usr/sbin:/sbin"; ' +
  `if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1 && ${SUDO_HELPER} ping >/dev/null 2>&1; then exec ${SUDO_HELPER} dump; fi; ` +
  'P=/proc/net/nf_conntrack; ' +
  'if [ -e $P ] && cat $P 2>/dev/null | read -r _; then exec cat $P; fi; ' +
  'if command -v conntrack >/dev/null 2>&1; then exec conntrack -L; else exec cat $P; fi';

// ---------------------------------------------------------------- parsing

export interface SectionOutput {
  /** Output lines joined, without the trailing newline the script adds before @@end. */
  text: string;
  /** Exit status the script reported, or null when the end marker is missing (cut output). */
  rc: number | null;
  /** The command that is not installed, when the section says so. */
  missing: string | null;
}

/** Split facts-script output into sections. Unknown text outside sections is ignored. */
export function parseSections(stdout: string): Map<string, SectionOutput> {
  const sections = new Map<string, SectionOutput>();
  let name: string | null = null;
  let lines: string[] = [];
  const flush = (rc: number | null): void => {
    if (name === null) return;
    // the script prints one newline before @@end so output without a final newline still ends its line
    if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
    const missingLine = lines.length === 1 ? SECTION_MISSING_LINE.exec(lines[0] as string) : null;
    sections.set(name, { text: missingLine ? '' : lines.join('\n'), rc, missing: missingLine ? (missingLine[1] as string) : null });
    name = null;
    lines = [];
  };
  for (const line of stdout.split('\n')) {
    const begin = SECTION_BEGIN_LINE.exec(line);
    if (begin) {
      flush(null);
      name = begin[1] as string;
      continue;
    }
    const end = SECTION_END_LINE.exec(line);
    if (end && end[1] === name) {
      flush(Number(end[2]));
      continue;
    }
    if (name !== null) lines.push(line);
  }
  flush(null);
  return sections;
}

export class FactsParseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FactsParseError';
  }
}

function usable(s: SectionOutput | undefined): s is SectionOutput {
  return s !== undefined && s.missing === null;
}

/**
 * Addresses on the interfaces MASQUERADE rules leave through; when no MASQUERADE rule
 * names an interface (or none exists), every global address. IPv4 first.
 */
export function externalAddressesFor(natRules: NatRule[], ipAddr: string): string[] {
  const addrs = parseIpAddr(ipAddr).filter((a) => a.scope === 'global');
  const masq = natRules.filter((r) => r.kind === 'masquerade');
  const patterns = masq.map((r) => r.outInterface).filter((o): o is string => o !== null && !o.startsWith('!'));
  const anyInterface = masq.length === 0 || masq.some((r) => r.outInterface === null || r.outInterface.startsWith('!'));
  const chosen = anyInterface ? addrs : addrs.filter((a) => patterns.some((p) => interfaceMatches(p, a.ifname)));
  const v4 = chosen.filter((a) => a.family === 'inet').map((a) => a.address);
  const v6 = chosen.filter((a) => a.family === 'inet6').map((a) => a.address);
  return [...new Set([...v4, ...v6])];
}

/**
 * nft's NAT and notrack rules: from `nft -j` when the gateway printed it, else from the text
 * listing with nft's stderr warnings (iptables-nft tables); null when nft is not installed.
 */
function nftRules(sections: Map<string, SectionOutput>, iptablesHasRules: boolean): NftRules | null {
  const json = sections.get('nft-ruleset-json');
  if (usable(json) && json.rc === 0 && json.text.trim() !== '') {
    try {
      return parseNftJson(json.text, iptablesHasRules);
    } catch (err) {
      if (!(err instanceof NftJsonError)) throw err;
    }
  }
  const text = sections.get('nft-ruleset');
  if (!usable(text)) return null;
  return parseNftRuleset(text.text, iptablesHasRules, sections.get('nft-warnings')?.text ?? '');
}

/** Parse the facts script's stdout into validated GatewayFacts. Throws FactsParseError when essentials are missing. */
export function parseFacts(stdout: string, collectedAt: string): GatewayFacts {
  const sections = parseSections(stdout);
  const get = (n: FactSection): SectionOutput | undefined => sections.get(n);
  const meta = get('meta');
  if (!meta || meta.rc === null) {
    throw new FactsParseError('facts script output not recognized (no complete @@section meta@@); the login shell may not be POSIX sh');
  }
  const problems: string[] = [];

  const kernelRelease = get('kernel-release')?.text.trim() ?? '';
  if (!kernelRelease) problems.push('kernel release');
  const netnsInode = parseNetnsInode(get('netns')?.text ?? '');
  const netnsSince = parseNetnsSince(get('netns')?.text ?? '', netnsInode);

  const sysctl = parseProcSysGrep(get('sysctl')?.text ?? '');
  const count = sysctl['nf_conntrack_count'];
  const max = sysctl['nf_conntrack_max'];
  const buckets = sysctl['nf_conntrack_buckets'];
  if (count === undefined || max === undefined || buckets === undefined) {
    throw new FactsParseError(
      'nf_conntrack is not loaded on the gateway (no /proc/sys/net/netfilter/nf_conntrack_{count,max,buckets}): nothing is tracked',
    );
  }
  const timeouts: Record<string, number> = {};
  for (const key of TIMEOUT_KEYS) {
    const v = sysctl[key];
    if (v !== undefined) timeouts[key] = v;
  }

  const hashsizeText = get('hashsize')?.text.trim() ?? '';
  const hashsize = /^\d+$/.test(hashsizeText) ? Number(hashsizeText) : null;

  const cliStats = usable(get('conntrack-stats')) ? parseConntrackStatsCli(get('conntrack-stats')?.text ?? '') : null;
  const stats = cliStats ?? parseProcStatConntrack(get('proc-stat')?.text ?? '');
  if (stats === null) problems.push('conntrack statistics (conntrack -S and /proc/net/stat/nf_conntrack both unreadable)');

  const writableRaw = parseKeyValueInts(get('writable')?.text ?? '');
  const writable: Record<string, boolean> = {};
  for (const [k, v] of Object.entries(writableRaw)) writable[k] = v === 1;
  // Writing hashsize fails (EOPNOTSUPP) unless this is the init namespace, where max is writable too.
  if ('hashsize' in writable) writable['hashsize'] = writable['hashsize'] === true && writable['nf_conntrack_max'] === true;

  const meminfo = parseMeminfo(get('meminfo')?.text ?? '');
  const memTotalKb = meminfo['MemTotal'];
  const memAvailableKb = meminfo['MemAvailable'] ?? meminfo['MemFree'];
  if (memTotalKb === undefined || memAvailableKb === undefined) problems.push('/proc/meminfo');

  const entrySlabBytes = parseSlabObjsize(get('slabinfo')?.text ?? '');
  const localPortRange = parsePortRange(get('port-range')?.text ?? '');
  if (localPortRange === null) problems.push('ip_local_port_range');

  // NAT and NOTRACK rules
  const ipt = ['iptables-nat', 'iptables-raw', 'ip6tables-nat', 'ip6tables-raw', 'iptables-legacy-nat', 'iptables-legacy-raw'] as const;
  const iptParsed = ipt.map((n) =>
    usable(get(n)) ? parseIptablesSave(get(n)?.text ?? '', n.startsWith('ip6') ? 'ipv6' : 'ipv4') : null,
  );
  const iptablesRuleCount = iptParsed.reduce((a, p) => a + (p?.ruleCount ?? 0), 0);
  const iptablesNat = iptParsed.flatMap((p) => p?.natRules ?? []);
  const nft = nftRules(sections, iptablesRuleCount > 0);
  const natRules = [...iptablesNat, ...(nft?.natRules ?? [])];
  const managedNotrackRules = [...iptParsed.flatMap((p) => p?.managedNotrack ?? []), ...(nft?.managedNotrack ?? [])];

  let firewallBackend: GatewayFacts['firewallBackend'] = 'none';
  if (iptablesNat.length > 0) firewallBackend = 'iptables';
  else if ((nft?.natRules.filter((r) => r.kind !== 'dnat').length ?? 0) > 0) firewallBackend = 'nft';
  else if (iptablesRuleCount > 0) firewallBackend = 'iptables';
  else if ((nft?.nativeTables.length ?? 0) > 0) firewallBackend = 'nft';

  const externalAddresses = externalAddressesFor(natRules, get('ip-addr')?.text ?? '');
  const bootTime = parseBootTime(get('kernel-log-source')?.text ?? '');
  const kernelLog = parseKernelLog(get('kernel-log')?.text ?? '', { netnsInode, referenceTime: collectedAt, ...(bootTime ? { bootTime } : {}) });

  const persistence = {
    sysctlFiles: parseSysctlGrep(get('sysctl-files')?.text ?? ''),
    modprobeFiles: parseModprobeGrep(get('modprobe-files')?.text ?? ''),
  };

  if (problems.length > 0 || stats === null || memTotalKb === undefined || memAvailableKb === undefined || localPortRange === null) {
    throw new FactsParseError(`facts incomplete: ${problems.join(', ')}`);
  }

  return gatewayFactsSchema.parse({
    collectedAt,
    kernelRelease,
    netnsInode,
    netnsSince,
    count,
    max,
    buckets,
    hashsize,
    expectMax: sysctl['nf_conntrack_expect_max'] ?? null,
    timeouts,
    stats,
    writable,
    memTotalKb,
    memAvailableKb,
    entrySlabBytes,
    localPortRange,
    natRules,
    externalAddresses,
    firewallBackend,
    kernelLog,
    persistence,
    hasConntrackTool: usable(get('conntrack-tool')),
    managedNotrackRules,
  } satisfies GatewayFacts);
}

/** Sections added by version 3 (nft -j and nft's stderr): absent from an older script's output. */
const SECTIONS_SINCE_V3: ReadonlySet<string> = new Set(['nft-ruleset-json', 'nft-warnings']);

/** Which sections failed or were missing, for logs ("nft-ruleset: missing nft"). */
export function describeSectionProblems(stdout: string): string[] {
  const out: string[] = [];
  const sections = parseSections(stdout);
  for (const name of FACT_SECTIONS) {
    const s = sections.get(name);
    // outputs of an older script have no nft-ruleset-json / nft-warnings: the text is read then
    if (!s) {
      if (!SECTIONS_SINCE_V3.has(name)) out.push(`${name}: absent`);
    } else if (s.missing) out.push(`${name}: missing ${s.missing}`);
    else if (s.rc === null) out.push(`${name}: cut off`);
    else if (s.rc !== 0) out.push(`${name}: rc=${s.rc}`);
  }
  return out;
}
