/** Values derived once from the facts and shared by every finding family. */
import type { GatewayFacts, TableSummary } from '../core/model.js';
import type { Thresholds } from '../config/inventory.js';
import { droppedForLackOfRoom } from '../diagnostics/parsers/conntrack-stats.js';
import { ratio } from './format.js';
import { DEFAULT_ESTABLISHED_TIMEOUT } from './kernel-defaults.js';
import { summarizeTableFull, type TableFullSummary } from './kernel-log.js';

/** Where the bot's SSH comes from (inventory `managementSource`, gateway SSH port). */
export interface ManagementContext {
  managementSource?: string;
  sshPort?: number;
}

export interface AnalysisContext {
  facts: GatewayFacts;
  table: TableSummary;
  thresholds: Thresholds;
  management: ManagementContext;
  /** count / max from the sysctls (the fast, authoritative count). */
  fill: number;
  tableFull: TableFullSummary;
  /** "table full" kernel lines for this namespace in the last hour. */
  recentTableFull: boolean;
  /** The table is at or above warnPercent, or was full within the last hour. */
  pressure: boolean;
}

export function buildContext(
  facts: GatewayFacts,
  table: TableSummary,
  thresholds: Thresholds,
  management: ManagementContext = {},
): AnalysisContext {
  const fill = ratio(facts.count, facts.max);
  const tableFull = summarizeTableFull(facts);
  const recentTableFull = tableFull.lastHour > 0;
  return {
    facts,
    table,
    thresholds,
    management,
    fill,
    tableFull,
    recentTableFull,
    pressure: fill * 100 >= thresholds.warnPercent || recentTableFull,
  };
}

/**
 * The table has been full: early_drop, or drops for lack of room, or a "table full" line.
 * (NAT clash drops alone do not mean that: see droppedForLackOfRoom.)
 */
export function tableWasFull(facts: GatewayFacts, tableFull: TableFullSummary = summarizeTableFull(facts)): boolean {
  return droppedForLackOfRoom(facts.stats) || facts.stats.early_drop > 0 || tableFull.total > 0;
}

/** The ESTABLISHED timeout in effect (kernel default when the sysctl was not read). */
export function establishedTimeout(facts: GatewayFacts): number {
  return facts.timeouts['nf_conntrack_tcp_timeout_established'] ?? DEFAULT_ESTABLISHED_TIMEOUT;
}

/** Entries of the table idle for at least `seconds` (TCP ESTABLISHED), or undefined when not measured. */
export function idleAtLeast(table: TableSummary, seconds: number): number | undefined {
  return table.establishedIdle.idleAtLeast[String(seconds)];
}

/**
 * Entries a delete after lowering the ESTABLISHED timeout to `seconds` removes now (idle >=
 * seconds with more than `seconds` left); tables summarised before this was counted fall
 * back to idleAtLeast.
 */
export function deletableAfterLowering(table: TableSummary, seconds: number): number | undefined {
  return table.establishedIdle.deletable?.[String(seconds)] ?? idleAtLeast(table, seconds);
}
