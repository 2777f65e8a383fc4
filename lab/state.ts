/**
 * Lab state on disk: `<root>/<lab>/state.json` plus the lab's keys, sshd config, logs and
 * mount-namespace directories. The root is shared by every process on the machine
 * (default /tmp/conntrack-ops-lab, override with CONNTRACK_OPS_LAB_DIR) so any process
 * can list, fill or tear down any lab, and slot allocation is serialised by one lock.
 */
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { pidAlive, sleep } from './exec.js';
import { hiddenToolSchema } from './hidden-tools.js';
import { LAB_NAME_RE } from './naming.js';

export function stateRoot(): string {
  return process.env.CONNTRACK_OPS_LAB_DIR ?? '/tmp/conntrack-ops-lab';
}

export function labDir(name: string): string {
  if (!LAB_NAME_RE.test(name)) throw new Error(`invalid lab name ${name}`);
  return join(stateRoot(), name);
}

const ipv4 = z.ipv4();
const ipv6 = z.ipv6();

export const labStateSchema = z.object({
  version: z.literal(1),
  name: z.string().regex(LAB_NAME_RE),
  /** 'creating' until labUp finished; a crashed labUp leaves 'creating' behind. */
  phase: z.enum(['creating', 'ready']),
  createdAt: z.string(),
  ownerPid: z.number().int(),
  /** Created by the CLI (or `keep: true`): not an orphan when its owner process is gone. */
  keep: z.boolean(),
  slot: z.number().int().min(1).max(254),
  firewall: z.enum(['iptables', 'nft']),
  /** Tools whose binaries the gateway's sshd (so the bot) cannot see (hidden-tools.ts). */
  withoutTools: z.array(hiddenToolSchema).default([]),
  /** IPv6 through the gateway (addresses in 2001:2::/48), or null for an IPv4-only lab. */
  ipv6: z
    .object({
      mode: z.enum(['routed', 'nat66']),
      labPrefix: z.string(),
      clients: z.array(z.object({ index: z.number().int(), gatewayLan: ipv6, ips: z.array(ipv6), prefix: z.number() })),
      externalAddress: ipv6,
      serverAddress: ipv6,
    })
    .nullable()
    .default(null),
  dir: z.string(),
  namespaces: z.object({ gateway: z.string(), server: z.string(), clients: z.array(z.string()) }),
  gatewayNetnsInode: z.number().int().nullable(),
  mgmt: z.object({ link: z.string(), hostAddress: ipv4, gatewayAddress: ipv4, prefix: z.number().int() }),
  clients: z.array(
    z.object({ index: z.number().int(), namespace: z.string(), gatewayLan: ipv4, ips: z.array(ipv4), prefix: z.number() }),
  ),
  externalAddress: ipv4,
  serverAddress: ipv4,
  ports: z.object({
    /** UDP echo ports on the server ([lo, hi]). */
    udpEcho: z.tuple([z.number().int(), z.number().int()]),
    /** TCP: echo then close (TIME_WAIT), hold open silently (idle ESTABLISHED), echo (keepalive). */
    tcpTimewait: z.number().int(),
    tcpIdle: z.number().int(),
    tcpEcho: z.number().int(),
  }),
  ssh: z.object({
    port: z.number().int(),
    identityFile: z.string(),
    knownHostsFile: z.string(),
    hostKeyFingerprint: z.string(),
    hostKeyLine: z.string(),
  }).nullable(),
  generator: z.enum(['c', 'node']).nullable(),
  pids: z.record(z.string(), z.number().int()),
  /** Rotating cursors so every fill creates new flows (never refreshes an older fill's). */
  cursors: z.object({
    udpWindow: z.number().int(),
    sport: z.number().int(),
    single: z.number().int(),
    tcpPort: z.number().int().default(0),
    /** Blocks of inserted ESTABLISHED entries used so far (each its own server port). */
    insertBlock: z.number().int().default(0),
  }),
});
export type LabState = z.infer<typeof labStateSchema>;

export async function readState(name: string): Promise<LabState | null> {
  let text: string;
  try {
    text = await readFile(join(labDir(name), 'state.json'), 'utf8');
  } catch {
    return null;
  }
  const parsed = labStateSchema.safeParse(JSON.parse(text));
  return parsed.success ? parsed.data : null;
}

export async function writeState(state: LabState): Promise<void> {
  const file = join(state.dir, 'state.json');
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(labStateSchema.parse(state), null, 2)}\n`, { mode: 0o600 });
  await rename(tmp, file);
}

/** Lab names that have a state directory. */
export async function listStateNames(): Promise<string[]> {
  try {
    const entries = await readdir(stateRoot(), { withFileTypes: true });
    return entries.filter((e) => e.isDirectory() && LAB_NAME_RE.test(e.name)).map((e) => e.name);
  } catch {
    return [];
  }
}

/**
 * A cross-process lock: `mkdir` is atomic. The holder's pid is written inside; a lock whose
 * holder died, or that is older than `staleMs`, is broken.
 */
export async function withLock<T>(lockName: string, fn: () => Promise<T>, opts: { timeoutMs?: number; staleMs?: number } = {}): Promise<T> {
  const root = stateRoot();
  await mkdir(root, { recursive: true, mode: 0o755 });
  const dir = join(root, `.${lockName}.lock`);
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  const staleMs = opts.staleMs ?? 60_000;
  for (;;) {
    try {
      await mkdir(dir);
      await writeFile(join(dir, 'pid'), String(process.pid));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let stale = false;
      try {
        const pid = Number(await readFile(join(dir, 'pid'), 'utf8'));
        if (Number.isInteger(pid) && pid > 0 && !pidAlive(pid)) stale = true;
      } catch {
        // pid not written yet: judge by age
      }
      try {
        const st = await stat(dir);
        if (Date.now() - st.mtimeMs > staleMs) stale = true;
      } catch {
        continue; // vanished: retry at once
      }
      if (stale) {
        await rm(dir, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for lock ${dir}`);
      await sleep(25 + Math.random() * 50);
    }
  }
  try {
    return await fn();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
