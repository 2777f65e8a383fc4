/**
 * IPv6 traffic through a lab gateway (a lab made with `ipv6: 'routed' | 'nat66'`), from the
 * client namespaces' 2001:2:0:SS(c+1)::/64 sources to the server's 2001:2:0:SS00::2:
 *   tcpIdle  real TCP connections left idle ESTABLISHED (5-day timer; their FIN/RST never
 *            leave the ends), each on its own local port so every one is its own entry
 *   udp      UDP flows answered by the server's IPv6 echo, sent twice 2.1 s apart so the
 *            gateway marks them ASSURED (stream timeout, 120 s): still there for a check
 * And the kernel's own count of the gateway's table by family, from /proc/net/nf_conntrack.
 */
import { z } from 'zod';
import { gatewayExec, type Lab } from './lab.js';
import { readState, withLock, writeState } from './state.js';
import { tcpRun, udpFlood, type FlowGroup } from './traffic.js';

export const ipv6FlowsSchema = z.object({
  tcpIdle: z.number().int().min(0).max(60_000).default(0),
  udp: z.number().int().min(0).max(60_000).default(0),
  /** UDP destination ports used (from the first echo port up); flows spread over them. */
  udpPorts: z.number().int().min(1).max(512).default(16),
  clientIndex: z.number().int().min(0).default(0),
});
export type Ipv6FlowsOptions = z.input<typeof ipv6FlowsSchema>;

export interface Ipv6FlowsResult {
  tcpIdle: number;
  tcpFailed: number;
  udp: number;
  sources: string[];
  destination: string;
  ms: number;
}

/** Local ports 10000..32767 (below the ephemeral range), shared with the IPv4 fills' cursor. */
async function takeLocalPorts(lab: Lab, perSource: number): Promise<{ lportBase: number; sportOffset: number }> {
  return withLock(`insert-${lab.name}`, async () => {
    const state = await readState(lab.name);
    if (!state) throw new Error(`lab ${lab.name} has no state`);
    const need = perSource + 1;
    if (state.cursors.tcpPort + need > 22_000) state.cursors.tcpPort = 0;
    const lportBase = 10_000 + state.cursors.tcpPort;
    state.cursors.tcpPort += need;
    const sportOffset = state.cursors.sport;
    state.cursors.sport = (state.cursors.sport + 4096) % 64_512;
    await writeState(state);
    return { lportBase, sportOffset };
  });
}

export async function ipv6Flows(lab: Lab, options: Ipv6FlowsOptions): Promise<Ipv6FlowsResult> {
  const o = ipv6FlowsSchema.parse(options);
  const v6 = lab.ipv6;
  if (!v6) throw new Error(`lab ${lab.name} has no IPv6 (labUp with ipv6: 'nat66' or 'routed')`);
  const client = lab.clients[o.clientIndex];
  const sources = v6.clients[o.clientIndex]?.ips ?? [];
  if (!client || sources.length === 0) throw new Error(`lab ${lab.name} has no client ${o.clientIndex}`);
  const t0 = Date.now();
  const { lportBase, sportOffset } = await takeLocalPorts(lab, Math.ceil(o.tcpIdle / sources.length));
  const perSource = Math.ceil(o.udp / sources.length);
  const groups: FlowGroup[] = sources.map((src, i) => ({
    src,
    count: Math.max(0, Math.min(perSource, o.udp - i * perSource)),
    sportOffset,
    dportLo: lab.ports.udpEcho[0],
    dportCount: o.udpPorts,
  }));
  const [tcp, udp] = await Promise.all([
    tcpRun(client.namespace, 'idle', { dst: v6.serverAddress, port: lab.ports.tcpIdle, count: o.tcpIdle, srcs: sources, lportBase }),
    udpFlood(client.namespace, v6.serverAddress, groups),
  ]);
  return { tcpIdle: tcp.ok, tcpFailed: tcp.failed, udp: udp.flows, sources, destination: v6.serverAddress, ms: Date.now() - t0 };
}

/** The gateway table's entries by family (`ipv4`, `ipv6`), as the kernel lists them. */
export async function conntrackCountByFamily(lab: Lab): Promise<{ ipv4: number; ipv6: number; total: number }> {
  const r = await gatewayExec(lab, ['awk', '{ n[$1]++ } END { printf "%d %d\\n", n["ipv4"], n["ipv6"] }', '/proc/net/nf_conntrack']);
  const [ipv4 = 0, ipv6 = 0] = r.stdout.trim().split(/\s+/).map(Number);
  return { ipv4, ipv6, total: ipv4 + ipv6 };
}
