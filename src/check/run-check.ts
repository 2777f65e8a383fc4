/**
 * The check: runbook steps 1-3 over one SSH session.
 *   facts (one fixed read-only script) -> one streamed table dump -> aggregate
 *   -> findings -> plan -> report.
 * Progress is reported step by step so front ends can show it live.
 */
import type { GatewayConfig } from '../config/inventory.js';
import { checkReportSchema, type CheckReport, type GatewayFacts, type TableSummary } from '../core/model.js';
import { analyze } from '../analysis/analyze.js';
import { aggregateLines } from '../analysis/table-aggregator.js';
import { FACTS_SCRIPT, TABLE_DUMP_COMMAND, parseFacts } from '../diagnostics/facts-script.js';
import { commands } from '../gateway/commands.js';
import type { GatewaySession } from '../gateway/ssh-session.js';
import { computePlan, IDLE_THRESHOLDS } from '../plan/compute.js';

export const CHECK_STEPS = ['connect', 'facts', 'table-dump', 'analysis'] as const;
export type CheckStep = (typeof CHECK_STEPS)[number];

export const CHECK_STEP_LABELS: Record<CheckStep, string> = {
  connect: 'SSH connect',
  facts: 'Kernel log, counters, timeouts, NAT rules',
  'table-dump': 'Table dump (one pass, streamed)',
  analysis: 'Findings and plan',
};

export interface ProgressEvent {
  step: CheckStep;
  status: 'running' | 'done' | 'failed';
  detail?: string;
}
export type ProgressSink = (event: ProgressEvent) => void | Promise<void>;

/** Supplies a session (a fresh connection, or a warm one from the pool) and says whether to close it. */
export interface SessionLease {
  session: GatewaySession;
  /** True when the lease came from a warm pool (the session stays open afterwards). */
  reused: boolean;
  release(): void;
}
export type SessionProvider = (gatewayName: string, config: GatewayConfig) => Promise<SessionLease>;

export interface CheckOptions {
  gatewayName: string;
  config: GatewayConfig;
  sessions: SessionProvider;
  onProgress?: ProgressSink;
  /** Upper bound for the table dump (a 262,144 entry table takes about 1 s). */
  dumpTimeoutMs?: number;
}

async function step<T>(sink: ProgressSink | undefined, name: CheckStep, work: () => Promise<T>, detail: (value: T) => string): Promise<T> {
  await sink?.({ step: name, status: 'running' });
  try {
    const value = await work();
    await sink?.({ step: name, status: 'done', detail: detail(value) });
    return value;
  } catch (err) {
    await sink?.({ step: name, status: 'failed', detail: (err as Error).message });
    throw err;
  }
}

export async function collectFacts(session: GatewaySession): Promise<GatewayFacts> {
  const result = await session.exec(commands.script('collect facts', FACTS_SCRIPT), { timeoutMs: 30_000 });
  return withoutForeignTableFull(parseFacts(result.stdout, new Date().toISOString()));
}

/**
 * The kernel log is shared by every network namespace and names them by inode, and
 * inodes are reused once a namespace is gone (seen on lab gateways). The drop counter
 * is per namespace and cumulative: a "table full" line of THIS namespace means drop > 0.
 * With drop = 0 the lines belong to an earlier namespace with the same inode.
 */
export function withoutForeignTableFull(facts: GatewayFacts): GatewayFacts {
  if (facts.stats.drop > 0 || facts.netnsInode === null) return facts;
  return { ...facts, kernelLog: facts.kernelLog.filter((e) => e.kind !== 'table-full' || e.netns === null) };
}

export async function dumpTable(session: GatewaySession, facts: GatewayFacts, timeoutMs: number): Promise<TableSummary> {
  const establishedTimeout = facts.timeouts['nf_conntrack_tcp_timeout_established'] ?? 432_000;
  const { stdout, done } = await session.stream(commands.script('table dump', TABLE_DUMP_COMMAND), { timeoutMs });
  const [summary, exit] = await Promise.all([
    aggregateLines(stdout, { establishedTimeout, idleThresholds: [...IDLE_THRESHOLDS] }),
    done,
  ]);
  if (exit.code !== 0) {
    throw new Error(`table dump failed on the gateway (exit ${exit.code}): ${exit.stderr.trim().slice(0, 300)}`);
  }
  return summary;
}

export async function runCheck(opts: CheckOptions): Promise<CheckReport> {
  const { gatewayName, config, onProgress } = opts;
  const timings: Record<string, number> = {};
  const timed = async <T>(name: string, work: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    try {
      return await work();
    } finally {
      timings[name] = Math.round(performance.now() - started);
    }
  };

  const lease = await step(
    onProgress,
    'connect',
    () => timed('connectMs', () => opts.sessions(gatewayName, config)),
    (l) => (l.reused ? 'reused the warm session' : `connected to ${config.host}:${config.port}`),
  );
  try {
    const facts = await step(
      onProgress,
      'facts',
      () => timed('factsMs', () => collectFacts(lease.session)),
      (f) => `${f.count.toLocaleString('en-US')} / ${f.max.toLocaleString('en-US')} entries, drop=${f.stats.drop}, ${f.kernelLog.filter((e) => e.kind === 'table-full').length} "table full" lines`,
    );
    const table = await step(
      onProgress,
      'table-dump',
      () => timed('tableDumpMs', () => dumpTable(lease.session, facts, opts.dumpTimeoutMs ?? 120_000)),
      (t) => `${t.entries.toLocaleString('en-US')} entries read`,
    );
    return await step(
      onProgress,
      'analysis',
      () => timed('analysisMs', async () => buildReport(gatewayName, config, facts, table, timings)),
      (r) => `${r.findings.length} findings, ${r.plan.steps.length} plan steps`,
    );
  } finally {
    lease.release();
  }
}

export function buildReport(
  gatewayName: string,
  config: GatewayConfig,
  facts: GatewayFacts,
  table: TableSummary,
  timings: Record<string, number>,
): CheckReport {
  const findings = analyze(facts, table, config.thresholds, { managementSource: config.managementSource, sshPort: config.port });
  const plan = computePlan(facts, table, findings, {
    managementSource: config.managementSource,
    sshPort: config.port,
  });
  const tableFull = facts.kernelLog.filter((e) => e.kind === 'table-full');
  const report: CheckReport = {
    gateway: gatewayName,
    checkedAt: facts.collectedAt,
    conntrack: {
      count: facts.count,
      max: facts.max,
      buckets: facts.buckets,
      percent: facts.max > 0 ? Math.round((facts.count / facts.max) * 1000) / 10 : 0,
    },
    drops: {
      drop: facts.stats.drop,
      earlyDrop: facts.stats.early_drop,
      insertFailed: facts.stats.insert_failed,
      tableFullMessages: tableFull.length,
      lastTableFullAt: tableFull.at(-1)?.at ?? null,
    },
    topSources: table.topSources,
    topDestinations: table.topDestinations,
    states: table.states,
    timeouts: facts.timeouts,
    facts,
    table,
    findings,
    plan,
    timings,
  };
  return checkReportSchema.parse(report);
}
