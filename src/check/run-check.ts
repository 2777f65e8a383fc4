/**
 * The check: runbook steps 1-3 over one SSH session.
 *   facts (one fixed read-only script) and, at the same time on a second channel, one
 *   streamed table dump -> aggregate -> findings -> plan -> report.
 * Progress is reported step by step so front ends can show it live.
 */
import type { GatewayConfig } from '../config/inventory.js';
import { checkReportSchema, type CheckReport, type GatewayFacts, type TableSummary } from '../core/model.js';
import { analyze } from '../analysis/analyze.js';
import { aggregateLines } from '../analysis/table/aggregate-lines.js';
import { FACTS_SCRIPT, TABLE_DUMP_COMMAND, parseFacts } from '../diagnostics/facts-script.js';
import { droppedForLackOfRoom } from '../diagnostics/parsers/conntrack-stats.js';
import { commands } from '../gateway/commands.js';
import { channelText } from '../gateway/errors.js';
import type { SessionLease, SessionProvider } from '../gateway/session-provider.js';
import type { GatewaySession } from '../gateway/ssh-session.js';
import { computePlan, IDLE_THRESHOLDS } from '../plan/compute.js';
import { DEFAULT_ESTABLISHED_TIMEOUT } from '../analysis/kernel-defaults.js';

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


export interface CheckOptions {
  gatewayName: string;
  config: GatewayConfig;
  sessions: SessionProvider;
  onProgress?: ProgressSink;
  /** Upper bound for the table dump (a 262,144 entry table takes about 1 s). */
  dumpTimeoutMs?: number;
}

/**
 * Progress events in order, without making the work wait for the front end (a Slack update
 * is a round trip): each event is sent after the previous one; `flushed` waits for all of
 * them and rethrows the first failure.
 */
function progressQueue(sink: ProgressSink | undefined): { emit(event: ProgressEvent): void; flushed(): Promise<void> } {
  let chain: Promise<void> = Promise.resolve();
  return {
    emit(event) {
      if (!sink) return;
      chain = chain.then(() => sink(event));
      chain.catch(() => undefined); // observed by flushed()
    },
    flushed: () => chain,
  };
}

async function step<T>(progress: ReturnType<typeof progressQueue>, name: CheckStep, work: () => Promise<T>, detail: (value: T) => string): Promise<T> {
  progress.emit({ step: name, status: 'running' });
  try {
    const value = await work();
    progress.emit({ step: name, status: 'done', detail: detail(value) });
    return value;
  } catch (err) {
    progress.emit({ step: name, status: 'failed', detail: channelText(err) });
    throw err;
  }
}

export async function collectFacts(session: GatewaySession): Promise<GatewayFacts> {
  const result = await session.exec(commands.script('collect facts', FACTS_SCRIPT), { timeoutMs: 30_000 });
  return withoutForeignTableFull(parseFacts(result.stdout, new Date().toISOString()));
}

/**
 * The kernel log is shared by every network namespace and names them by inode, and
 * inodes are reused once a namespace is gone (seen on lab gateways). The counters are per
 * namespace and cumulative: a "table full" line naming THIS namespace is ours only if it
 * dropped for lack of room (droppedForLackOfRoom); otherwise it belongs to an earlier namespace with the
 * same inode (a CI run blamed one on a gateway whose only drops were clashes). And no line
 * logged before this namespace was created (`netnsSince`) is about it.
 */
export function withoutForeignTableFull(facts: GatewayFacts): GatewayFacts {
  const since = facts.netnsSince === null ? null : Date.parse(facts.netnsSince) - KERNEL_LOG_CLOCK_SLACK_MS;
  // Lines from before this namespace existed are about another one, whatever they name.
  let kernelLog = since === null ? facts.kernelLog : facts.kernelLog.filter((e) => e.at === null || Date.parse(e.at) >= since);
  if (!droppedForLackOfRoom(facts.stats) && facts.netnsInode !== null) {
    kernelLog = kernelLog.filter((e) => e.kind !== 'table-full' || e.netns === null);
  }
  return kernelLog.length === facts.kernelLog.length ? facts : { ...facts, kernelLog };
}

/** dmesg's ISO stamps are boot time + monotonic clock: allow them to drift from the wall clock. */
const KERNEL_LOG_CLOCK_SLACK_MS = 5_000;

/**
 * Stream the table dump into the aggregator. The dump reads the ESTABLISHED timeout itself
 * (its header line), so it needs nothing from the facts and runs beside them;
 * `fallbackEstablishedTimeout` is used only when the gateway cannot say.
 */
export async function dumpTable(session: GatewaySession, timeoutMs: number, fallbackEstablishedTimeout = DEFAULT_ESTABLISHED_TIMEOUT): Promise<TableSummary> {
  const { stdout, done } = await session.stream(commands.script('table dump', TABLE_DUMP_COMMAND), { timeoutMs });
  const [summary, exit] = await Promise.all([
    aggregateLines(stdout, { establishedTimeout: fallbackEstablishedTimeout, idleThresholds: [...IDLE_THRESHOLDS] }),
    done,
  ]);
  if (exit.code !== 0) {
    throw new Error(`table dump failed on the gateway (exit ${exit.code}): ${exit.stderr.trim().slice(0, 300)}`);
  }
  return summary;
}

/** Both settled; the first failure (in argument order) is thrown. */
async function bothSettled<A, B>(a: Promise<A>, b: Promise<B>): Promise<[A, B]> {
  const [ra, rb] = await Promise.allSettled([a, b]);
  if (ra.status === 'rejected') throw ra.reason;
  if (rb.status === 'rejected') throw rb.reason;
  return [ra.value, rb.value];
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

  const progress = progressQueue(onProgress);
  let lease: SessionLease | undefined;
  try {
    lease = await step(
      progress,
      'connect',
      () => timed('connectMs', () => opts.sessions(gatewayName, config)),
      (l) => (l.reused ? 'reused the warm session' : `connected to ${config.host}:${config.port}`),
    );
    const session = lease.session;
    // Facts and the dump on two channels of the same session at once: the dump is the long
    // part, the facts script (about 40 ms on the gateway) hides behind it.
    const [facts, table] = await timed('factsAndDumpMs', () =>
      bothSettled(
        step(
          progress,
          'facts',
          () => timed('factsMs', () => collectFacts(session)),
          (f) => `${f.count.toLocaleString('en-US')} / ${f.max.toLocaleString('en-US')} entries, drop=${f.stats.drop}, ${f.kernelLog.filter((e) => e.kind === 'table-full').length} "table full" lines`,
        ),
        step(
          progress,
          'table-dump',
          () => timed('tableDumpMs', () => dumpTable(session, opts.dumpTimeoutMs ?? 120_000)),
          (t) => `${t.entries.toLocaleString('en-US')} entries read${t.offloaded?.total ? ` (${t.offloaded.total.toLocaleString('en-US')} offloaded to a flowtable)` : ''}`,
        ),
      ),
    );
    const report = await step(
      progress,
      'analysis',
      () => timed('analysisMs', async () => buildReport(gatewayName, config, facts, table, timings)),
      (r) => `${r.findings.length} findings, ${r.plan.steps.length} plan steps`,
    );
    // The last progress update lands before the caller replaces the message with findings.
    await progress.flushed();
    return report;
  } catch (err) {
    await progress.flushed().catch(() => undefined);
    throw err;
  } finally {
    lease?.release();
  }
}

export function buildReport(
  gatewayName: string,
  config: Pick<GatewayConfig, 'thresholds' | 'managementSource' | 'port'>,
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
