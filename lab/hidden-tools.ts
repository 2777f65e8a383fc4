/**
 * Gateways without some tools: the gateway's sshd (and so every command the bot runs)
 * sees a filesystem where the tool's binaries do not exist at all. Each directory of the
 * search path that holds one gets an overlay in sshd's mount namespace whose upper layer
 * has a whiteout (a 0/0 character device) per hidden name: `command -v`, `ls` and `exec`
 * all find nothing, however PATH is set. The host's files are untouched (the overlay lives
 * only in that private mount namespace; the lab's own tools run through `ip netns exec`,
 * in the host's mount namespace, and still have them).
 *
 * A tripwire: root's `.bashrc` in the gateway (sshd runs every command through root's
 * bash, which sources it) defines bash's `command_not_found_handle`, so a command the
 * gateway cannot find is appended to `<lab>/not-found.log` (and fails as usual, 127).
 * `command -v` and the facts script's `have` look quietly and never trip it.
 */
import { lstat, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { shq } from './exec.js';

export const hiddenToolSchema = z.enum(['iptables', 'conntrack']);
export type HiddenTool = z.infer<typeof hiddenToolSchema>;

/** Binary names each tool consists of (every iptables flavour: nft, legacy, save/restore, the multi-call binaries). */
const TOOL_NAMES: Record<HiddenTool, RegExp> = {
  iptables: /^(ip6?tables|arptables|ebtables|xtables)(-[a-z0-9-]+)?$|^iptables-xml$/,
  conntrack: /^conntrack$/,
};

/** The directories sshd's default PATH and the facts script's PATH search (symlinked ones are covered by their target). */
export const SEARCH_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'] as const;

export interface HiddenDir {
  dir: string;
  names: string[];
}

/** Which names, in which real (not symlinked) directories, hiding these tools means on this machine. */
export async function hiddenDirs(tools: readonly HiddenTool[]): Promise<HiddenDir[]> {
  if (tools.length === 0) return [];
  const out: HiddenDir[] = [];
  for (const dir of SEARCH_DIRS) {
    const st = await lstat(dir).catch(() => null);
    if (!st || st.isSymbolicLink() || !st.isDirectory()) continue;
    const entries = await readdir(dir).catch(() => [] as string[]);
    const names = entries.filter((n) => tools.some((t) => TOOL_NAMES[t].test(n))).sort();
    if (names.length) out.push({ dir, names });
  }
  return out;
}

/** Shell lines (run as root inside sshd's private mount namespace, before sshd starts) that hide them. */
export function hideScript(labDir: string, dirs: readonly HiddenDir[]): string[] {
  return dirs.flatMap(({ dir, names }, i) => {
    const upper = join(labDir, `hide-${i}-upper`);
    const work = join(labDir, `hide-${i}-work`);
    return [
      `mkdir -p ${shq(upper)} ${shq(work)}`,
      ...names.map((n) => `mknod ${shq(join(upper, n))} c 0 0`),
      `mount -t overlay cto-lab-hide -o lowerdir=${shq(dir)},upperdir=${shq(upper)},workdir=${shq(work)} ${shq(dir)}`,
    ];
  });
}

export function notFoundLogPath(labDir: string): string {
  return join(labDir, 'not-found.log');
}

/** Writes root's `.bashrc` for the gateway: the not-found tripwire. */
export async function writeTripwire(rootHome: string, labDir: string): Promise<void> {
  const log = shq(notFoundLogPath(labDir));
  const rc = [
    '# conntrack-ops lab gateway: log every command this gateway cannot find',
    `command_not_found_handle() { printf '%s\\n' "$*" >> ${log}; printf 'bash: %s: command not found\\n' "$1" >&2; return 127; }`,
    '',
  ].join('\n');
  await writeFile(join(rootHome, '.bashrc'), rc, { mode: 0o644 });
  await writeFile(notFoundLogPath(labDir), '', { mode: 0o644 });
}
