/**
 * Network-namespace NAT gateways for tests and the demo.
 *
 *   client ns (cto-XXXXXX-cN, several source IPs)
 *        │ veth lanN / eth0          198.18.S.(32(N+1))/27
 *   gateway ns (cto-XXXXXX-gw): ip_forward=1, MASQUERADE out of wan0 (iptables or nft), sshd
 *        │ veth wan0 / eth0          198.19.S.0/24   (gateway .1 = external address)
 *   server ns (cto-XXXXXX-srv): UDP echo + TCP responders
 *
 *   initial ns ── veth cto-XXXXXX-m / mgmt0 ── gateway ns   198.18.S.0/30 (SSH from the bot)
 *
 * Options: `ipv6` adds 2001:2:0:SS00::/56 (naming.ts planAddresses6) on the same links, routed
 * or NAT66 (masquerade out of wan0 with ip6tables or nft); `withoutTools` hides binaries from
 * the gateway's sshd (hidden-tools.ts): `firewall: 'nft', withoutTools: ['iptables']` is an
 * nft-only gateway.
 *
 * In the initial namespace the lab only creates the management veth, sets it up and adds
 * 198.18.S.1/30 on it. Every sysctl / iptables / nft / conntrack runs through `nsRun`
 * (namespace guard). Everything is derived from the lab name so `labDown(name)` also
 * cleans up after a crash; `labDownAll(prefix)` sweeps leftovers.
 */
import { parseConntrackStatsCli, zeroStats } from '../src/diagnostics/parsers/conntrack-stats.js';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { z } from 'zod';
import { gatewayConfigSchema, inventorySchema, type GatewayConfig } from '../src/config/inventory.js';
import { conntrackStatsSchema, type ConntrackStats } from '../src/core/model.js';
import { NETLINK_DELETE_SCRIPT } from '../src/apply/idle-delete.js';
import { LabCommandError, netnsInode, nsRun, pidAlive, run, sleep, type RunResult } from './exec.js';
import {
  labOfResource,
  LAB_PREFIX,
  MAX_CLIENTS,
  MAX_SLOT,
  MAX_SOURCES_PER_CLIENT,
  MIN_SLOT,
  normalizeLabName,
  planAddresses,
  planAddresses6,
  randomLabName,
  resourceNames,
  slotsTouchedBy,
} from './naming.js';
import { hiddenDirs, hiddenToolSchema } from './hidden-tools.js';
import { openSshMaster, prepareSsh, sshRun, startSshd, type SshMaster, type SshTarget } from './ssh.js';
import { labDir, labStateSchema, listStateNames, readState, stateRoot, withLock, writeState, type LabState } from './state.js';
import { startKeepaliveProcess, startResponders, type Keepalive, type KeepaliveOptions } from './traffic.js';

export const labUpOptionsSchema = z
  .object({
    /** `cto-<1-8 [a-z0-9]>` (or just the suffix); default `cto-<random6>`. */
    name: z.string().optional(),
    clients: z.number().int().min(1).max(MAX_CLIENTS).default(2),
    sourcesPerClient: z.number().int().min(1).max(MAX_SOURCES_PER_CLIENT).default(4),
    firewall: z.enum(['iptables', 'nft']).default('iptables'),
    /**
     * Tools the gateway does not have (for the bot: its sshd cannot see their binaries).
     * `['iptables']` with firewall nft is an nft-only gateway.
     */
    withoutTools: z.array(hiddenToolSchema).default([]),
    /** IPv6 through the gateway: 'nat66' (masquerade out of wan0), 'routed', or 'off'. */
    ipv6: z.enum(['off', 'routed', 'nat66']).default('off'),
    /** A lab that outlives its creator on purpose (the CLI sets it): never swept as an orphan. */
    keep: z.boolean().default(false),
  })
  .refine((o) => !(o.withoutTools.includes('iptables') && o.firewall === 'iptables'), {
    message: 'a gateway without iptables needs firewall nft (its NAT is done in nftables)',
    path: ['withoutTools'],
  });
export type LabUpOptions = z.input<typeof labUpOptionsSchema>;

const SSH_PORT = 22;
const PORTS = { udpEcho: [20000, 20511] as [number, number], tcpTimewait: 7000, tcpIdle: 7001, tcpEcho: 7002 };
/** Internal interface names (inside lab namespaces, so they never clash between labs). */
export const IFACES = { gatewayMgmt: 'mgmt0', gatewayWan: 'wan0', gatewayLan: (i: number) => `lan${i}`, peer: 'eth0' };

export interface Lab extends LabState {
  /** All client source addresses, client 0 first. */
  clientIps: string[];
  /** All client IPv6 source addresses (empty when the lab has no IPv6). */
  clientIps6: string[];
  /** The SSH target (OpenSSH) with the pinned host key. */
  sshTarget: SshTarget;
  /** Inventory entry for this gateway (validated by gatewayConfigSchema). */
  inventoryEntry: GatewayConfig;
  /** `gateways: { <name>: <inventoryEntry> }` as YAML. */
  inventoryYaml(gatewayName?: string): string;
  /** Writes (or merges into an existing) inventory file. */
  writeInventory(path: string, opts?: { gatewayName?: string; merge?: boolean }): Promise<void>;
}

function requireSsh(state: LabState): NonNullable<LabState['ssh']> {
  if (!state.ssh) throw new Error(`lab ${state.name} has no SSH material (labUp did not finish)`);
  return state.ssh;
}

export function toLab(state: LabState): Lab {
  const ssh = requireSsh(state);
  const inventoryEntry = gatewayConfigSchema.parse({
    host: state.mgmt.gatewayAddress,
    port: ssh.port,
    user: 'root',
    identityFile: ssh.identityFile,
    hostKey: ssh.hostKeyFingerprint,
    labels: {
      lab: state.name,
      firewall: state.firewall,
      kind: 'netns-lab',
      ...(state.withoutTools.length ? { without: state.withoutTools.join(',') } : {}),
      ...(state.ipv6 ? { ipv6: state.ipv6.mode } : {}),
    },
    managementSource: state.mgmt.hostAddress,
  });
  const inventoryYaml = (gatewayName = state.name) => stringifyYaml({ gateways: { [gatewayName]: inventoryEntry } });
  return {
    ...state,
    clientIps: state.clients.flatMap((c) => c.ips),
    clientIps6: state.ipv6?.clients.flatMap((c) => c.ips) ?? [],
    sshTarget: {
      host: state.mgmt.gatewayAddress,
      port: ssh.port,
      user: 'root',
      identityFile: ssh.identityFile,
      knownHostsFile: ssh.knownHostsFile,
    },
    inventoryEntry,
    inventoryYaml,
    async writeInventory(path, opts = {}) {
      const gatewayName = opts.gatewayName ?? state.name;
      let doc: { gateways: Record<string, unknown> } = { gateways: {} };
      if (opts.merge ?? true) {
        try {
          const parsed = inventorySchema.safeParse(parseYaml(await readFile(path, 'utf8')));
          if (parsed.success) doc = { gateways: { ...parsed.data.gateways } };
        } catch {
          // no file yet
        }
      }
      doc.gateways[gatewayName] = inventoryEntry;
      inventorySchema.parse(doc);
      const tmp = `${path}.${process.pid}.tmp`;
      await writeFile(tmp, stringifyYaml(doc), { mode: 0o644 });
      await rename(tmp, path);
    },
  };
}

/** Loads a lab created by any process (from its state directory). */
export async function openLab(name: string): Promise<Lab> {
  const labName = normalizeLabName(name);
  const state = await readState(labName);
  if (!state) throw new Error(`no lab ${labName} (no state in ${stateRoot()})`);
  if (state.phase !== 'ready') throw new Error(`lab ${labName} is not ready (phase ${state.phase}); labDown it`);
  if (netnsInode(state.namespaces.gateway) === null) throw new Error(`lab ${labName} has no gateway namespace any more; labDown it`);
  return toLab(state);
}

// ---------------------------------------------------------------------------- up

async function hostSlotsInUse(): Promise<Set<number>> {
  const used = new Set<number>();
  const addrs = await run('ip', ['-o', '-4', 'addr', 'show'], { check: false });
  for (const m of addrs.stdout.matchAll(/inet (\d+\.\d+\.\d+\.\d+\/\d+)/g)) for (const s of slotsTouchedBy(m[1]!)) used.add(s);
  const routes = await run('ip', ['-4', 'route', 'show', 'table', 'all'], { check: false });
  for (const line of routes.stdout.split('\n')) {
    const dst = line.trim().split(/\s+/)[0] ?? '';
    const word = /^(local|broadcast|unicast|blackhole|unreachable|prohibit)$/.test(dst) ? line.trim().split(/\s+/)[1] ?? '' : dst;
    if (/^\d+\.\d+\.\d+\.\d+(\/\d+)?$/.test(word)) for (const s of slotsTouchedBy(word)) used.add(s);
  }
  for (const name of await listStateNames()) {
    const st = await readState(name);
    if (st) used.add(st.slot);
  }
  return used;
}

async function ipBatch(ns: string | null, lines: string[]): Promise<void> {
  const args = ns ? ['-n', ns, '-batch', '-'] : ['-batch', '-'];
  await run('ip', args, { input: `${lines.join('\n')}\n` });
}

/**
 * Creates a lab: namespaces, veths, addresses, NAT, sshd (own mount namespace), responders.
 * Throws (after removing what it created) when anything fails.
 */
export async function labUp(options: LabUpOptions = {}): Promise<Lab> {
  const o = labUpOptionsSchema.parse(options);
  const name = o.name ? normalizeLabName(o.name) : randomLabName();
  const dir = labDir(name);
  const t0 = Date.now();
  const names = {
    gateway: resourceNames.gateway(name),
    server: resourceNames.server(name),
    clients: Array.from({ length: o.clients }, (_, i) => resourceNames.client(name, i)),
    mgmtLink: resourceNames.mgmtLink(name),
  };

  // 1. Slot + management link, under the machine-wide lock (the address is what others scan).
  let state: LabState;
  try {
    state = await withLock('alloc', async () => {
      if ((await readState(name)) || netnsInode(names.gateway) !== null) throw new Error(`lab ${name} already exists`);
      const used = await hostSlotsInUse();
      let slot = 0;
      for (let s = MIN_SLOT; s <= MAX_SLOT; s++) {
        if (!used.has(s)) {
          slot = s;
          break;
        }
      }
      if (!slot) throw new Error('no free lab slot in 198.18.0.0/15 (254 labs, or a route covers the range)');
      const plan = planAddresses(name, slot, o.clients, o.sourcesPerClient);
      const plan6 = o.ipv6 === 'off' ? null : planAddresses6(slot, o.clients, o.sourcesPerClient, o.ipv6);
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const st: LabState = labStateSchema.parse({
        version: 1,
        name,
        phase: 'creating',
        createdAt: new Date().toISOString(),
        ownerPid: process.pid,
        keep: o.keep,
        slot,
        firewall: o.firewall,
        withoutTools: o.withoutTools,
        ipv6: plan6 && {
          mode: plan6.mode,
          labPrefix: plan6.labPrefix,
          clients: plan6.clients,
          externalAddress: plan6.externalAddress,
          serverAddress: plan6.serverAddress,
        },
        dir,
        namespaces: { gateway: names.gateway, server: names.server, clients: names.clients },
        gatewayNetnsInode: null,
        mgmt: { link: names.mgmtLink, ...plan.mgmt },
        clients: plan.clients,
        externalAddress: plan.externalAddress,
        serverAddress: plan.serverAddress,
        ports: PORTS,
        ssh: null,
        generator: null,
        pids: {},
        cursors: { udpWindow: 0, sport: 0, single: 0, tcpPort: 0, insertBlock: 0 },
      });
      await writeState(st);
      await run('ip', ['netns', 'add', names.gateway]);
      // The only changes in the initial namespace: this veth end, up, with one address.
      await run('ip', ['link', 'add', names.mgmtLink, 'type', 'veth', 'peer', 'name', IFACES.gatewayMgmt, 'netns', names.gateway]);
      await ipBatch(null, [
        `link set dev ${names.mgmtLink} addrgenmode none`,
        `addr add ${plan.mgmt.hostAddress}/${plan.mgmt.prefix} dev ${names.mgmtLink}`,
        `link set dev ${names.mgmtLink} up`,
      ]);
      return st;
    });
  } catch (err) {
    if (!(err instanceof Error && err.message.endsWith('already exists'))) await labDown(name).catch(() => {});
    throw err;
  }

  try {
    // 2. Namespaces and links (created from inside the gateway namespace).
    for (const ns of [names.server, ...names.clients]) await run('ip', ['netns', 'add', ns]);
    const gwInode = netnsInode(names.gateway);
    if (gwInode === null) throw new LabCommandError(`namespace ${names.gateway} vanished`);
    state.gatewayNetnsInode = gwInode;
    const gwLines = [
      `link add ${IFACES.gatewayWan} type veth peer name ${IFACES.peer} netns ${names.server}`,
      ...state.clients.map((c) => `link add ${IFACES.gatewayLan(c.index)} type veth peer name ${IFACES.peer} netns ${c.namespace}`),
      `addr add ${state.mgmt.gatewayAddress}/${state.mgmt.prefix} dev ${IFACES.gatewayMgmt}`,
      `addr add ${state.externalAddress}/24 dev ${IFACES.gatewayWan}`,
      ...state.clients.map((c) => `addr add ${c.gatewayLan}/${c.prefix} dev ${IFACES.gatewayLan(c.index)}`),
      'link set dev lo up',
      `link set dev ${IFACES.gatewayMgmt} up`,
      `link set dev ${IFACES.gatewayWan} up`,
      ...state.clients.map((c) => `link set dev ${IFACES.gatewayLan(c.index)} up`),
      `route add default via ${state.serverAddress} dev ${IFACES.gatewayWan}`,
    ];
    const v6 = state.ipv6;
    // IPv6 addresses without duplicate address detection (each is alone on its link): usable at once.
    if (v6) {
      gwLines.push(
        `addr add ${v6.externalAddress}/64 dev ${IFACES.gatewayWan} nodad`,
        ...v6.clients.map((c) => `addr add ${c.gatewayLan}/${c.prefix} dev ${IFACES.gatewayLan(c.index)} nodad`),
        `route add default via ${v6.serverAddress} dev ${IFACES.gatewayWan}`,
      );
    }
    await ipBatch(names.gateway, gwLines);
    await ipBatch(names.server, [
      'link set dev lo up',
      `addr add ${state.serverAddress}/24 dev ${IFACES.peer}`,
      ...(v6 ? [`addr add ${v6.serverAddress}/64 dev ${IFACES.peer} nodad`] : []),
      `link set dev ${IFACES.peer} up`,
      // Routed IPv6: the server answers the clients' own addresses through the gateway.
      ...(v6?.mode === 'routed' ? [`route add ${v6.labPrefix} via ${v6.externalAddress} dev ${IFACES.peer}`] : []),
    ]);
    await Promise.all(
      state.clients.map((c) => {
        const c6 = v6?.clients[c.index];
        return ipBatch(c.namespace, [
          'link set dev lo up',
          ...c.ips.map((ip) => `addr add ${ip}/${c.prefix} dev ${IFACES.peer}`),
          ...(c6 ? c6.ips.map((ip) => `addr add ${ip}/${c6.prefix} dev ${IFACES.peer} nodad`) : []),
          `link set dev ${IFACES.peer} up`,
          `route add default via ${c.gatewayLan} dev ${IFACES.peer}`,
          ...(c6 ? [`route add default via ${c6.gatewayLan} dev ${IFACES.peer}`] : []),
        ]);
      }),
    );

    // 3. Gateway: forwarding + MASQUERADE, inside the gateway namespace only.
    await nsRun(names.gateway, ['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    const fwd = (await nsRun(names.gateway, ['cat', '/proc/sys/net/ipv4/ip_forward'])).stdout.trim();
    if (fwd !== '1') throw new LabCommandError(`ip_forward is ${fwd} in ${names.gateway}`);
    if (v6) {
      await nsRun(names.gateway, ['sysctl', '-qw', 'net.ipv6.conf.all.forwarding=1']);
      const fwd6 = (await nsRun(names.gateway, ['cat', '/proc/sys/net/ipv6/conf/all/forwarding'])).stdout.trim();
      if (fwd6 !== '1') throw new LabCommandError(`ipv6 forwarding is ${fwd6} in ${names.gateway}`);
    }
    const nat66 = v6?.mode === 'nat66';
    // Routed IPv6: a stateful forward rule, as routed gateways have. Without any IPv6 rule that
    // needs conntrack the kernel does not track IPv6 in this namespace at all (measured: 0
    // entries for 1,200 routed IPv6 flows with only the IPv4 NAT in place).
    const routed6 = v6?.mode === 'routed';
    if (o.firewall === 'iptables') {
      await nsRun(names.gateway, ['iptables', '-t', 'nat', '-A', 'POSTROUTING', '-o', IFACES.gatewayWan, '-j', 'MASQUERADE']);
      if (nat66) await nsRun(names.gateway, ['ip6tables', '-t', 'nat', '-A', 'POSTROUTING', '-o', IFACES.gatewayWan, '-j', 'MASQUERADE']);
      if (routed6) await nsRun(names.gateway, ['ip6tables', '-A', 'FORWARD', '-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'ACCEPT']);
    } else {
      const natTable = (family: 'ip' | 'ip6') => [
        `table ${family} nat {`,
        '  chain postrouting {',
        '    type nat hook postrouting priority srcnat; policy accept;',
        `    oifname "${IFACES.gatewayWan}" masquerade`,
        '  }',
        '}',
      ];
      const forward6 = [
        'table ip6 filter {',
        '  chain forward {',
        '    type filter hook forward priority filter; policy accept;',
        '    ct state established,related accept',
        '  }',
        '}',
      ];
      await nsRun(names.gateway, ['nft', '-f', '-'], {
        input: [...natTable('ip'), ...(nat66 ? natTable('ip6') : []), ...(routed6 ? forward6 : []), ''].join('\n'),
      });
    }
    // Clients: drop the UDP echo replies (flows come from a raw socket: no socket to receive
    // them), and the FIN/RST of "idle" connections so the gateway keeps them ESTABLISHED.
    // The server drops FIN/RST of idle connections too (responder restarts, teardown).
    const [udpLo, udpHi] = PORTS.udpEcho;
    const clientRules = [
      'table inet cto_lab {',
      '  chain input {',
      '    type filter hook input priority filter; policy accept;',
      `    udp sport ${udpLo}-${udpHi} drop`,
      '  }',
      '  chain output {',
      '    type filter hook output priority filter; policy accept;',
      `    tcp dport ${PORTS.tcpIdle} tcp flags & (fin | rst) != 0 drop`,
      '  }',
      '}',
      '',
    ].join('\n');
    const serverRules = [
      'table inet cto_lab {',
      '  chain output {',
      '    type filter hook output priority filter; policy accept;',
      `    tcp sport ${PORTS.tcpIdle} tcp flags & (fin | rst) != 0 drop`,
      '  }',
      '}',
      '',
    ].join('\n');
    await Promise.all([
      ...state.clients.map((c) => nsRun(c.namespace, ['nft', '-f', '-'], { input: clientRules })),
      nsRun(names.server, ['nft', '-f', '-'], { input: serverRules }),
    ]);

    // 4. sshd (own mount namespace) and the responders, in parallel.
    const material = await prepareSsh(dir, name, state.mgmt.gatewayAddress, SSH_PORT);
    const [sshdPid, responders] = await Promise.all([
      startSshd({
        dir,
        gatewayNs: names.gateway,
        gatewayInode: gwInode,
        material,
        address: state.mgmt.gatewayAddress,
        port: SSH_PORT,
        hide: await hiddenDirs(o.withoutTools),
      }),
      startResponders(names.server, dir, PORTS, { ipv6: v6 !== null }),
    ]);
    state.pids = { sshd: sshdPid, ...responders.pids };
    state.generator = responders.generator;
    state.ssh = {
      port: SSH_PORT,
      identityFile: material.identityFile,
      knownHostsFile: material.knownHostsFile,
      hostKeyFingerprint: material.hostKeyFingerprint,
      hostKeyLine: material.hostKeyLine,
    };
    state.phase = 'ready';
    await writeState(state);
    await writeFile(join(dir, 'timing.json'), JSON.stringify({ labUpMs: Date.now() - t0 }));
    return toLab(state);
  } catch (err) {
    await labDown(name).catch(() => {});
    throw err;
  }
}

// -------------------------------------------------------------------------- down

async function listNetns(): Promise<string[]> {
  const res = await run('ip', ['netns', 'list'], { check: false });
  return res.stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter(Boolean);
}

async function listHostLinks(): Promise<string[]> {
  const res = await run('ip', ['-o', 'link', 'show'], { check: false });
  const names: string[] = [];
  for (const line of res.stdout.split('\n')) {
    const m = /^\d+:\s+([^:@\s]+)/.exec(line);
    if (m) names.push(m[1]!);
  }
  return names;
}

async function netnsPids(ns: string): Promise<number[]> {
  const res = await run('ip', ['netns', 'pids', ns], { check: false });
  return res.stdout
    .split(/\s+/)
    .map(Number)
    .filter((n) => Number.isInteger(n) && n > 1 && n !== process.pid);
}

/** SIGKILLs every process in namespace `ns` until none is left (sshd may fork meanwhile). */
async function killNetnsProcesses(ns: string): Promise<number> {
  let killed = 0;
  for (let round = 0; round < 50; round++) {
    const pids = await netnsPids(ns);
    if (!pids.length) return killed;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
        killed++;
      } catch {
        // already gone
      }
    }
    await sleep(20);
  }
  const left = await netnsPids(ns);
  if (left.length) throw new LabCommandError(`processes survive in ${ns}: ${left.join(' ')}`);
  return killed;
}

/** Kills `ssh -M` processes whose ControlPath lies in this lab's state directory. */
async function killSshMasters(name: string): Promise<number> {
  const needle = `ControlPath=${labDir(name)}/`;
  let killed = 0;
  const entries = await readdir('/proc').catch(() => [] as string[]);
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    const pid = Number(e);
    if (pid === process.pid) continue;
    const cmd = await readFile(`/proc/${e}/cmdline`, 'utf8').catch(() => '');
    const argv = cmd.split('\0');
    if ((argv[0] === 'ssh' || argv[0]?.endsWith('/ssh')) && argv.some((a) => a.startsWith(needle))) {
      try {
        process.kill(pid, 'SIGKILL');
        killed++;
      } catch {
        // gone
      }
    }
  }
  return killed;
}

export interface LabDownResult {
  name: string;
  namespaces: string[];
  links: string[];
  killed: number;
  stateDir: boolean;
}

/**
 * Removes exactly this lab: kills the processes of its namespaces, deletes the namespaces,
 * its management veth and its state directory. Idempotent; needs only the name.
 */
export async function labDown(labOrName: Lab | LabState | string): Promise<LabDownResult> {
  const name = normalizeLabName(typeof labOrName === 'string' ? labOrName : labOrName.name);
  const namespaces = (await listNetns()).filter((ns) => labOfResource(ns) === name);
  let killed = 0;
  for (const ns of namespaces) killed += await killNetnsProcesses(ns);
  // OpenSSH ControlMaster processes (initial namespace) that talk to this lab's gateway.
  killed += await killSshMasters(name);
  for (const ns of namespaces) {
    const res = await run('ip', ['netns', 'del', ns], { check: false });
    if (res.exitCode !== 0 && netnsInode(ns) !== null) throw new LabCommandError(`ip netns del ${ns}: ${res.stderr.trim()}`, res);
  }
  const links = (await listHostLinks()).filter((l) => labOfResource(l) === name);
  for (const link of links) {
    const res = await run('ip', ['link', 'del', link], { check: false });
    if (res.exitCode !== 0 && (await listHostLinks()).includes(link)) {
      throw new LabCommandError(`ip link del ${link}: ${res.stderr.trim()}`, res);
    }
  }
  let stateDir = false;
  try {
    // A fill lock left by a crashed process, then the state directory (last: its presence
    // is what marks a lab as ours for labDownAll).
    await rm(join(stateRoot(), `.fill-${name}.lock`), { recursive: true, force: true });
    await rm(labDir(name), { recursive: true, force: true });
    stateDir = true;
  } catch (err) {
    throw new LabCommandError(`cannot remove ${labDir(name)}: ${(err as Error).message}`);
  }
  return { name, namespaces, links, killed, stateDir };
}

export interface LabListing {
  name: string;
  phase: LabState['phase'] | 'unknown';
  namespaces: string[];
  links: string[];
  hasState: boolean;
  ownerPid: number | null;
  ownerAlive: boolean;
  keep: boolean;
  createdAt: string | null;
  gateway: string | null;
}

/** Every lab on this machine, from state directories, namespaces and host links. */
export async function listLabs(prefix = LAB_PREFIX): Promise<LabListing[]> {
  const [nss, links, states] = await Promise.all([listNetns(), listHostLinks(), listStateNames()]);
  const names = new Set<string>();
  for (const r of [...nss, ...links]) {
    const lab = labOfResource(r);
    if (lab) names.add(lab);
  }
  for (const s of states) names.add(s);
  const out: LabListing[] = [];
  for (const name of [...names].filter((n) => n.startsWith(prefix)).sort()) {
    const st = await readState(name);
    out.push({
      name,
      phase: st?.phase ?? 'unknown',
      namespaces: nss.filter((n) => labOfResource(n) === name),
      links: links.filter((l) => labOfResource(l) === name),
      hasState: st !== null,
      ownerPid: st?.ownerPid ?? null,
      ownerAlive: st ? pidAlive(st.ownerPid) : false,
      keep: st?.keep ?? false,
      createdAt: st?.createdAt ?? null,
      gateway: st ? `root@${st.mgmt.gatewayAddress}` : null,
    });
  }
  return out;
}

/**
 * Tears down every lab whose name starts with `prefix`. With `onlyOrphans`, keeps labs that
 * are marked `keep` or whose creating process is still alive (safe while other test files
 * and helpers run labs concurrently).
 */
export async function labDownAll(prefix = LAB_PREFIX, opts: { onlyOrphans?: boolean } = {}): Promise<LabDownResult[]> {
  if (!prefix.startsWith(LAB_PREFIX)) throw new Error(`prefix must start with ${LAB_PREFIX}`);
  const labs = await listLabs(prefix);
  const out: LabDownResult[] = [];
  for (const l of labs) {
    // Only labs this module created (they always have a state directory until the very end of
    // labDown); other tools on this machine use the cto- prefix for namespaces too.
    if (!l.hasState) continue;
    if (opts.onlyOrphans && l.hasState && (l.keep || l.ownerAlive)) continue;
    out.push(await labDown(l.name));
  }
  return out;
}

// ------------------------------------------------------------------ gateway access

/** Runs argv in the lab's gateway namespace (directly, not over SSH). */
export function gatewayExec(lab: Lab | LabState, argv: string[], opts: { input?: string; timeoutMs?: number; check?: boolean } = {}): Promise<RunResult> {
  return nsRun(lab.namespaces.gateway, argv, opts);
}

export async function conntrackCount(lab: Lab | LabState): Promise<number> {
  const r = await gatewayExec(lab, ['cat', '/proc/sys/net/netfilter/nf_conntrack_count']);
  return Number(r.stdout.trim());
}

/**
 * Deletes every entry without [ASSURED] (the ones the kernel may evict for a new flow when
 * the table is full) by exact tuple over netlink, with the apply engine's deleter. Returns
 * how many there were and how many went.
 */
export async function deleteUnassured(lab: Lab | LabState): Promise<{ unassured: number; deleted: number }> {
  const list = await gatewayExec(lab, ['sh', '-c', 'conntrack -L 2>/dev/null | grep -v "\\[ASSURED\\]"'], { check: false });
  const tuples = list.stdout.split('\n').flatMap((line) => {
    const m = /^\S+\s+(\d+)\s.*?\bsrc=(\S+) dst=(\S+) sport=(\d+) dport=(\d+)/.exec(line);
    return m ? [`${m[1]} ${m[2]} ${m[3]} ${m[4]} ${m[5]} - -`] : [];
  });
  const unassured = list.stdout.split('\n').filter((l) => l.trim()).length;
  if (tuples.length === 0) return { unassured, deleted: 0 };
  const r = await gatewayExec(lab, ['python3', '-I', '-c', NETLINK_DELETE_SCRIPT], { input: tuples.join('\n') + '\n' });
  return { unassured, deleted: Number(/deleted=(\d+)/.exec(r.stdout)?.[1] ?? 0) };
}

export async function conntrackMax(lab: Lab | LabState): Promise<number> {
  const r = await gatewayExec(lab, ['cat', '/proc/sys/net/netfilter/nf_conntrack_max']);
  return Number(r.stdout.trim());
}

/** `conntrack -S` summed over CPUs. */
export async function conntrackStats(lab: Lab | LabState): Promise<ConntrackStats> {
  const r = await gatewayExec(lab, ['conntrack', '-S']);
  return parseConntrackStats(r.stdout);
}

export function parseConntrackStats(text: string): ConntrackStats {
  return parseConntrackStatsCli(text) ?? zeroStats();
}

/**
 * Empties the table of the lab's traffic: every entry to or from the server. The SSH
 * sessions to the gateway keep their entries: after a plain `conntrack -F` an open session
 * needs a new entry for its next packet, and a fill that starts at once can take the last
 * slot first, so the bot's warm session hangs (seen: "No response from server").
 * Costs two table walks (~2 s at 262,144 entries, `-F` takes 0.25 s).
 */
export async function flushTable(lab: Lab | LabState): Promise<void> {
  await gatewayExec(lab, ['conntrack', '-D', '-d', lab.serverAddress], { check: false });
  await gatewayExec(lab, ['conntrack', '-D', '-s', lab.serverAddress], { check: false });
  for (let i = 0; i < 50 && (await conntrackCount(lab)) > 50; i++) await sleep(20);
}

/** Kernel log lines "table full in netns <this gateway's inode>" (the log is global). */
export async function tableFullLines(lab: Lab | LabState): Promise<string[]> {
  const r = await run('dmesg', [], { check: false });
  const inode = lab.gatewayNetnsInode;
  return r.stdout.split('\n').filter((l) => l.includes('table full') && (inode === null || l.includes(`netns ${inode},`)));
}

/** SSH to the gateway with OpenSSH (pinned host key, the lab's key). */
export function sshExec(lab: Lab, command: string, opts: { timeoutMs?: number; connectTimeoutS?: number; input?: string } = {}): Promise<RunResult> {
  return sshRun(lab.sshTarget, command, opts);
}

/**
 * Opens an OpenSSH master connection to the gateway, to keep using it while the table is
 * full (new connections are refused then). Close it before labDown (labDown kills it anyway).
 */
export function openGatewayMaster(lab: Lab): Promise<SshMaster> {
  return openSshMaster(lab.sshTarget, join(lab.dir, `ssh-master-${process.pid}-${Date.now() % 100000}.sock`));
}

/**
 * Keeps `count` TCP connections ACTIVE through the NAT (a byte each way every intervalMs) in
 * client `clientIndex`, while other entries stay idle. Stops by itself after durationMs.
 */
export function startKeepalive(lab: Lab, opts: KeepaliveOptions & { clientIndex?: number; srcs?: string[] } = {}): Promise<Keepalive> {
  const client = lab.clients[opts.clientIndex ?? 0];
  if (!client) throw new Error(`lab ${lab.name} has no client ${opts.clientIndex}`);
  return startKeepaliveProcess(
    {
      ns: client.namespace,
      dst: lab.serverAddress,
      port: lab.ports.tcpEcho,
      srcs: opts.srcs ?? client.ips,
      logFile: join(lab.dir, `keepalive-${Date.now()}.log`),
    },
    opts,
  );
}
