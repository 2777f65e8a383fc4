/**
 * Small /proc and tool outputs: sysctl values, /proc/meminfo, /proc/slabinfo,
 * ip_local_port_range, `ip -o addr`, `readlink /proc/self/ns/net`.
 */

/** "key=value" lines (the facts script prints sysctls that way) -> key -> integer. Non-integers are skipped. */
export function parseKeyValueInts(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    if (!/^-?\d+$/.test(value)) continue;
    const n = Number(value);
    if (Number.isSafeInteger(n)) out[key] = n;
  }
  return out;
}

/**
 * `grep -H . /proc/sys/net/netfilter/nf_conntrack_*` -> short key -> integer:
 *   /proc/sys/net/netfilter/nf_conntrack_max:262144
 */
export function parseProcSysGrep(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const raw of text.split('\n')) {
    const m = /^(?:\S*\/)?([a-z0-9_]+):\s*(-?\d+)\s*$/.exec(raw.trim());
    if (!m) continue;
    const n = Number(m[2]);
    if (Number.isSafeInteger(n)) out[m[1] as string] = n;
  }
  return out;
}

/** /proc/meminfo -> values in kB ("MemTotal:       24684136 kB"). */
export function parseMeminfo(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^(\w+(?:\([^)]*\))?):\s+(\d+)(?:\s+kB)?\s*$/gm)) out[m[1] as string] = Number(m[2]);
  return out;
}

/**
 * Object size of `nf_conntrack` from /proc/slabinfo (needs root; SLUB may merge the
 * cache into another one, in which case it is absent): null when not found.
 *   nf_conntrack           0      0    256   16    1 : tunables    0    0    0 : slabdata      0      0      0
 */
export function parseSlabObjsize(text: string, cache = 'nf_conntrack'): number | null {
  for (const raw of text.split('\n')) {
    const cols = raw.trim().split(/\s+/);
    if (cols[0] !== cache) continue;
    const size = Number(cols[3]);
    return Number.isSafeInteger(size) && size > 0 ? size : null;
  }
  return null;
}

/** "32768\t60999" -> [32768, 60999]; null when malformed. */
export function parsePortRange(text: string): [number, number] | null {
  const m = /^\s*(\d+)\s+(\d+)\s*$/.exec(text);
  if (!m) return null;
  const lo = Number(m[1]);
  const hi = Number(m[2]);
  return lo > 0 && hi >= lo && hi <= 65535 ? [lo, hi] : null;
}

/** "net:[4026532177]" -> 4026532177. */
export function parseNetnsInode(text: string): number | null {
  const m = /net:\[(\d+)\]/.exec(text);
  return m ? Number(m[1]) : null;
}

/** The initial network namespace's inode (PROC_NET_INIT_INO, fixed in the kernel). */
export const INIT_NET_INODE = 4026531840;

/**
 * Creation time of a child network namespace from the `netns` section: `pinned=yes` (a bind
 * mount of this nsfs inode is in mountinfo, so the inode lives as long as the namespace and
 * its ctime is when it was made) and `ctime=` (epoch seconds). Null for the initial namespace,
 * an unpinned one (its inode is made anew by every open: ctime would be "now") or missing values.
 */
export function parseNetnsSince(text: string, inode: number | null): string | null {
  const ctime = /^ctime=(\d+)$/m.exec(text);
  if (inode === null || inode === INIT_NET_INODE || !/^pinned=yes$/m.test(text) || !ctime) return null;
  return new Date(Number(ctime[1]) * 1000).toISOString();
}

export interface InterfaceAddress {
  ifname: string;
  family: 'inet' | 'inet6';
  address: string;
  prefixLength: number;
  scope: string;
}

/**
 * `ip -o addr` lines:
 *   2: lan0    inet 198.18.0.1/24 scope global lan0\       valid_lft forever preferred_lft forever
 *   3: wan0    inet6 2001:2:0:2::1/64 scope global nodad \       valid_lft forever ...
 * "eth0@if12" (veth peers) is reported as "eth0".
 */
export function parseIpAddr(text: string): InterfaceAddress[] {
  const out: InterfaceAddress[] = [];
  for (const raw of text.split('\n')) {
    const m = /^\d+:\s+(\S+)\s+(inet6?)\s+([0-9a-fA-F:.]+)\/(\d+)(.*)$/.exec(raw.trim());
    if (!m) continue;
    const scope = /\bscope (\S+)/.exec(m[5] as string);
    out.push({
      ifname: (m[1] as string).replace(/@.*$/, ''),
      family: m[2] as 'inet' | 'inet6',
      address: m[3] as string,
      prefixLength: Number(m[4]),
      scope: scope ? (scope[1] as string) : 'global',
    });
  }
  return out;
}

/** iptables ("eth+") and nft ("eth*") wildcard interface match; "!x" never matches here. */
export function interfaceMatches(pattern: string, ifname: string): boolean {
  if (pattern.startsWith('!')) return false;
  if (pattern.endsWith('+') || pattern.endsWith('*')) return ifname.startsWith(pattern.slice(0, -1));
  return pattern === ifname;
}

/** "clock <epoch s> uptime <s>" (kernel-log-source section) -> the gateway's boot time (ISO), or null. */
export function parseBootTime(text: string): string | null {
  const m = /^clock (\d{9,11}) uptime (\d+(?:\.\d+)?)$/m.exec(text);
  if (!m) return null;
  const ms = Number(m[1]) * 1000 - Math.round(Number(m[2]) * 1000);
  return Number.isFinite(ms) && ms > 0 ? new Date(ms).toISOString() : null;
}
