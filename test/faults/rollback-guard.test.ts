/**
 * Roll back guard (defect 10), on a real lab gateway through the real ApplyEngine and Redis.
 *
 *   - Two plans change the ESTABLISHED timeout, A then B. Roll back of A is refused, naming B,
 *     and the gateway keeps B's value; B rolls back, then A (asked again): the original value is
 *     back. The roll backs run as the button runs them: jobs on the real apply worker, whose
 *     result the real Slack publisher shows (local Slack API).
 *   - nf_conntrack_max is read-only in a network namespace, so no plan can raise it here (the
 *     VM gateway could, at minutes per run): the guard is run on the lab's REAL entry count
 *     against a snapshot whose max lies below it, and against one above it.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { conntrackCount, gatewayExec, labDown, labUp, type Lab } from '../../lab/index.js';
import { webApi } from '@slack/bolt';
import type { ApplyOutcome, ApplyStepState, Snapshot } from '../../src/apply/model.js';
import { rollbackRefusal } from '../../src/apply/rollback-guard.js';
import type { CheckReport, PlanStep } from '../../src/core/model.js';
import { enqueueApply } from '../../src/queue/producer.js';
import { SlackApplyPublisher } from '../../src/slack/publish/apply-message.js';
import { SlackMessageWriter } from '../../src/slack/publish/message-writer.js';
import type { PlanRecord } from '../../src/store/plan-store.js';
import { startSlackApi, type SlackApiServer } from '../support/slack-api/index.js';
import { approvedPlan, checkReport, finishedApplyJob, openHarness, startApplyWorker, sysctlStep, type Harness } from '../apply/helpers/harness.js';

const EST = 'nf_conntrack_tcp_timeout_established';

let lab: Lab;
let h: Harness;
let report: CheckReport;
let slack: SlackApiServer;
let writer: SlackMessageWriter;
let worker: { close(): Promise<void> } | undefined;
const CHANNEL = 'C0GUARD01';

async function established(): Promise<number> {
  const r = await gatewayExec(lab, ['cat', `/proc/sys/net/netfilter/${EST}`], { check: true });
  return Number(r.stdout.trim());
}

/** 3,000 quiet ESTABLISHED entries (conntrack -I from a file), so the count is well above the few SSH entries. */
async function loadEntries(): Promise<void> {
  const lines = Array.from({ length: 3000 }, (_, i) => `-I -p tcp -s ${lab.clientIps[0]} -d ${lab.serverAddress} --sport ${30000 + i} --dport 8080 --state ESTABLISHED -u ASSURED -t 3000`);
  const dir = await mkdtemp(join(tmpdir(), 'cto-guard-'));
  try {
    await writeFile(join(dir, 'entries'), `${lines.join('\n')}\n`);
    await gatewayExec(lab, ['conntrack', '-R', join(dir, 'entries')], { check: true });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** An approved plan whose message is in the local Slack's channel (the roll back result replaces it). */
async function slackPlan(steps: PlanStep[]): Promise<PlanRecord> {
  const plan = await approvedPlan(h, report, steps);
  await h.plans.setMessage(plan.planId, await writer.post({ channel: CHANNEL }, { text: 'plan', blocks: [] }));
  return (await h.plans.get(plan.planId)) ?? plan;
}

/** The Roll back button's job: attempt = roll backs run so far (a refused one counts), on the real apply worker. */
async function rollBackThroughQueue(planId: string): Promise<ApplyOutcome> {
  const attempt = await h.records.runs(planId, 'rollback');
  const id = await enqueueApply(h.queues, { action: 'rollback', planId, gateway: lab.name, decidedBy: 'U-approver', origin: { kind: 'slack', channel: CHANNEL }, attempt });
  const job = await finishedApplyJob(h, id);
  if (!job.outcome) throw new Error(`roll back job ${id} ended ${job.state} without an outcome`);
  return job.outcome;
}

beforeAll(async () => {
  slack = await startSlackApi({ channels: [{ id: CHANNEL, name: 'ops' }] });
  writer = new SlackMessageWriter(new webApi.WebClient(slack.token, { slackApiUrl: slack.apiUrl, retryConfig: { retries: 0 } }));
  lab = await labUp({ clients: 1, sourcesPerClient: 1 });
  h = await openHarness(lab.name, lab.inventoryEntry);
  report = await checkReport(h);
  worker = startApplyWorker(h, { concurrency: 1, publisherFor: (job) => new SlackApplyPublisher(writer, h.plans, job.action) });
}, 120_000);

afterAll(async () => {
  await worker?.close();
  await h?.queues.apply.obliterate({ force: true }).catch(() => undefined);
  await h?.close();
  await slack?.close();
  if (lab) await labDown(lab);
});

describe('roll back guard', () => {
  it('a newer plan on the same key: roll back of the older one is refused naming it, nothing changes; newest first works', async () => {
    const original = await established();
    const a = await slackPlan([sysctlStep('a-est', EST, original, 86_400)]);
    expect((await h.engine.apply(a.planId, { actor: 'U-approver' })).outcome).toBe('applied');
    const b = await slackPlan([sysctlStep('b-est', EST, 86_400, 3_600)]);
    expect((await h.engine.apply(b.planId, { actor: 'U-approver' })).outcome).toBe('applied');
    expect(await established()).toBe(3_600);

    // Through the queue and the real Slack publisher, as the Roll back button does.
    const refused = await rollBackThroughQueue(a.planId);
    expect(refused.outcome).toBe('refused');
    expect(refused.message).toContain(`plan ${b.planId}`);
    expect(refused.message).toContain(EST);
    expect(refused.message).toContain('first');
    expect(refused.canRollBack).toBe(true);
    expect(await established()).toBe(3_600); // B's value stays
    expect((await h.plans.get(a.planId))?.status).toBe('applied'); // A can be rolled back later
    expect((await h.history.list(lab.name)).some((r) => r.event === 'refused' && r.planId === a.planId)).toBe(true);
    const shown = slack.messages(CHANNEL).map((m) => `${m.text}\n${JSON.stringify(m.blocks)}`).join('\n');
    expect(shown).toContain('Roll back that plan first');
    expect(shown).toContain(b.planId);
    console.log(`[figure] newer plan guard: ${refused.message}`);

    expect((await rollBackThroughQueue(b.planId)).outcome).toBe('rolled-back');
    expect(await established()).toBe(86_400);
    // Asked again after the refusal: a new job, and now it runs.
    expect((await rollBackThroughQueue(a.planId)).outcome).toBe('rolled-back');
    expect(await established()).toBe(original);
  }, 120_000);

  it('restored nf_conntrack_max below the real entry count: refused with the numbers; above it: allowed', async () => {
    await loadEntries();
    const count = await conntrackCount(lab);
    expect(count).toBeGreaterThanOrEqual(3000);
    const plan = await approvedPlan(h, report, [sysctlStep('max', 'nf_conntrack_max', 1024, 262_144)]);
    const steps: ApplyStepState[] = [{ stepId: 'max', kind: 'sysctl', key: 'nf_conntrack_max', status: 'applied', before: '1024', after: '262144', expected: '262144' }];
    const snapshotWith = (max: number): Snapshot => ({
      takenAt: new Date().toISOString(),
      sysctl: { nf_conntrack_max: max },
      hashsize: null,
      files: { sysctl: null, modprobe: null },
      rules: [],
      nftTableExisted: null,
      count: 0,
      max,
      stats: null,
      tableFullLines: [],
    });
    const lease = await h.pool.provider(lab.name, lab.inventoryEntry);
    try {
      const low = 1024;
      const refusal = await rollbackRefusal(h, plan, snapshotWith(low), steps, lease.session);
      expect(refusal).not.toBeNull();
      expect(refusal).toContain('nf_conntrack_max back to 1,024');
      expect(refusal).toMatch(/the table holds [\d,]+ entries now/);
      expect(refusal).toContain('Nothing was changed');
      console.log(`[figure] max guard: real count ${count}, snapshot max ${low}: ${refusal}`);
      expect(await rollbackRefusal(h, plan, snapshotWith(count + 100_000), steps, lease.session)).toBeNull();
    } finally {
      lease.release();
    }
  }, 120_000);
});
