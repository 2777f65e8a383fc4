/**
 * The Slack publishers (check-message.ts, apply-message.ts) through the one message
 * writer, against the local Slack Web API (which refuses what Slack would) and real
 * Redis for the plan store: one live message per job, the findings' overflow in the
 * thread with nothing lost, the apply progress and result on the plan's message.
 */
import type { RedisConnection } from '../../../src/infra/redis.js';
import { webApi } from '@slack/bolt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ApplyOutcome, ApplyStepState } from '../../../src/apply/model.js';
import type { CheckReport } from '../../../src/core/model.js';
import { openRedis, type RedisHandle } from '../../../src/infra/redis.js';
import { findingsOverflow, renderFindings } from '../../../src/slack/blocks/index.js';
import { codeBlockBody } from '../../../src/slack/blocks/kit.js';
import { SlackApplyPublisher } from '../../../src/slack/publish/apply-message.js';
import { OVERFLOW_REPLIES, SlackCheckPublisher } from '../../../src/slack/publish/check-message.js';
import { SlackMessageWriter } from '../../../src/slack/publish/message-writer.js';
import { JobMessageStore } from '../../../src/store/job-messages.js';
import { PlanStore, type PlanRecord } from '../../../src/store/plan-store.js';
import { hugeReport, realisticReport } from '../blocks/fixtures.js';
import { joinedCodeBlocks, startSlackApi, type SlackApiServer } from '../../support/slack-api/index.js';

const CHANNEL = 'C0OPS0001';
let slack: SlackApiServer;
let writer: SlackMessageWriter;
let handle: RedisHandle;
let redis: RedisConnection;
let plans: PlanStore;

beforeAll(async () => {
  slack = await startSlackApi({ channels: [{ id: CHANNEL, name: 'ops' }] });
  writer = new SlackMessageWriter(new webApi.WebClient(slack.token, { slackApiUrl: slack.apiUrl, retryConfig: { retries: 0 } }));
  handle = await openRedis(process.env['REDIS_URL']);
  redis = handle.connect();
  plans = new PlanStore(redis, `{cto-test-publishers-${process.pid}}`);
}, 30_000);
afterAll(async () => {
  await slack?.close();
  redis?.disconnect();
  await handle?.stop();
});
afterEach(() => {
  slack.reset();
});

const slackOrigin = { kind: 'slack' as const, channel: CHANNEL };

function newPlan(report: CheckReport, origin: PlanRecord['origin'] = slackOrigin): Promise<PlanRecord> {
  return plans.create({ report, requestedBy: 'U0ALICE01', origin, ttlMinutes: 30 });
}

describe('check publisher', () => {
  it('a retried job (a new publisher per attempt, maybe on another worker) keeps updating one message', async () => {
    const store = new JobMessageStore(redis, `{cto-test-publishers-${process.pid}}`);
    const jobId = `check-gw-3-retry-${Date.now()}`;
    const first = new SlackCheckPublisher(writer, slackOrigin, { store, jobId });
    await first.progress('gw-3', [{ name: 'SSH connect', status: 'running' }]);
    await first.failed('gw-3', [{ name: 'SSH connect', status: 'failed' }], 'connection reset');
    const second = new SlackCheckPublisher(writer, slackOrigin, { store, jobId });
    await second.progress('gw-3', [{ name: 'SSH connect', status: 'running' }]);
    const report = realisticReport();
    await second.findings(report, await newPlan(report));
    const messages = slack.messages(CHANNEL);
    expect(messages).toHaveLength(1);
    expect(messages[0]!.versions).toHaveLength(4);
    expect(messages[0]!.text).toContain(report.gateway);
  });

  it('one message: progress posted, updated per step, then replaced by the findings; no overflow, no thread', async () => {
    const p = new SlackCheckPublisher(writer, slackOrigin);
    await p.progress('gw-3', [{ name: 'SSH connect', status: 'running' }, { name: 'Dump table', status: 'pending' }]);
    await p.progress('gw-3', [{ name: 'SSH connect', status: 'done' }, { name: 'Dump table', status: 'running' }]);
    const report = realisticReport();
    const ref = await p.findings(report, await newPlan(report));
    const [m] = slack.messages(CHANNEL);
    expect(m?.ts).toBe(ref.ts);
    expect(m?.versions.map((v) => v.text.slice(0, 40))).toEqual(['Checking gw-3: SSH connect (0/2)', 'Checking gw-3: Dump table (1/2)', expect.stringContaining(report.gateway)]);
    expect(slack.replies(CHANNEL, ref.ts)).toHaveLength(0);
    expect(slack.calls().every((c) => c.response.ok)).toBe(true);
  });

  it('an overflow that fits the replies: all of it in the thread, every reply accepted, nothing lost', async () => {
    const report = hugeReport({ findings: 4, steps: 4, talkers: 20, stringLength: 100, evidence: 3, notes: 1 });
    const plan = await newPlan(report);
    const overflow = findingsOverflow(report, plan.planId);
    // More than the old single 2,900-character reply could carry, less than the replies can.
    expect(overflow.length).toBeGreaterThan(6000);
    const ref = await new SlackCheckPublisher(writer, slackOrigin).findings(report, plan);
    const replies = slack.replies(CHANNEL, ref.ts);
    expect(replies.length).toBeGreaterThanOrEqual(1);
    expect(replies.length).toBeLessThanOrEqual(OVERFLOW_REPLIES);
    expect(slack.calls('chat.postMessage').map((c) => c.response.ok)).toEqual(Array(1 + replies.length).fill(true));
    expect(joinedCodeBlocks(replies)).toBe(codeBlockBody(overflow));
    expect(replies[0]?.text).toMatch(/^Full detail for gw-/);
    expect(slack.uploadedFiles()).toHaveLength(0);
  });

  it('an overflow too long for the replies: the replies, then the whole text as a file in the thread', async () => {
    const report = hugeReport({ findings: 300, steps: 300, talkers: 300, stringLength: 2000 });
    const plan = await newPlan(report);
    const overflow = renderFindings(report, { planId: plan.planId, requestedBy: plan.requestedBy, expiresAt: plan.expiresAt, approvable: true }).overflow ?? '';
    expect(overflow.length).toBeGreaterThan(100_000);
    const ref = await new SlackCheckPublisher(writer, slackOrigin).findings(report, plan);
    const replies = slack.replies(CHANNEL, ref.ts);
    const text = replies.filter((r) => r.via === 'api');
    expect(text).toHaveLength(OVERFLOW_REPLIES);
    expect(codeBlockBody(overflow).startsWith(joinedCodeBlocks(text))).toBe(true);
    const shared = replies.filter((r) => r.via === 'files');
    expect(shared).toHaveLength(1);
    expect(shared[0]?.text).toMatch(/all [\d,]+ characters in one file/);
    const [file] = slack.uploadedFiles();
    expect(file).toMatchObject({ completed: true, channel: CHANNEL, threadTs: ref.ts, snippetType: 'text' });
    expect(file?.filename).toMatch(new RegExp(`^conntrack-gw-[A-Za-z0-9._-]{1,57}-${plan.planId}\\.txt$`));
    expect(file?.content?.toString('utf8')).toBe(overflow);
    expect(slack.calls().every((c) => c.response.ok)).toBe(true);
  });

  it('a follow-up check posted in a thread keeps its overflow in that same thread', async () => {
    const parent = await writer.post({ channel: CHANNEL }, { text: 'applied plan', blocks: [] });
    const report = hugeReport({ findings: 4, steps: 4, talkers: 20, stringLength: 100, evidence: 3, notes: 1 });
    const p = new SlackCheckPublisher(writer, { ...slackOrigin, threadTs: parent.ts });
    const ref = await p.findings(report, await newPlan(report, { ...slackOrigin, threadTs: parent.ts }));
    expect(slack.message(CHANNEL, ref.ts)?.threadTs).toBe(parent.ts);
    expect(slack.messages(CHANNEL).filter((m) => m.threadTs !== null && m.threadTs !== parent.ts)).toEqual([]);
    expect(slack.replies(CHANNEL, parent.ts).length).toBeGreaterThanOrEqual(2);
  });

  it('a failure keeps the steps and says why, with the hint', async () => {
    const p = new SlackCheckPublisher(writer, slackOrigin);
    await p.progress('gw-3', [{ name: 'SSH connect', status: 'running' }]);
    await p.failed('gw-3', [{ name: 'SSH connect', status: 'failed', detail: 'timed out' }], 'connect timed out', 'is the gateway up?');
    const [m] = slack.messages(CHANNEL);
    expect(m?.versions).toHaveLength(2);
    expect(m?.text).toBe('Check of gw-3 failed: connect timed out');
    expect(JSON.stringify(m?.blocks)).toContain(':bulb: is the gateway up?');
  });
});

describe('apply publisher', () => {
  const step = (over: Partial<ApplyStepState>): ApplyStepState => ({ stepId: 's1', kind: 'sysctl', key: 'nf_conntrack_tcp_timeout_time_wait', status: 'pending', before: null, after: null, expected: '30', ...over });

  function outcome(plan: PlanRecord, action: 'apply' | 'rollback', steps: ApplyStepState[]): ApplyOutcome {
    return {
      planId: plan.planId,
      gateway: plan.gateway,
      action,
      outcome: action === 'apply' ? 'applied' : 'rolled-back',
      by: 'U0BOB0001',
      startedAt: '2026-11-24T14:12:00.000Z',
      at: '2026-11-24T14:12:02.300Z',
      durationMs: 2300,
      message: '',
      steps,
      problems: [],
      verify: [{ name: 'read back', ok: true }],
      verifyReport: null,
      restore: null,
      notes: [],
      canRollBack: action === 'apply',
      followUp: null,
    };
  }

  it('progress and result go on the plan\'s message; the progress says what runs (apply, then roll back)', async () => {
    const report = realisticReport();
    const plan = await newPlan(report);
    const findings = await writer.post({ channel: CHANNEL }, { text: 'findings', blocks: [] });
    await plans.setMessage(plan.planId, findings);
    const withMessage = { ...plan, message: findings };

    const apply = new SlackApplyPublisher(writer, plans, 'apply');
    await apply.progress(withMessage, [step({ status: 'running' })]);
    await apply.settled();
    expect(slack.message(CHANNEL, findings.ts)?.text).toBe(`Applying the plan on ${plan.gateway}: nf_conntrack_tcp_timeout_time_wait -> 30 (0/1)`);
    const applied = [step({ status: 'applied', before: '120', after: '30' })];
    await apply.result(withMessage, outcome(plan, 'apply', applied));
    const afterApply = slack.message(CHANNEL, findings.ts);
    expect(afterApply?.text).toMatch(/^Plan applied on .*: 1 applied/);
    expect(JSON.stringify(afterApply?.blocks)).toContain('plan_rollback');

    const rollback = new SlackApplyPublisher(writer, plans, 'rollback');
    await rollback.progress(withMessage, [step({ status: 'running' })]);
    await rollback.settled();
    expect(slack.message(CHANNEL, findings.ts)?.text).toMatch(/^Rolling back the plan on /);
    await rollback.result(withMessage, outcome(plan, 'rollback', [step({ status: 'rolled-back', before: '30', after: '120' })]));
    expect(slack.message(CHANNEL, findings.ts)?.text).toMatch(/^Plan rolled back on /);
    expect(slack.messages(CHANNEL)).toHaveLength(1);
    expect(slack.calls('chat.update')).toHaveLength(4);
  });

  it('a plan without a message gets one where it came from, and the plan remembers it', async () => {
    const plan = await newPlan(realisticReport());
    await new SlackApplyPublisher(writer, plans, 'apply').failed({ action: 'apply', planId: plan.planId, gateway: plan.gateway, decidedBy: 'U0BOB0001', origin: plan.origin }, plan, 'Redis went away');
    const [m] = slack.messages(CHANNEL);
    expect(m?.text).toBe(`apply of ${plan.gateway} failed: Redis went away`);
    expect((await plans.get(plan.planId))?.message).toEqual({ channel: CHANNEL, ts: m?.ts });
  });

  it('a plan from the terminal without a message shows nothing', async () => {
    const plan = await newPlan(realisticReport(), { kind: 'cli' });
    const publisher = new SlackApplyPublisher(writer, plans, 'apply');
    await publisher.progress(plan, [step({ status: 'running' })]);
    await publisher.settled();
    expect(slack.calls()).toHaveLength(0);
  });
});
