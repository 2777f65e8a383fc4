/**
 * Running commands for the lab. Every command that changes kernel networking state
 * (sysctl, iptables, nft, conntrack) goes through `nsRun`, which refuses to run unless
 * the child is inside the expected lab namespace: the shell wrapper compares
 * `readlink /proc/self/ns/net` with the namespace's inode and with the namespace this
 * process runs in (the "host" namespace), after `ip netns exec` switched.
 */
import { readlinkSync, statSync } from 'node:fs';
import { execa } from 'execa';
import { LAB_PREFIX } from './naming.js';

export interface RunResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export class LabCommandError extends Error {
  override name = 'LabCommandError';
  constructor(
    message: string,
    readonly result?: RunResult,
  ) {
    super(message);
  }
}

export interface RunOptions {
  input?: string;
  timeoutMs?: number;
  /** Throw on a non-zero exit (default true). */
  check?: boolean;
  env?: Record<string, string>;
}

export async function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const res = await execa(cmd, [...args], {
    reject: false,
    input: opts.input,
    timeout: opts.timeoutMs ?? 60_000,
    stripFinalNewline: false,
    env: opts.env,
    extendEnv: true,
  });
  const result: RunResult = {
    stdout: typeof res.stdout === 'string' ? res.stdout : '',
    stderr: typeof res.stderr === 'string' ? res.stderr : '',
    exitCode: res.exitCode ?? (res.timedOut ? 124 : 1),
  };
  if ((opts.check ?? true) && result.exitCode !== 0) {
    const why = res.timedOut ? 'timed out' : `exited ${result.exitCode}`;
    throw new LabCommandError(
      `${cmd} ${args.join(' ')} ${why}: ${result.stderr.trim() || result.stdout.trim()}`.slice(0, 2000),
      result,
    );
  }
  return result;
}

/** The network namespace this process runs in, as `net:[inode]`. Never touched by the lab. */
export const HOST_NETNS: string = readlinkSync('/proc/self/ns/net');

/** Inode of a named namespace (`/run/netns/<name>`), or null when it does not exist. */
export function netnsInode(ns: string): number | null {
  try {
    return statSync(`/run/netns/${ns}`).ino;
  } catch {
    return null;
  }
}

function assertLabNamespace(ns: string): number {
  if (!ns.startsWith(LAB_PREFIX) || ns.includes('/')) throw new Error(`refusing to run in non-lab namespace "${ns}"`);
  const inode = netnsInode(ns);
  if (inode === null) throw new LabCommandError(`network namespace ${ns} does not exist`);
  if (`net:[${inode}]` === HOST_NETNS) throw new Error(`namespace ${ns} is the host namespace; refusing`);
  return inode;
}

/**
 * Shell prologue that aborts (exit 97) unless the shell runs in namespace `inode` and that
 * namespace is not the host's. Prefixed to every guarded command and to the sshd launcher.
 */
export function netnsGuard(inode: number): string {
  const want = `net:[${inode}]`;
  return (
    `cur=$(readlink /proc/self/ns/net); ` +
    `if [ "$cur" != '${want}' ] || [ "$cur" = '${HOST_NETNS}' ]; then ` +
    `echo "conntrack-ops lab: refusing to run outside lab namespace (in $cur, want ${want})" >&2; exit 97; fi`
  );
}

/**
 * Runs argv inside lab namespace `ns` (`ip netns exec`), behind the namespace guard.
 * Use for every sysctl / iptables / nft / conntrack invocation.
 */
export async function nsRun(ns: string, argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const inode = assertLabNamespace(ns);
  return run('ip', ['netns', 'exec', ns, 'sh', '-c', `${netnsGuard(inode)}; exec "$@"`, 'sh', ...argv], opts);
}

/** Runs a shell script inside lab namespace `ns`, behind the namespace guard. */
export async function nsShell(ns: string, script: string, opts: RunOptions = {}): Promise<RunResult> {
  const inode = assertLabNamespace(ns);
  return run('ip', ['netns', 'exec', ns, 'sh', '-c', `${netnsGuard(inode)}\n${script}`], opts);
}

/** Single-quotes a value for sh. */
export function shq(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export async function commandExists(cmd: string): Promise<boolean> {
  const r = await run('sh', ['-c', `command -v ${shq(cmd)} || [ -x /usr/sbin/${cmd} ] || [ -x /sbin/${cmd} ]`], {
    check: false,
  });
  return r.exitCode === 0;
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
