/**
 * max-readonly: nf_conntrack_max cannot be written from this session (a
 * network namespace or a container): the table size belongs to the host.
 */
import type { Finding } from '../../core/model.js';
import type { AnalysisContext } from '../context.js';
import { fmtInt } from '../format.js';

/** Where a host-owned table size must be changed instead. */
export function hostOnlyWhere(value?: number): string {
  const v = value === undefined ? 'N' : String(value);
  return (
    `the host (initial network namespace): \`sysctl -w net.netfilter.nf_conntrack_max=${v}\` as root on the host, persisted in the host's /etc/sysctl.d; ` +
    'container runtimes cannot set it (Docker/Kubernetes only allow namespaced sysctls), and on Kubernetes nodes kube-proxy sets it from --conntrack-max-per-core'
  );
}

export function maxReadonlyFindings(ctx: AnalysisContext): Finding[] {
  const { facts } = ctx;
  if (facts.writable['nf_conntrack_max'] !== false) return [];
  const where = facts.netnsInode !== null ? ` (network namespace ${facts.netnsInode})` : '';
  return [
    {
      id: 'max-readonly',
      severity: ctx.pressure ? 'warning' : 'info',
      title: `nf_conntrack_max (${fmtInt(facts.max)}) is read-only here${where}: raise it on the host`,
      evidence: {
        max: facts.max,
        netns: facts.netnsInode ?? 'unknown',
        bucketsWritable: facts.writable['nf_conntrack_buckets'] === true || facts.writable['hashsize'] === true ? 'yes' : 'no',
      },
      detail: `The limit and the hash size are host-wide; change them on ${hostOnlyWhere()}. Timeouts are per namespace and can be changed here.`,
    },
  ];
}
