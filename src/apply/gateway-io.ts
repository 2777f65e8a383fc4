/**
 * Reads and writes on the gateway for apply / verify / restore, all through the
 * fixed templates of gateway/commands.ts. Every output is parsed with zod; every
 * write is followed by a read back by the caller (never trust an exit code alone).
 */
import { parseConntrackStatsCli, parseProcStatConntrack } from '../diagnostics/parsers/conntrack-stats.js';
import { z } from 'zod';
import type { ConntrackStats } from '../core/model.js';
import { MANAGED_FILES, type ManagedFile } from '../core/managed.js';
import { commands, type GatewayCommand, type StdinCommand } from '../gateway/commands.js';
import { CommandFailedError } from '../gateway/errors.js';
import type { ExecResult, GatewaySession } from '../gateway/ssh-session.js';
import type { ManagedFileSnapshot } from './model.js';

export async function run(session: GatewaySession, cmd: GatewayCommand, opts: { timeoutMs?: number; allowFailure?: boolean } = {}): Promise<ExecResult> {
  return session.exec(cmd, opts);
}

export async function runStdin(session: GatewaySession, sc: StdinCommand, opts: { timeoutMs?: number; allowFailure?: boolean } = {}): Promise<ExecResult> {
  return session.exec(sc.command, { ...opts, stdin: sc.stdin });
}

const intText = z.string().regex(/^\d+$/).transform(Number);

export const liveStateSchema = z.object({
  sysctl: z.record(z.string(), z.number()),
  hashsize: z.number().nullable(),
  memTotalKb: z.number(),
  memAvailableKb: z.number(),
  slabBytes: z.number().nullable(),
  netns: z.string().nullable(),
  hasConntrack: z.boolean(),
  hasPython3: z.boolean(),
  hasIptables: z.boolean(),
  hasNft: z.boolean(),
  /** Gateway clock (epoch seconds). */
  now: z.number(),
});
export type LiveState = z.infer<typeof liveStateSchema>;

/** Parse the output of `commands.readApplyState()`. */
export function parseApplyState(text: string): LiveState {
  const sysctl: Record<string, number> = {};
  let hashsize: number | null = null;
  let memTotalKb: number | null = null;
  let memAvailableKb: number | null = null;
  let slabBytes: number | null = null;
  let netns: string | null = null;
  const tools: Record<string, boolean> = {};
  let now: number | null = null;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    const [tag, a, b] = line.split(/\s+/);
    switch (tag) {
      case 'sysctl': {
        // Multi-value keys (none of ours) are skipped; ours are single integers.
        const parsed = intText.safeParse(b ?? '');
        if (a && parsed.success && line.split(/\s+/).length === 3) sysctl[a] = parsed.data;
        break;
      }
      case 'hashsize': {
        const parsed = intText.safeParse(a ?? '');
        hashsize = parsed.success ? parsed.data : null;
        break;
      }
      case 'mem':
        if (a === 'MemTotal:') memTotalKb = intText.parse(b ?? '');
        if (a === 'MemAvailable:') memAvailableKb = intText.parse(b ?? '');
        break;
      case 'slab': {
        const parsed = intText.safeParse(a ?? '');
        slabBytes = parsed.success ? parsed.data : null;
        break;
      }
      case 'netns':
        netns = a ?? null;
        break;
      case 'conntrack-tool':
      case 'python3':
      case 'iptables':
      case 'nft':
        tools[tag] = a === 'yes';
        break;
      case 'now':
        now = intText.parse(a ?? '');
        break;
      default:
        break;
    }
  }
  return liveStateSchema.parse({
    sysctl,
    hashsize,
    memTotalKb,
    memAvailableKb,
    slabBytes,
    netns,
    hasConntrack: tools['conntrack-tool'] ?? false,
    hasPython3: tools['python3'] ?? false,
    hasIptables: tools['iptables'] ?? false,
    hasNft: tools['nft'] ?? false,
    now,
  });
}

export async function readState(session: GatewaySession): Promise<LiveState> {
  const r = await run(session, commands.readApplyState(), { timeoutMs: 20_000 });
  return parseApplyState(r.stdout);
}

/** `test -w` as root (sudo when configured): the kernel's own answer for this namespace. */
export async function isWritable(session: GatewaySession, key: string): Promise<boolean> {
  const cmd = key === 'hashsize' ? commands.testWritableHashsize() : commands.testWritableSysctl(key);
  const r = await run(session, cmd, { allowFailure: true, timeoutMs: 10_000 });
  if (r.code !== 0 && r.code !== 1) throw new CommandFailedError(cmd.label, r.code, r.stderr);
  return r.code === 0;
}

/**
 * The counters, with the same parsers as the check's (verify compares like with like):
 * `conntrack -S` where conntrack-tools is installed, else (busybox gateways) the kernel's
 * /proc counters, as the check reads them then; never a call to a tool that is not there.
 */
export async function readStats(session: GatewaySession, hasConntrack: boolean): Promise<ConntrackStats | null> {
  if (hasConntrack) {
    const r = await run(session, commands.conntrackStats(), { allowFailure: true, timeoutMs: 15_000 });
    if (r.code === 0) return parseConntrackStatsCli(r.stdout);
  }
  const proc = await run(session, commands.readProcStat(), { allowFailure: true, timeoutMs: 15_000 });
  return proc.code === 0 ? parseProcStatConntrack(proc.stdout) : null;
}

export async function readCount(session: GatewaySession): Promise<number> {
  const r = await run(session, commands.countEntries(), { timeoutMs: 10_000 });
  return intText.parse(r.stdout.trim());
}

export async function readTableFullLines(session: GatewaySession): Promise<string[]> {
  const lines = async (cmd: GatewayCommand) => {
    const r = await run(session, cmd, { allowFailure: true, timeoutMs: 15_000 });
    return r.stdout.split('\n').map((l) => l.trimEnd()).filter((l) => l.length > 0);
  };
  const iso = await lines(commands.tableFullLog());
  // Nothing: none logged, or a dmesg without --time-format (busybox), which prints nothing here.
  // Snapshot and verify both take this path then, so their lines compare.
  return iso.length > 0 ? iso : lines(commands.tableFullLogPlain());
}

export async function readManaged(session: GatewaySession, which: ManagedFile): Promise<ManagedFileSnapshot> {
  const r = await run(session, commands.readManagedFile(which), { timeoutMs: 10_000 });
  const path = MANAGED_FILES[which];
  if (r.stdout.startsWith('__ABSENT__')) return { path, exists: false, content: null };
  if (!r.stdout.startsWith('__EXISTS__\n')) throw new Error(`unexpected output reading ${path}: ${r.stdout.slice(0, 80)}`);
  return { path, exists: true, content: r.stdout.slice('__EXISTS__\n'.length) };
}

/** mkdir -p, tee to a temp name, mv over the final path; then read back and compare. */
export async function writeManaged(session: GatewaySession, which: ManagedFile, content: string): Promise<void> {
  const c = commands.writeManagedFile(which, content);
  await run(session, c.mkdir, { timeoutMs: 10_000 });
  await runStdin(session, c.write, { timeoutMs: 10_000 });
  await run(session, c.install, { timeoutMs: 10_000 });
  const back = await readManaged(session, which);
  if (!back.exists || back.content !== content) {
    throw new Error(`${MANAGED_FILES[which]} read back differs from what was written`);
  }
}

export async function removeManaged(session: GatewaySession, which: ManagedFile): Promise<void> {
  await run(session, commands.removeManagedFile(which), { timeoutMs: 10_000 });
  const back = await readManaged(session, which);
  if (back.exists) throw new Error(`${MANAGED_FILES[which]} still exists after rm -f`);
}

/** Write one netfilter sysctl and read it back. Returns the value read back. */
export async function setSysctl(session: GatewaySession, key: string, value: number): Promise<number> {
  const r = await runStdin(session, commands.setSysctl(key, value), { allowFailure: true, timeoutMs: 10_000 });
  const back = await readSysctl(session, key);
  if (back !== value) {
    const why = r.stderr.trim() || (r.code !== 0 ? `exit ${r.code}` : 'the kernel kept its value');
    throw new Error(`${key}: wrote ${value}, read back ${back} (${why})`);
  }
  return back;
}

export async function readSysctl(session: GatewaySession, key: string): Promise<number> {
  const r = await run(session, commands.readSysctl(key), { timeoutMs: 10_000 });
  return intText.parse(r.stdout.trim().split(/\s+/)[0] ?? '');
}

export async function readHashsize(session: GatewaySession): Promise<number | null> {
  const r = await run(session, commands.readHashsize(), { allowFailure: true, timeoutMs: 10_000 });
  const parsed = intText.safeParse(r.stdout.trim());
  return r.code === 0 && parsed.success ? parsed.data : null;
}

export async function setHashsize(session: GatewaySession, value: number): Promise<number> {
  const r = await runStdin(session, commands.writeHashsize(value), { allowFailure: true, timeoutMs: 60_000 });
  const back = await readHashsize(session);
  if (back !== value) {
    const why = r.stderr.trim() || (r.code !== 0 ? `exit ${r.code}` : 'the kernel kept its value');
    throw new Error(`hashsize: wrote ${value}, read back ${back ?? 'nothing'} (${why})`);
  }
  return back;
}
