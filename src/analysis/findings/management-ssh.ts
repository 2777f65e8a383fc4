/**
 * management-ssh-tracked: the management SSH traffic goes through conntrack.
 * When the table is full of assured entries the gateway refuses new SSH
 * connections (the bot's included); an open session keeps working.
 */
import type { Finding } from '../../core/model.js';
import type { AnalysisContext } from '../context.js';
import { fmtPct } from '../format.js';

export const DEFAULT_SSH_PORT = 22;

export function managementSshTracked(ctx: AnalysisContext): boolean {
  const rules = ctx.facts.managedNotrackRules;
  const source = ctx.management.managementSource;
  if (rules.length === 0) return true;
  return source !== undefined && !rules.some((r) => r.includes(source));
}

export function managementSshFindings(ctx: AnalysisContext): Finding[] {
  if (!managementSshTracked(ctx)) return [];
  const port = ctx.management.sshPort ?? DEFAULT_SSH_PORT;
  return [
    {
      id: 'management-ssh-tracked',
      severity: ctx.pressure ? 'warning' : 'info',
      title: `Management SSH (port ${port}) is tracked: ${ctx.pressure ? `the table is ${fmtPct(ctx.fill)} full and` : 'if the table fills,'} new SSH logins (the bot's included) time out when it is full`,
      evidence: {
        sshPort: port,
        managementSource: ctx.management.managementSource ?? 'unknown',
        percentFull: Math.round(ctx.fill * 1000) / 10,
        managedNotrackRules: ctx.facts.managedNotrackRules.length,
      },
      detail: 'Exempting the management SSH flow from tracking (raw-table NOTRACK) keeps the gateway reachable when the table fills.',
    },
  ];
}
