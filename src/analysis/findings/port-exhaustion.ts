/**
 * port-exhaustion-risk: one (NAT address, destination, port, proto) tuple
 * using most of its 64,512 source ports. Past that, new connections to that
 * destination fail (insert_failed) whatever nf_conntrack_max is.
 */
import type { Finding } from '../../core/model.js';
import type { AnalysisContext } from '../context.js';
import { fmtInt, fmtPct, hostPort, pctNumber } from '../format.js';
import { PORT_CRIT_SHARE, PORT_PROTOCOLS, PORT_WARN_SHARE, USABLE_NAT_PORTS } from '../nat-ports.js';

export function portExhaustionFindings(ctx: AnalysisContext): Finding[] {
  const insertFailed = ctx.facts.stats.insert_failed;
  return ctx.table.topPortUse
    .filter((p) => PORT_PROTOCOLS.has(p.proto) && p.count >= USABLE_NAT_PORTS * PORT_WARN_SHARE)
    .sort((a, b) => b.count - a.count)
    .map((p) => {
      const share = p.count / USABLE_NAT_PORTS;
      const state = share >= 1 ? 'exhausted' : share >= PORT_CRIT_SHARE ? 'nearly exhausted' : 'filling';
      const destination = `${hostPort(p.dst, p.dport)}/${p.proto}`;
      return {
        id: 'port-exhaustion-risk' as const,
        severity: share >= PORT_CRIT_SHARE ? ('critical' as const) : ('warning' as const),
        title: `NAT ports to ${destination} ${state}: ${fmtInt(p.count)} of ${fmtInt(USABLE_NAT_PORTS)} source ports of ${p.natSource} in use (${fmtPct(share)})`,
        evidence: {
          natSource: p.natSource,
          destination,
          entries: p.count,
          usablePorts: USABLE_NAT_PORTS,
          percentUsed: pctNumber(share),
          insertFailed,
        },
        detail:
          `Each NAT address gets source ports 1024-65535 (${fmtInt(USABLE_NAT_PORTS)}) per destination ip:port; ` +
          (insertFailed > 0 ? `insert_failed = ${fmtInt(insertFailed)} corroborates failed connections. ` : '') +
          'Raising nf_conntrack_max does not help: add NAT addresses (SNAT pool) or cut connection churn to this destination.',
      };
    });
}
