/**
 * Shared wiring for apply tests on real gateways: an embedded Redis, the stores under
 * a unique prefix, a warm SSH pool, and plans built from a REAL check report of the
 * gateway with the steps under test (same param contract as src/plan/compute*.ts).
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'vitest';
import { Worker } from 'bullmq';
import type { RedisConnection } from '../../../src/infra/redis.js';
import type { GatewayConfig } from '../../../src/config/inventory.js';
import type { CheckReport, PlanStep } from '../../../src/core/model.js';
import { runCheck } from '../../../src/check/run-check.js';
import { commands } from '../../../src/gateway/commands.js';
import { ApplyEngine } from '../../../src/apply/engine.js';
import type { ApplyOutcome } from '../../../src/apply/model.js';
import { QUEUES, type ApplyJob } from '../../../src/queue/jobs.js';
import { createApplyProcessor, type ApplyDeps } from '../../../src/worker/apply-processor.js';
import { ApplyRecordStore } from '../../../src/apply/store.js';
import { SessionPool } from '../../../src/gateway/session-pool.js';
import { queuedFollowUps } from '../../../src/worker/follow-up-scheduler.js';
import { startEmbeddedRedis, type RedisHandle } from '../../../src/infra/redis.js';
import { openQueues, type Queues } from '../../../src/queue/producer.js';
import { GatewayLocks } from '../../../src/store/gateway-lock.js';
import { HistoryStore } from '../../../src/store/history-store.js';
import { PlanStore, type PlanRecord } from '../../../src/store/plan-store.js';

export interface Harness {
  redisHandle: RedisHandle;
  redis: RedisConnection;
  prefix: string;
  plans: PlanStore;
  history: HistoryStore;
  locks: GatewayLocks;
  records: ApplyRecordStore;
  queues: Queues;
  pool: SessionPool;
  engine: ApplyEngine;
  gateway: string;
  config: GatewayConfig;
  close(): Promise<void>;
}

export async function openHarness(gateway: string, config: GatewayConfig, opts: { redisHandle?: RedisHandle } = {}): Promise<Harness> {
  const redisHandle = opts.redisHandle ?? (await startEmbeddedRedis());
  const redis = redisHandle.connect();
  const prefix = `{cto-apply-test-${randomUUID().slice(0, 8)}}`;
  const pool = new SessionPool({ healthIntervalMs: 5_000 });
  await pool.watch(gateway, config);
  const plans = new PlanStore(redis, prefix);
  const history = new HistoryStore(redis, prefix);
  const locks = new GatewayLocks(redis, prefix);
  const records = new ApplyRecordStore(redis, prefix);
  const queues = openQueues(redis, prefix);
  const inventory = { gateways: { [gateway]: config } };
  const engine = new ApplyEngine({
    inventory: () => inventory,
    sessions: pool.provider,
    plans,
    history,
    locks,
    records,
    followUps: queuedFollowUps(queues, 300_000),
  });
  return {
    redisHandle,
    redis,
    prefix,
    plans,
    history,
    locks,
    records,
    queues,
    pool,
    engine,
    gateway,
    config,
    async close() {
      pool.close();
      await queues.close();
      redis.disconnect();
      // BullMQ's connections close asynchronously: let them go before Redis stops.
      await new Promise((r) => setTimeout(r, 500));
      if (!opts.redisHandle) await redisHandle.stop();
    },
  };
}

export async function checkReport(h: Harness): Promise<CheckReport> {
  return runCheck({ gatewayName: h.gateway, config: h.config, sessions: h.pool.provider });
}

/** Store a plan with these steps on top of a real report, and approve it (as the Slack side does). */
export async function approvedPlan(h: Harness, report: CheckReport, steps: PlanStep[], approver = 'U-approver'): Promise<PlanRecord> {
  const plan = await h.plans.create({
    report: { ...report, plan: { steps, notes: ['test plan'] } },
    requestedBy: 'U-requester',
    origin: { kind: 'cli' },
    ttlMinutes: 30,
  });
  const t = await h.plans.transition(plan.planId, ['pending'], 'approved', { actor: approver, checkExpiry: true });
  if (!t.ok) throw new Error(`cannot approve ${plan.planId}: ${t.current}`);
  return plan;
}

export function sysctlStep(id: string, key: string, current: number, proposed: number, writable = true): PlanStep {
  return { id, kind: 'sysctl', key, current: String(current), proposed: String(proposed), why: 'test', writable, optional: false, params: { value: proposed, current } };
}

/** A real BullMQ apply worker on the harness's Redis and stores (sessions from the pool unless given). */
export function startApplyWorker(
  h: Harness,
  opts: Partial<Pick<ApplyDeps, 'sessions' | 'publisherFor'>> & { concurrency?: number } = {},
): { worker: Worker<ApplyJob, ApplyOutcome>; close(): Promise<void> } {
  const connection = h.redisHandle.connect();
  const worker = new Worker<ApplyJob, ApplyOutcome>(
    QUEUES.apply,
    createApplyProcessor({
      inventory: () => ({ gateways: { [h.gateway]: h.config } }),
      sessions: opts.sessions ?? h.pool.provider,
      plans: h.plans,
      history: h.history,
      locks: h.locks,
      redis: h.redis,
      prefix: h.prefix,
      ...(opts.publisherFor ? { publisherFor: opts.publisherFor } : {}),
    }),
    { connection, prefix: h.prefix, concurrency: opts.concurrency ?? 2, maxStalledCount: 0 },
  );
  return {
    worker,
    async close() {
      await worker.close();
      connection.disconnect();
    },
  };
}

/** Waits until the apply job `id` completed or failed (up to `timeoutMs`); its state and return value. */
export async function finishedApplyJob(h: Harness, id: string, timeoutMs = 60_000): Promise<{ state: string; outcome: ApplyOutcome | undefined }> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const job = await h.queues.apply.getJob(id);
    const state = (await job?.getState()) ?? 'missing';
    // Read the job again: it may have finished between getJob and getState (its return value then is not in `job`).
    if (state === 'completed' || state === 'failed') return { state, outcome: (await h.queues.apply.getJob(id))?.returnvalue };
    if (Date.now() > until) throw new Error(`apply job ${id} still ${state} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Roll back a plan that raised nf_conntrack_max on a still-saturated VM gateway: the guard must
 * first refuse (the old max is below the live count, nothing changes), and once the lab's
 * traffic is stopped and its entries removed, the same roll back goes through.
 */
export async function rollBackAfterFreeingTable(
  h: Harness,
  planId: string,
  vm: { stopTraffic(): Promise<unknown>; run(command: string): Promise<string> },
): Promise<ApplyOutcome> {
  const maxKey = '/proc/sys/net/netfilter/nf_conntrack_max';
  const raised = Number((await vm.run(`cat ${maxKey}`)).trim());
  const refused = await h.engine.rollback(planId, { actor: 'U-approver' });
  expect(refused.outcome, refused.message).toBe('refused');
  expect(refused.message).toMatch(/table holds [\d,]+ entries now/);
  expect(Number((await vm.run(`cat ${maxKey}`)).trim())).toBe(raised);
  await vm.stopTraffic();
  return h.engine.rollback(planId, { actor: 'U-approver' });
}

/**
 * The apply path on any kind of gateway, end to end: a timeout change (writable in every
 * network namespace and kernel) approved on top of a real report, applied, read back on the
 * gateway, rolled back, read back again.
 */
export async function applyAndRollBackTimeout(
  h: Harness,
  report: CheckReport,
  key = 'nf_conntrack_tcp_timeout_time_wait',
): Promise<{ before: number; applied: number; restored: number; proposed: number }> {
  const read = async (): Promise<number> => {
    const lease = await h.pool.provider(h.gateway, h.config);
    try {
      return Number((await lease.session.exec(commands.readSysctl(key))).stdout.trim());
    } finally {
      lease.release();
    }
  };
  const before = await read();
  const proposed = before === 30 ? 45 : 30;
  const plan = await approvedPlan(h, report, [sysctlStep('test-timeout', key, before, proposed)]);
  const out = await h.engine.apply(plan.planId, { actor: 'U-approver' });
  expect(out.outcome, out.message).toBe('applied');
  const applied = await read();
  const rb = await h.engine.rollback(plan.planId, { actor: 'U-approver' });
  expect(rb.outcome, rb.message).toBe('rolled-back');
  return { before, applied, restored: await read(), proposed };
}
