/**
 * The check job: take the gateway (one job per gateway at a time; a waiting apply or roll
 * back goes first), run the check over SSH with live progress, store the plan, publish
 * findings, record history. A check requested before a run of the same gateway started is
 * answered by that run (check-runs.ts): one run, every requester gets the findings.
 */
import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import { followUpVerdict } from '../apply/follow-up.js';
import type { FollowUp } from '../apply/model.js';
import { findGateway, type Inventory } from '../config/inventory.js';
import { severityRank, type CheckReport, type Severity } from '../core/model.js';
import { CHECK_STEPS, CHECK_STEP_LABELS, runCheck } from '../check/run-check.js';
import type { SessionProvider } from '../gateway/session-provider.js';
import { channelText, GatewayError } from '../gateway/errors.js';
import { checkJobSchema, type CheckJob, type CheckResult } from '../queue/jobs.js';
import type { GatewayLocks } from '../store/gateway-lock.js';
import type { HistoryStore } from '../store/history-store.js';
import type { PlanStore } from '../store/plan-store.js';
import type { CheckRuns } from './check-runs.js';
import type { CheckPublisher, StepState } from './ports.js';

export interface CheckDeps {
  inventory: () => Inventory;
  sessions: SessionProvider;
  plans: PlanStore;
  history: HistoryStore;
  locks: GatewayLocks;
  /** `jobId`: attempts of one job show their progress in one message. */
  publisherFor: (job: CheckJob, jobId: string) => CheckPublisher;
  planTtlMinutes: number;
  /** How long to wait before re-trying a job whose gateway is busy. */
  busyRetryMs?: number;
  /** The baselines stored at apply time, for follow-up checks (ApplyRecordStore). */
  followUps?: { followUp(planId: string): Promise<FollowUp | null> };
  /** Merges duplicate checks of one gateway; absent: every check runs. */
  runs?: CheckRuns;
}

/** The most severe finding of a report (findings are sorted by analyze(), but do not rely on it). */
export function worstSeverity(report: CheckReport): Severity {
  return report.findings.reduce<Severity>((worst, f) => (severityRank(f.severity) < severityRank(worst) ? f.severity : worst), 'ok');
}

export function createCheckProcessor(deps: CheckDeps) {
  return async (job: Job<CheckJob, CheckResult>, token?: string): Promise<CheckResult> => {
    const data = checkJobSchema.parse(job.data);
    // A follow-up must see the gateway after its own due time: never merged.
    const merging = data.followUpOf === undefined ? deps.runs : undefined;
    const requestedAt = job.timestamp + (job.opts.delay ?? 0);
    const answered = await merging?.answerFor(data.gateway, requestedAt);
    if (answered) {
      const shared = await answerFromRun(deps, data, job.id ?? 'unknown', answered);
      if (shared) return shared;
    }
    const lock = await deps.locks.tryAcquire(data.gateway, job.id ?? 'unknown', 'check');
    if (!lock) {
      // Another job works on this gateway (or a change waits for it): come back later without
      // using up an attempt; soon when a run that will answer this request is under way.
      const soon = (await merging?.runningFor(data.gateway, requestedAt)) ?? false;
      await job.moveToDelayed(Date.now() + (soon ? 500 : (deps.busyRetryMs ?? 2_000)), token);
      throw new DelayedError();
    }
    const runStartedAt = Date.now();
    const late = await merging?.answerFor(data.gateway, requestedAt);
    if (late) {
      // A run finished between the first look and the lock.
      await lock.release();
      const shared = await answerFromRun(deps, data, job.id ?? 'unknown', late);
      if (shared) return shared;
      await job.moveToDelayed(Date.now() + 200, token);
      throw new DelayedError();
    }
    await merging?.started(data.gateway, runStartedAt);
    const publisher = deps.publisherFor(data, job.id ?? 'unknown');
    const steps: StepState[] = CHECK_STEPS.map((s) => ({ name: CHECK_STEP_LABELS[s], status: 'pending' }));
    try {
      const config = findGateway(deps.inventory(), data.gateway);
      await publisher.progress(data.gateway, steps);
      const report = await runCheck({
        gatewayName: data.gateway,
        config,
        sessions: deps.sessions,
        onProgress: async (event) => {
          const state = steps[CHECK_STEPS.indexOf(event.step)];
          if (state) {
            state.status = event.status;
            state.detail = event.detail;
          }
          await job.updateProgress({ step: event.step, status: event.status, detail: event.detail ?? '' });
          await publisher.progress(data.gateway, steps);
        },
      });
      const plan = await deps.plans.create({
        report,
        requestedBy: data.requestedBy,
        origin: data.origin,
        ttlMinutes: deps.planTtlMinutes,
      });
      await merging?.finished(data.gateway, runStartedAt, plan.planId);
      const message = await publisher.findings(report, plan);
      if (message) await deps.plans.setMessage(plan.planId, message);
      const worst = worstSeverity(report);
      await deps.history.setLastCheck(data.gateway, {
        at: report.checkedAt,
        planId: plan.planId,
        worst,
        count: report.conntrack.count,
        max: report.conntrack.max,
        percent: report.conntrack.percent,
        findings: report.findings.map((f) => f.id),
      });
      await recordCheck(deps, data, report, plan.planId, worst);
      const followUp = data.followUpOf ? await reportFollowUp(deps, data, data.followUpOf, report, publisher) : undefined;
      return { planId: plan.planId, gateway: data.gateway, worst, findings: report.findings.length, steps: report.plan.steps.length, ...(followUp ? { followUp } : {}) };
    } catch (err) {
      await merging?.failed(data.gateway).catch(() => undefined);
      const hint = err instanceof GatewayError ? err.hint : undefined;
      // Retrying cannot fix a wrong pin, a rejected key, a bad inventory, a parser bug or a flood of output.
      const permanent = !(err instanceof GatewayError) || ['host-key-mismatch', 'auth', 'config', 'output-too-large'].includes(err.kind);
      const lastAttempt = permanent || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      if (lastAttempt) await publisher.failed(data.gateway, steps, channelText(err), hint);
      // The hint travels in the message: the terminal only sees the job's failedReason.
      const message = hint ? `${(err as Error).message}\nhint: ${hint}` : (err as Error).message;
      if (permanent) throw new UnrecoverableError(message);
      throw new Error(message);
    } finally {
      await lock.release();
    }
  };
}

/**
 * Answer a check with the findings of a run that started after it was requested: a plan of
 * the requester's own from that run's report, shown where they asked. Null: that run's plan
 * is gone (then the check runs).
 */
async function answerFromRun(deps: CheckDeps, data: CheckJob, jobId: string, runPlanId: string): Promise<CheckResult | null> {
  const source = await deps.plans.get(runPlanId);
  if (!source) return null;
  const report = source.report;
  const plan = await deps.plans.create({ report, requestedBy: data.requestedBy, origin: data.origin, ttlMinutes: deps.planTtlMinutes });
  const message = await deps.publisherFor(data, jobId).findings(report, plan);
  if (message) await deps.plans.setMessage(plan.planId, message);
  const worst = worstSeverity(report);
  // The requester's own check in the gateway's history (who asked, which plan is theirs).
  await recordCheck(deps, data, report, plan.planId, worst, ` (answered by the run of plan ${runPlanId})`);
  return { planId: plan.planId, gateway: data.gateway, worst, findings: report.findings.length, steps: report.plan.steps.length, sharedRunOf: runPlanId };
}

/** A check in the gateway's history; its summary starts with the worst severity (the incident summary reads it). */
async function recordCheck(deps: CheckDeps, data: CheckJob, report: CheckReport, planId: string, worst: Severity, note = ''): Promise<void> {
  await deps.history.record({
    at: report.checkedAt,
    gateway: data.gateway,
    event: 'check',
    actor: data.requestedBy,
    planId,
    summary: `${worst}: ${report.conntrack.count}/${report.conntrack.max} (${report.conntrack.percent}%), ${report.findings.map((f) => f.id).join(', ')}${note}`,
  });
}

/** Compare the follow-up check with the counters read when the apply was verified; tell and record it. */
async function reportFollowUp(
  deps: CheckDeps,
  job: CheckJob,
  appliedPlanId: string,
  report: CheckReport,
  publisher: CheckPublisher,
): Promise<CheckResult['followUp']> {
  const baseline = await deps.followUps?.followUp(appliedPlanId);
  if (!baseline) return undefined; // the apply record expired (14 days): nothing to compare with
  const verdict = followUpVerdict(baseline, report);
  await publisher.followUp(job.gateway, appliedPlanId, verdict);
  await deps.history.record({
    at: report.checkedAt,
    gateway: job.gateway,
    event: 'follow-up',
    actor: job.requestedBy,
    planId: appliedPlanId,
    summary: verdict.summary,
    stopped: verdict.stopped,
  });
  return { planId: appliedPlanId, stopped: verdict.stopped, summary: verdict.summary };
}
