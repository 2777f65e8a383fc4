/** not-persistent: runtime values that a reboot (or a re-created namespace) would lose. */
import type { Finding } from '../../core/model.js';
import type { AnalysisContext } from '../context.js';
import { fmtInt } from '../format.js';
import { persistenceGaps } from '../persistence.js';

function label(key: string): string {
  return key.replace(/^nf_conntrack_/, '');
}

export function notPersistentFindings(ctx: AnalysisContext): Finding[] {
  const gaps = persistenceGaps(ctx.facts);
  if (gaps.length === 0) return [];
  const evidence: Record<string, string> = {};
  for (const g of gaps) evidence[g.key] = `runtime ${g.runtime}, after reboot ${g.boot} (${g.bootSource})`;
  const list = gaps.map((g) => `${label(g.key)} ${fmtInt(g.runtime)} -> ${fmtInt(g.boot)}`).join(', ');
  const detail: string[] = [];
  if (gaps.some((g) => g.key === 'hashsize')) {
    detail.push('hashsize is a module parameter: it persists only through modprobe.d (or nf_conntrack.hashsize= on the kernel command line).');
  }
  if (ctx.facts.writable['nf_conntrack_max'] === false) {
    detail.push('In a network namespace the timeouts start from kernel defaults whenever the namespace is re-created.');
  }
  return [
    {
      id: 'not-persistent',
      severity: 'warning',
      title: `${gaps.length} runtime setting${gaps.length === 1 ? '' : 's'} lost at reboot: ${list}`,
      evidence,
      ...(detail.length ? { detail: detail.join(' ') } : {}),
    },
  ];
}
