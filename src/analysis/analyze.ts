/**
 * Findings from one check: facts + table summary -> findings, most severe
 * first. Pure: no I/O, the same input always gives the same output.
 */
import type { Thresholds } from '../config/inventory.js';
import { severityRank, type Finding, type GatewayFacts, type TableSummary } from '../core/model.js';
import { buildContext, type ManagementContext } from './context.js';
import { dropFindings } from './findings/drops.js';
import { establishedTimeoutFindings } from './findings/established-timeout.js';
import { hashsizeFindings } from './findings/hashsize.js';
import { healthyFindings } from './findings/healthy.js';
import { heavyHitterFindings } from './findings/heavy-hitter.js';
import { managementSshFindings } from './findings/management-ssh.js';
import { maxReadonlyFindings } from './findings/max-readonly.js';
import { notPersistentFindings } from './findings/not-persistent.js';
import { portExhaustionFindings } from './findings/port-exhaustion.js';
import { tableFillFindings } from './findings/table-fill.js';
import { timeWaitFindings } from './findings/timewait.js';

export type { ManagementContext } from './context.js';

export function sortFindings(findings: readonly Finding[]): Finding[] {
  return [...findings].sort((a, b) => severityRank(a.severity) - severityRank(b.severity));
}

export function analyze(
  facts: GatewayFacts,
  table: TableSummary,
  thresholds: Thresholds,
  management: ManagementContext = {},
): Finding[] {
  const ctx = buildContext(facts, table, thresholds, management);
  const findings = [
    ...tableFillFindings(ctx),
    ...dropFindings(ctx),
    ...portExhaustionFindings(ctx),
    ...heavyHitterFindings(ctx),
    ...establishedTimeoutFindings(ctx),
    ...timeWaitFindings(ctx),
    ...hashsizeFindings(ctx),
    ...maxReadonlyFindings(ctx),
    ...notPersistentFindings(ctx),
    ...managementSshFindings(ctx),
  ];
  return sortFindings([...findings, ...healthyFindings(ctx, findings)]);
}
