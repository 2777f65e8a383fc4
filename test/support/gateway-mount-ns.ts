/**
 * Changes inside a lab gateway sshd's own mount namespace (every SSH command of the lab
 * runs in it; this machine's mounts are never touched), for tests and the bench:
 *
 *   hideProcNet       /proc becomes a tmpfs of links to the real /proc without `net` (so no
 *                     /proc/net/nf_conntrack, as on a kernel without CONFIG_NF_CONNTRACK_PROCFS)
 *                     and without pid directories (/proc/self still works through its link)
 *   serveDumpAsTool   `conntrack -L` prints a file instead of the kernel's table (a wrapper
 *                     bind-mounted over the tool; every other conntrack command runs the real
 *                     binary, copied aside first)
 *   restoreMounts     undoes both
 *
 * Fixed scripts; the only values in them are paths under the lab's own state directory.
 */
import { execFileSync } from 'node:child_process';
import { chmod, copyFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LabState } from '../../lab/index.js';

function sshdPid(lab: LabState): number {
  const pid = lab.pids['sshd'];
  if (pid === undefined) throw new Error(`lab ${lab.name} has no sshd pid`);
  return pid;
}

function inSshdMountNs(lab: LabState, script: string): void {
  execFileSync('nsenter', ['-t', String(sshdPid(lab)), '-m', 'sh', '-c', script], { stdio: ['ignore', 'ignore', 'pipe'] });
}

const realProc = (lab: LabState) => join(lab.dir, 'real-proc');
const TOOL = '/usr/sbin/conntrack';

export function hideProcNet(lab: LabState): void {
  inSshdMountNs(
    lab,
    [
      'set -e',
      `R=${realProc(lab)}`,
      'mkdir -p "$R"',
      'mount --bind /proc "$R"',
      'mount -t tmpfs -o mode=755 cto-noprocnet /proc',
      'for e in "$R"/*; do n=${e##*/}; case "$n" in net|[0-9]*) continue ;; esac; ln -s "$e" "/proc/$n"; done',
    ].join('\n'),
  );
}

/** `conntrack -L` on the gateway prints `dumpFile` (read at each call: replace it between runs). */
export async function serveDumpAsTool(lab: LabState, dumpFile: string): Promise<void> {
  const real = join(lab.dir, 'conntrack.real');
  const wrapper = join(lab.dir, 'conntrack-wrapper');
  await copyFile(TOOL, real);
  await writeFile(wrapper, `#!/bin/sh\nif [ "$1" = -L ]; then exec cat ${dumpFile}; fi\nexec ${real} "$@"\n`);
  await chmod(wrapper, 0o755);
  inSshdMountNs(lab, `mount --bind ${wrapper} ${TOOL}`);
}

/** Undoes hideProcNet and serveDumpAsTool (whichever were done). */
export function restoreMounts(lab: LabState): void {
  const script = `umount ${TOOL} 2>/dev/null; if [ -d ${realProc(lab)} ]; then umount /proc; umount ${realProc(lab)}; rmdir ${realProc(lab)}; fi; true`;
  inSshdMountNs(lab, script);
}
