/**
 * Scenarios: fill a lab gateway's REAL conntrack table with real traffic through its NAT.
 * Every scenario is bounded in flows and time and stops by itself. They combine: the
 * demo uses ['saturated', 'heavy-hitter'].
 *
 *   saturated        UDP flows (reply + a packet >= 2 s later: ASSURED) up to max (topped up
 *                    while earlier entries expire),
 *                    then bursts of new flows until the kernel drops (conntrack -S drop) and
 *                    logs "table full in netns <inode>".
 *   heavy-hitter     one client IP owns `heavyHitterShare` of the UDP flows (alone: 20,000).
 *   timewait         TCP connections closed through the NAT (TIME_WAIT) + idle ESTABLISHED.
 *   idle-established only idle ESTABLISHED TCP entries (5-day timeout, no packets after fill).
 *   dead-established ESTABLISHED entries of connections that died `deadIdleSeconds` ago without
 *                    a FIN (the classic leak under the 5-day timeout): written with
 *                    `conntrack -I` (NATed reply tuple, ASSURED, remaining timer = timeout -
 *                    idle), since a lab cannot wait 25 h. Nothing answers for them any more.
 *   port-exhaustion  all clients to ONE server ip:port through the one external IP: 64,512
 *                    entries, then `portExhaustionExtra` flows fail with insert_failed.
 *   healthy          a few hundred mixed entries (UDP assured + unreplied, TCP both states).
 */
import { spawn } from 'node:child_process';
import { readlink, rm, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { z } from 'zod';
import type { ConntrackStats } from '../src/core/model.js';
import { netnsGuard, netnsInode, sleep } from './exec.js';
import { conntrackCount, conntrackMax, conntrackStats, deleteUnassured, gatewayExec, openLab, tableFullLines, type Lab } from './lab.js';
import { readState, withLock, writeState, type LabState } from './state.js';
import { splitByFlows, tcpRun, udpFlood, udpFloodHold, type FlowGroup, type FloodOutput, type GeneratorKind } from './traffic.js';

export const SCENARIOS = ['saturated', 'heavy-hitter', 'timewait', 'idle-established', 'dead-established', 'port-exhaustion', 'healthy'] as const;
export const scenarioSchema = z.enum(SCENARIOS);
export type ScenarioName = z.infer<typeof scenarioSchema>;

export const fillOptionsSchema = z.object({
  heavyHitterShare: z.number().min(0.05).max(1).default(0.6),
  /** The heavy hitter (must be a client IP of the lab); default the third client IP. */
  heavyHitterIp: z.ipv4().optional(),
  /** UDP flows of `heavy-hitter` when not combined with `saturated`. */
  heavyHitterFlows: z.number().int().min(1).max(250_000).default(20_000),
  /** `timewait`: connections closed through the NAT. */
  timewait: z.number().int().min(0).max(60_000).default(3000),
  /** `timewait` and `idle-established`: idle ESTABLISHED connections. */
  established: z.number().int().min(0).max(60_000).default(1000),
  /** `dead-established`: entries of dead connections, and how long ago they went quiet. */
  dead: z.number().int().min(1).max(25_000).default(20_000),
  deadIdleSeconds: z.number().int().min(60).max(400_000).default(90_000),
  /** `port-exhaustion`: flows attempted after the 64,512 ports are taken. */
  portExhaustionExtra: z.number().int().min(0).max(100_000).default(4096),
  healthy: z
    .object({
      udp: z.number().int().min(0).max(20_000).default(400),
      unreplied: z.number().int().min(0).max(20_000).default(50),
      established: z.number().int().min(0).max(20_000).default(150),
      timewait: z.number().int().min(0).max(20_000).default(100),
    })
    .default({ udp: 400, unreplied: 50, established: 150, timewait: 100 }),
  /**
   * `saturated`: room left by the assured fill, taken by the first overflow flows. Keep 0:
   * unassured entries are evicted by the kernel's gc once the table is > 95 % full (and
   * early-dropped by new connections), which reopens the table to new SSH connections.
   */
  saturatedMargin: z.number().int().min(0).max(50_000).default(0),
  overflowBurst: z.number().int().min(100).max(100_000).default(4096),
  /** `saturated`: give up waiting for drops + kernel log lines after this long. */
  overflowTimeoutMs: z.number().int().min(1000).max(120_000).default(15_000),
  /**
   * `saturated`: keep the table saturated this long after the fill (0 = no): a detached
   * generator re-sends the assured flows every 60 s (they would expire after 120 s) and the
   * overflow flows every second (drops and log lines continue). Ended by labDown/stopHold.
   */
  holdMs: z.number().int().min(0).max(3_600_000).default(0),
  /** Overall bound for the fill. */
  timeoutMs: z.number().int().min(5000).max(600_000).default(180_000),
});
export type FillOptions = z.input<typeof fillOptionsSchema>;

export interface FillPhase {
  name: string;
  ms: number;
  flows?: number;
  detail?: string;
}

export interface FillResult {
  lab: string;
  scenarios: ScenarioName[];
  generator: GeneratorKind | null;
  startedAt: string;
  durationMs: number;
  phases: FillPhase[];
  before: { count: number; stats: ConntrackStats };
  after: { count: number; max: number; stats: ConntrackStats };
  /** Counter deltas over the fill (conntrack -S, summed over CPUs). */
  delta: { drop: number; earlyDrop: number; insertFailed: number };
  /** New "table full in netns <gateway inode>" kernel log lines during the fill. */
  tableFullLines: number;
  heavyHitter?: { ip: string; flows: number; share: number };
  portExhaustion?: { dst: string; dport: number; proto: 'udp'; externalAddress: string; uniqueFlows: number; extraFlows: number };
  tcp?: { timewait: number; established: number; failed: number };
  dead?: { entries: number; idleSeconds: number; remainingSeconds: number; port: number };
  udpFlows: number;
  /** `saturated` with holdMs: the detached generators keeping it full, and until when. */
  hold?: { pids: number[]; until: string };
}

const UDP_WINDOW = 64;
const UDP_WINDOWS = 7; // 20000..20447; 20500..20511 are the single-port (exhaustion) targets
const SINGLE_PORTS = 12;
const NO_LISTENER_BASE = 21000; // overflow / unreplied flows: nobody answers there

function sourcesByClient(lab: Lab): Map<string, string> {
  const m = new Map<string, string>();
  for (const c of lab.clients) for (const ip of c.ips) m.set(ip, c.namespace);
  return m;
}

/**
 * Runs the floods of every client namespace concurrently (groups are split by their source).
 * The kernel does the work on the sending CPU, so big fills are cut into one part per CPU,
 * balanced over all clients (a heavy hitter's flows too).
 */
async function floodAll(lab: Lab, groups: FlowGroup[], opts: { passes: number; timeoutMs: number }): Promise<FloodOutput[]> {
  const owner = sourcesByClient(lab);
  const perNs = new Map<string, FlowGroup[]>();
  let total = 0;
  for (const g of groups) {
    if (g.count <= 0) continue;
    const ns = owner.get(g.src);
    if (!ns) throw new Error(`${g.src} is not a client address of lab ${lab.name}`);
    perNs.set(ns, [...(perNs.get(ns) ?? []), g]);
    total += g.count;
  }
  const cpus = Math.max(1, Math.min(availableParallelism(), 8));
  const perPart = Math.max(20_000, Math.ceil(total / cpus));
  const jobs = [...perNs].flatMap(([ns, gs]) => splitByFlows(gs, perPart).map((part) => [ns, part] as const));
  return Promise.all(jobs.map(([ns, part]) => udpFlood(ns, lab.serverAddress, part, { passes: opts.passes, timeoutMs: opts.timeoutMs })));
}

/**
 * `conntrack -I` of `count` ESTABLISHED entries as the kernel keeps them for NATed
 * connections that went quiet `idleSeconds` ago: client ip:port -> server:tcpIdle, reply to
 * the external address, ASSURED, remaining timer = ESTABLISHED timeout - idle.
 */
async function insertDeadEstablished(lab: Lab, count: number, idleSeconds: number): Promise<NonNullable<FillResult['dead']>> {
  const timeout = Number((await gatewayExec(lab, ['cat', '/proc/sys/net/netfilter/nf_conntrack_tcp_timeout_established'])).stdout.trim());
  const remaining = timeout - idleSeconds;
  if (!(remaining > 0)) throw new Error(`dead-established: idle ${idleSeconds} s is not below the ESTABLISHED timeout ${timeout} s`);
  const port = lab.ports.tcpIdle;
  const ips = lab.clientIps;
  const lines = Array.from({ length: count }, (_, i) => {
    // Client ports 33000+ (real lab connections use 10000-32767); NAT ports 40000+ (unique).
    const sport = 33_000 + Math.floor(i / ips.length);
    return `-I -p tcp -s ${ips[i % ips.length]} -d ${lab.serverAddress} --sport ${sport} --dport ${port} -r ${lab.serverAddress} -q ${lab.externalAddress} --reply-port-src ${port} --reply-port-dst ${40_000 + i} --state ESTABLISHED -u ASSURED,SEEN_REPLY -t ${remaining}`;
  });
  // conntrack -R reads a file (stdin is a socketpair under Node, which it cannot open).
  const file = join(lab.dir, 'dead-established.conntrack');
  await writeFile(file, lines.join('\n') + '\n');
  try {
    await gatewayExec(lab, ['conntrack', '-R', file]);
  } finally {
    await rm(file, { force: true });
  }
  return { entries: count, idleSeconds, remainingSeconds: remaining, port };
}

/**
 * Kernel-log lines in `now` that were not in `before` (each carries its timestamp). Not a
 * difference of counts: once the ring buffer is full, old lines of the same netns inode (it
 * is reused by later labs) rotate out as new ones arrive, and the count can stay put (seen
 * on this machine after a day of labs: 1,400 "table full" lines in the buffer).
 */
function linesSince(before: readonly string[], now: readonly string[]): number {
  const seen = new Set(before);
  return now.filter((l) => !seen.has(l)).length;
}

function splitEven(total: number, parts: number): number[] {
  const base = Math.floor(total / parts);
  return Array.from({ length: parts }, (_, i) => base + (i < total - base * parts ? 1 : 0));
}

/** Splits `total` flows over the client IPs; with a hitter, it gets `share` of them. */
function weightedCounts(ips: string[], total: number, hitter?: { ip: string; share: number }): Map<string, number> {
  const out = new Map<string, number>();
  if (!hitter || ips.length === 1) {
    splitEven(total, ips.length).forEach((n, i) => out.set(ips[i]!, n));
    if (hitter && ips.length === 1) out.set(ips[0]!, total);
    return out;
  }
  const mine = Math.round(total * hitter.share);
  const others = ips.filter((ip) => ip !== hitter.ip);
  out.set(hitter.ip, mine);
  splitEven(total - mine, others.length).forEach((n, i) => out.set(others[i]!, n));
  return out;
}

/** Fresh UDP flow groups in a new port window (never refreshing an earlier fill's flows). */
function udpGroups(state: LabState, counts: Map<string, number>, window: { lo: number; n: number }): FlowGroup[] {
  const groups: FlowGroup[] = [];
  let j = 0;
  let maxSports = 0;
  for (const [src, count] of counts) {
    if (count <= 0) continue;
    groups.push({ src, count, sportOffset: (state.cursors.sport + j * 9973) % 64512, dportLo: window.lo, dportCount: window.n });
    maxSports = Math.max(maxSports, Math.ceil(count / window.n));
    j++;
  }
  state.cursors.sport = (state.cursors.sport + maxSports + 1) % 64512;
  return groups;
}

function nextUdpWindow(state: LabState): { lo: number; n: number } {
  const w = state.cursors.udpWindow % UDP_WINDOWS;
  state.cursors.udpWindow++;
  return { lo: state.ports.udpEcho[0] + w * UDP_WINDOW, n: UDP_WINDOW };
}

function sumFlows(outs: FloodOutput[]): number {
  return outs.reduce((s, o) => s + o.flows, 0);
}

/**
 * Fills the lab gateway's conntrack table with real traffic. `scenario` may be one name or
 * several (combined). Bounded: every generator stops by itself; the whole fill by timeoutMs.
 */
export async function fillScenario(
  labOrName: Lab | string,
  scenario: ScenarioName | ScenarioName[],
  options: FillOptions = {},
): Promise<FillResult> {
  const lab = typeof labOrName === 'string' ? await openLab(labOrName) : labOrName;
  const scenarios = [...new Set(z.array(scenarioSchema).min(1).parse(Array.isArray(scenario) ? scenario : [scenario]))];
  const o = fillOptionsSchema.parse(options);
  const set = new Set(scenarios);

  return withLock(`fill-${lab.name}`, async () => {
    const state = await readState(lab.name);
    if (!state) throw new Error(`lab ${lab.name} has no state`);
    const t0 = Date.now();
    const deadline = t0 + o.timeoutMs;
    const left = () => {
      const ms = deadline - Date.now();
      if (ms <= 0) throw new Error(`fill of ${lab.name} exceeded ${o.timeoutMs} ms`);
      return ms;
    };
    const phases: FillPhase[] = [];
    const phase = async <T>(name: string, fn: () => Promise<T>, describe: (r: T) => Omit<FillPhase, 'name' | 'ms'>): Promise<T> => {
      const s = Date.now();
      const r = await fn();
      phases.push({ name, ms: Date.now() - s, ...describe(r) });
      return r;
    };
    const [count0, stats0, lines0] = await Promise.all([conntrackCount(lab), conntrackStats(lab), tableFullLines(lab)]);
    const max = await conntrackMax(lab);
    let generator: GeneratorKind | null = null;
    let udpFlows = 0;
    const noteFlood = (outs: FloodOutput[]) => {
      for (const out of outs) generator = out.generator;
      udpFlows += sumFlows(outs);
      return outs;
    };
    const result: Partial<FillResult> = {};

    // --- Dead ESTABLISHED connections, first: their NAT ports (40000+) are then taken, so the
    // NAT never hands one to a real connection of this fill (`conntrack -I` would clash).
    if (set.has('dead-established')) {
      result.dead = await phase('dead-established', () => insertDeadEstablished(lab, o.dead, o.deadIdleSeconds), (d) => ({
        flows: d.entries,
        detail: `idle ${d.idleSeconds} s, ${d.remainingSeconds} s left on their timers`,
      }));
    }

    // --- TCP: TIME_WAIT and idle ESTABLISHED (before the table fills up).
    let tw = 0;
    let est = 0;
    if (set.has('timewait')) {
      tw += o.timewait;
      est += o.established;
    }
    if (set.has('idle-established')) est += o.established;
    if (set.has('healthy')) {
      tw += o.healthy.timewait;
      est += o.healthy.established;
    }
    if (tw + est > 0) {
      const tcp = { timewait: 0, established: 0, failed: 0 };
      const perClient = (total: number) => splitEven(total, lab.clients.length);
      const twSplit = perClient(tw);
      const estSplit = perClient(est);
      // Unique local ports (10000..32767, below the ephemeral range) per connection, so
      // every connection is its own entry and later fills never hit an earlier fill's tuples.
      const lportBase = (count: number, srcs: number) => {
        const need = Math.ceil(count / srcs) + 1;
        if (state.cursors.tcpPort + need > 22_000) state.cursors.tcpPort = 0;
        const base = 10_000 + state.cursors.tcpPort;
        state.cursors.tcpPort += need;
        return base;
      };
      await phase(
        'tcp',
        () =>
          Promise.all(
            lab.clients.flatMap((c, i) => [
              tcpRun(c.namespace, 'timewait', {
                dst: lab.serverAddress,
                port: lab.ports.tcpTimewait,
                count: twSplit[i] ?? 0,
                srcs: c.ips,
                lportBase: lportBase(twSplit[i] ?? 0, c.ips.length),
                timeoutMs: left(),
              }),
              tcpRun(c.namespace, 'idle', {
                dst: lab.serverAddress,
                port: lab.ports.tcpIdle,
                count: estSplit[i] ?? 0,
                srcs: c.ips,
                lportBase: lportBase(estSplit[i] ?? 0, c.ips.length),
                timeoutMs: left(),
              }),
            ]),
          ),
        (outs) => {
          for (const out of outs) {
            if (out.mode === 'timewait') tcp.timewait += out.ok;
            else tcp.established += out.ok;
            tcp.failed += out.failed;
          }
          return { flows: tcp.timewait + tcp.established, detail: `timewait=${tcp.timewait} established=${tcp.established} failed=${tcp.failed}` };
        },
      );
      result.tcp = tcp;
    }

    // --- Port exhaustion: everyone to one server ip:port through one external address.
    if (set.has('port-exhaustion')) {
      const dport = 20500 + (state.cursors.single % SINGLE_PORTS);
      state.cursors.single++;
      const ips = lab.clientIps;
      const chunks = splitEven(64512, ips.length);
      const offsets = chunks.map((_, i) => chunks.slice(0, i).reduce((a, b) => a + b, 0));
      const unique: FlowGroup[] = ips.map((src, i) => ({ src, count: chunks[i]!, sportOffset: offsets[i]!, dportLo: dport, dportCount: 1 }));
      await phase('port-exhaustion', () => floodAll(lab, unique, { passes: 2, timeoutMs: left() }).then(noteFlood), (outs) => ({
        flows: sumFlows(outs),
        detail: `unique source ports to ${lab.serverAddress}:${dport}`,
      }));
      const extra = splitEven(o.portExhaustionExtra, ips.length);
      const extras: FlowGroup[] = ips.map((src, i) => ({
        src,
        count: extra[i]!,
        sportOffset: offsets[(i + 1) % ips.length]!,
        dportLo: dport,
        dportCount: 1,
      }));
      if (o.portExhaustionExtra > 0) {
        await phase('port-exhaustion-extra', () => floodAll(lab, extras, { passes: 1, timeoutMs: left() }).then(noteFlood), (outs) => ({
          flows: sumFlows(outs),
          detail: 'source ports already mapped by another client: no free NAT port',
        }));
      }
      result.portExhaustion = {
        dst: lab.serverAddress,
        dport,
        proto: 'udp',
        externalAddress: lab.externalAddress,
        uniqueFlows: 64512,
        extraFlows: o.portExhaustionExtra,
      };
    }

    // --- Heavy hitter and/or saturation: assured UDP flows.
    const hh = set.has('heavy-hitter');
    const sat = set.has('saturated');
    const assuredGroups: FlowGroup[] = [];
    let overflowGroups: FlowGroup[] = [];
    let topUp: () => Promise<void> = async () => {};
    if (hh || sat) {
      const hitterIp = o.heavyHitterIp ?? lab.clientIps[Math.min(2, lab.clientIps.length - 1)]!;
      if (!lab.clientIps.includes(hitterIp)) throw new Error(`${hitterIp} is not a client address of lab ${lab.name}`);
      const hitter = hh ? { ip: hitterIp, share: o.heavyHitterShare } : undefined;
      const hitterFlows = { n: 0 };
      const round = async (label: string, total: number) => {
        const counts = weightedCounts(lab.clientIps, total, hitter);
        hitterFlows.n += counts.get(hitterIp) ?? 0;
        const groups = udpGroups(state, counts, nextUdpWindow(state));
        assuredGroups.push(...groups);
        await phase(label, () => floodAll(lab, groups, { passes: 2, timeoutMs: left() }).then(noteFlood), (outs) => ({
          flows: sumFlows(outs),
          detail: outs.map((x) => x.passes.map((p) => `${p.sent}@${p.ms.toFixed(0)}ms`).join('+')).join(' | '),
        }));
      };
      // A saturated table must be all ASSURED entries: the kernel evicts unassured ones for
      // new flows, so it would neither log "table full" nor refuse new SSH. Seen on a loaded
      // CI run: thousands of fill entries vanished before their second packet, and the
      // server's late replies then made unreplied entries of their own. So: delete whatever
      // is unassured (exact tuples) and top up with fresh flows, until little is left.
      const repairUnassured = async () => {
        for (let attempt = 0; attempt < 3; attempt++) {
          const gone = await phase('delete-unassured', () => deleteUnassured(lab), (d) => ({ flows: d.deleted, detail: `${d.unassured} unassured` }));
          if (gone.unassured === 0) return;
          const need = max - (await conntrackCount(lab)) - o.saturatedMargin;
          if (need > 0) await round('assured-top-up', need);
          if (gone.unassured <= Math.max(64, max * 0.001)) return;
        }
      };
      if (!sat) {
        await round('heavy-hitter', o.heavyHitterFlows);
      } else {
        // Entries that expire meanwhile (an earlier fill's) leave room: top up until full.
        for (let r = 0; r < 4; r++) {
          const need = max - (await conntrackCount(lab)) - o.saturatedMargin;
          if (need <= 0) break;
          await round(r === 0 ? 'assured-fill' : 'assured-top-up', need);
        }
        await repairUnassured();
      }
      if (hh) result.heavyHitter = { ip: hitterIp, flows: hitterFlows.n, share: o.heavyHitterShare };
      let topUps = 0;
      topUp = async () => {
        const need = max - (await conntrackCount(lab)) - o.saturatedMargin;
        if (need > 0 && topUps++ < 3) await round('assured-top-up', need);
      };
    }

    // --- Healthy: a modest mix (TCP done above).
    if (set.has('healthy')) {
      const counts = weightedCounts(lab.clientIps, o.healthy.udp);
      const groups = udpGroups(state, counts, nextUdpWindow(state));
      const unreplied = udpGroups(state, weightedCounts(lab.clientIps, o.healthy.unreplied), { lo: NO_LISTENER_BASE + 500, n: 16 });
      await phase(
        'healthy-udp',
        () =>
          Promise.all([floodAll(lab, groups, { passes: 2, timeoutMs: left() }), floodAll(lab, unreplied, { passes: 1, timeoutMs: left() })]).then(
            ([a, b]) => noteFlood([...a, ...b]),
          ),
        (outs) => ({ flows: sumFlows(outs) }),
      );
    }

    // --- Saturated: overflow with new flows until the kernel drops and logs.
    if (sat) {
      const s = Date.now();
      let bursts = 0;
      let sent = 0;
      for (;;) {
        await topUp();
        const counts = weightedCounts(lab.clientIps, o.overflowBurst);
        const window = { lo: NO_LISTENER_BASE + 64 * (state.cursors.udpWindow % 7), n: UDP_WINDOW };
        const groups = udpGroups(state, counts, window);
        overflowGroups = groups;
        const outs = noteFlood(await floodAll(lab, groups, { passes: 1, timeoutMs: left() }));
        sent += sumFlows(outs);
        bursts++;
        const [st, lines] = await Promise.all([conntrackStats(lab), tableFullLines(lab)]);
        if (st.drop > stats0.drop && linesSince(lines0, lines) > 0) break;
        if (Date.now() - s > o.overflowTimeoutMs) break;
        await sleep(1000); // the kernel's message rate limit is global: try again in a while
      }
      phases.push({ name: 'overflow', ms: Date.now() - s, flows: sent, detail: `${bursts} burst(s)` });

      if (o.holdMs > 0) {
        const owner = sourcesByClient(lab);
        const pids: number[] = [];
        for (const c of lab.clients) {
          const mine = (gs: FlowGroup[]) => gs.filter((g) => owner.get(g.src) === c.namespace);
          for (const [kind, gs, repeatMs] of [['assured', mine(assuredGroups), 60_000], ['overflow', mine(overflowGroups), 1000]] as const) {
            const pid = await udpFloodHold(c.namespace, lab.serverAddress, [...gs], {
              holdMs: o.holdMs,
              repeatMs,
              logFile: join(lab.dir, `hold-${kind}-${c.index}.log`),
            });
            if (pid) {
              pids.push(pid);
              state.pids[`hold-${kind}-${c.index}`] = pid;
            }
          }
        }
        result.hold = { pids, until: new Date(Date.now() + o.holdMs).toISOString() };
      }
    }

    await writeState(state);
    const [count1, stats1, lines1] = await Promise.all([conntrackCount(lab), conntrackStats(lab), tableFullLines(lab)]);
    return {
      lab: lab.name,
      scenarios,
      generator,
      startedAt: new Date(t0).toISOString(),
      durationMs: Date.now() - t0,
      phases,
      before: { count: count0, stats: stats0 },
      after: { count: count1, max, stats: stats1 },
      delta: {
        drop: stats1.drop - stats0.drop,
        earlyDrop: stats1.early_drop - stats0.early_drop,
        insertFailed: stats1.insert_failed - stats0.insert_failed,
      },
      tableFullLines: linesSince(lines0, lines1),
      udpFlows,
      ...result,
    } satisfies FillResult;
  }, { timeoutMs: o.timeoutMs, staleMs: o.timeoutMs + 60_000 });
}

/** Stops the generators a `holdMs` fill left running (labDown also ends them). */
export async function stopHold(labOrName: Lab | string): Promise<number> {
  const lab = typeof labOrName === 'string' ? await openLab(labOrName) : labOrName;
  return withLock(`fill-${lab.name}`, async () => {
    const state = await readState(lab.name);
    if (!state) return 0;
    const inodes = new Set(lab.clients.map((c) => netnsInode(c.namespace)).filter((n): n is number => n !== null));
    let stopped = 0;
    for (const [key, pid] of Object.entries(state.pids)) {
      if (!key.startsWith('hold-')) continue;
      delete state.pids[key];
      const ns = await readlink(`/proc/${pid}/ns/net`).catch(() => '');
      const m = /net:\[(\d+)\]/.exec(ns);
      if (!m || !inodes.has(Number(m[1]))) continue; // gone, or not ours any more (pid reused)
      try {
        process.kill(pid, 'SIGKILL');
        stopped++;
      } catch {
        // gone
      }
    }
    await writeState(state);
    return stopped;
  });
}

// ------------------------------------------------------------------ table summary

export interface LabTableSummary {
  entries: number;
  byProto: Record<string, number>;
  /** "tcp ESTABLISHED", "tcp TIME_WAIT", "udp" ... */
  states: Record<string, number>;
  assured: number;
  unreplied: number;
  /** Original-direction source -> entries, descending. */
  sources: [string, number][];
  destinations: [string, number][];
  /** Reply-direction destination (the NAT address) -> entries. */
  natAddresses: [string, number][];
  /** "dst:dport/proto" -> entries, descending (top 20). */
  portUse: [string, number][];
  ms: number;
}

const sortDesc = (m: Map<string, number>, limit = Infinity): [string, number][] =>
  [...m].sort((a, b) => b[1] - a[1]).slice(0, limit);

/**
 * Streams `conntrack -L` inside the gateway namespace and aggregates it (for tests and the
 * demo; the bot has its own parser). About 1 s for 262,144 entries.
 */
export async function labTableSummary(lab: Lab | LabState): Promise<LabTableSummary> {
  const t0 = Date.now();
  const ns = lab.namespaces.gateway;
  const inode = netnsInode(ns);
  if (inode === null) throw new Error(`namespace ${ns} does not exist`);
  const child = spawn('ip', ['netns', 'exec', ns, 'sh', '-c', `${netnsGuard(inode)}; exec conntrack -L`], { stdio: ['ignore', 'pipe', 'ignore'] });
  const byProto = new Map<string, number>();
  const states = new Map<string, number>();
  const sources = new Map<string, number>();
  const destinations = new Map<string, number>();
  const nat = new Map<string, number>();
  const ports = new Map<string, number>();
  let entries = 0;
  let assured = 0;
  let unreplied = 0;
  const inc = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);
  const rl = createInterface({ input: child.stdout });
  for await (const line of rl) {
    const f = line.split(/\s+/);
    const proto = f[0];
    if (!proto || !/^[a-z0-9]+$/.test(proto) || f.length < 4) continue;
    entries++;
    inc(byProto, proto);
    const state = /^[A-Z_]+$/.test(f[3] ?? '') ? f[3] : undefined;
    inc(states, state ? `${proto} ${state}` : proto);
    if (line.includes('[ASSURED]')) assured++;
    if (line.includes('[UNREPLIED]')) unreplied++;
    const srcs = [...line.matchAll(/\bsrc=(\S+)/g)].map((m) => m[1]!);
    const dsts = [...line.matchAll(/\bdst=(\S+)/g)].map((m) => m[1]!);
    const dports = [...line.matchAll(/\bdport=(\d+)/g)].map((m) => m[1]!);
    if (srcs[0]) inc(sources, srcs[0]);
    if (dsts[0]) inc(destinations, dsts[0]);
    if (dsts[1]) inc(nat, dsts[1]);
    if (dsts[0] && dports[0]) inc(ports, `${dsts[0]}:${dports[0]}/${proto}`);
  }
  await new Promise<void>((resolve) => (child.exitCode !== null ? resolve() : child.once('close', () => resolve())));
  return {
    entries,
    byProto: Object.fromEntries(byProto),
    states: Object.fromEntries(states),
    assured,
    unreplied,
    sources: sortDesc(sources),
    destinations: sortDesc(destinations),
    natAddresses: sortDesc(nat),
    portUse: sortDesc(ports, 20),
    ms: Date.now() - t0,
  };
}
