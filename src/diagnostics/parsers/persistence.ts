/**
 * What the gateway applies at boot: sysctl.d files (`grep -H` output, "path:line") and
 * modprobe.d `options nf_conntrack hashsize=N`.
 */

export interface SysctlFile {
  path: string;
  /** Short key (nf_conntrack_max) -> value as written. */
  keys: Record<string, string>;
}

export interface ModprobeFile {
  path: string;
  hashsize: number | null;
}

/** "net.netfilter.nf_conntrack_max", "net/netfilter/nf_conntrack_max", "net.nf_conntrack_max" -> "nf_conntrack_max". */
export function shortConntrackKey(key: string): string | null {
  const last = key.trim().split(/[./]/).pop() ?? '';
  return /^nf_conntrack_[a-z0-9_]+$/.test(last) ? last : null;
}

/** Split "path:content" from `grep -H`; paths never contain ':' in the directories we read. */
function splitGrepLine(line: string): [string, string] | null {
  const colon = line.indexOf(':');
  if (colon <= 0) return null;
  return [line.slice(0, colon), line.slice(colon + 1)];
}

/**
 * `grep -H nf_conntrack /etc/sysctl.conf /etc/sysctl.d/*.conf ...` -> files that set a
 * nf_conntrack key. Comments ('#', ';') are skipped; a leading '-' (ignore errors) is
 * dropped. Keys later in a file win (as sysctl applies them).
 */
export function parseSysctlGrep(text: string): SysctlFile[] {
  const files = new Map<string, Record<string, string>>();
  for (const raw of text.split('\n')) {
    const split = splitGrepLine(raw);
    if (!split) continue;
    const [path, content] = split;
    let line = content.trim();
    if (line.length === 0 || line.startsWith('#') || line.startsWith(';')) continue;
    if (line.startsWith('-')) line = line.slice(1).trim();
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    const key = shortConntrackKey(line.slice(0, eq));
    if (key === null) continue;
    const value = line.slice(eq + 1).trim();
    let keys = files.get(path);
    if (!keys) {
      keys = {};
      files.set(path, keys);
    }
    keys[key] = value;
  }
  return [...files].map(([path, keys]) => ({ path, keys }));
}

/** `grep -H 'options.*nf_conntrack' /etc/modprobe.d/*.conf ...` -> files with their hashsize (null if the line sets none). */
export function parseModprobeGrep(text: string): ModprobeFile[] {
  const files = new Map<string, number | null>();
  for (const raw of text.split('\n')) {
    const split = splitGrepLine(raw);
    if (!split) continue;
    const [path, content] = split;
    const m = /^\s*options\s+nf_conntrack\s+(.*)$/.exec(content);
    if (!m) continue;
    const hs = /(?:^|\s)hashsize=(\d+)/.exec(m[1] as string);
    const value = hs ? Number(hs[1]) : null;
    // the last line that sets hashsize in a file wins
    if (value !== null || !files.has(path)) files.set(path, value);
  }
  return [...files].map(([path, hashsize]) => ({ path, hashsize }));
}
