/**
 * Slack rate-limits the bot's progress edits during a long apply: chat.update answers
 * HTTP 429 with `Retry-After` (as Slack does), on a real apply on a real lab gateway over
 * real sshd, through the apply publisher and the bot's own WebClient options
 * (slackClientOptions: explicit timeout and retries). Shown:
 *  - no call reaches Slack before the Retry-After has passed (timestamps recorded by the
 *    local Slack API server);
 *  - every rate-limited request is sent again and succeeds (nothing silently dropped);
 *  - the apply completes without waiting for Slack (progress edits are sent beside it,
 *    the newest state only), and its final message arrives.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadEnv } from '../../src/config/env.js';
import type { PlanStep } from '../../src/core/model.js';
import { applyResultView, SlackApplyPublisher } from '../../src/slack/publish/apply-message.js';
import { renderApplyResult } from '../../src/slack/blocks/index.js';
import { SlackMessageWriter } from '../../src/slack/publish/message-writer.js';
import { slackWebClient } from '../../src/slack/publish/publishers.js';
import type { PlanRecord } from '../../src/store/plan-store.js';
import { gatewayExec, labDown, labUp, type Lab } from '../../lab/index.js';
import { startSlackApi, type RecordedCall, type SlackApiServer } from '../support/slack-api/index.js';
import { checkReport, openHarness, sysctlStep, type Harness } from '../apply/helpers/harness.js';
import type { CheckReport } from '../../src/core/model.js';

const CHANNEL = 'C0OPS0001';
const BOB = 'U0BOB0001';
const KEYS = ['nf_conntrack_tcp_timeout_time_wait', 'nf_conntrack_tcp_timeout_close_wait', 'nf_conntrack_tcp_timeout_fin_wait', 'nf_conntrack_tcp_timeout_last_ack'];
const RETRY_AFTER_S = 2;

let lab: Lab;
let h: Harness;
let slack: SlackApiServer;
let report: CheckReport;
let writer: SlackMessageWriter;
const original: Record<string, number> = {};

async function sysctl(key: string): Promise<number> {
  return Number((await gatewayExec(lab, ['cat', `/proc/sys/net/netfilter/${key}`])).stdout.trim());
}

/** Four steps, each lowering a timeout a little: four progress edits and a result. */
function steps(): PlanStep[] {
  return KEYS.map((key, i) => sysctlStep(`s${i}`, key, original[key]!, Math.max(10, original[key]! - 7 - i)));
}

async function slackPlan(): Promise<PlanRecord> {
  const plan = await h.plans.create({ report: { ...report, plan: { steps: steps(), notes: ['rate limit test'] } }, requestedBy: 'U0ALICE01', origin: { kind: 'slack', channel: CHANNEL }, ttlMinutes: 30 });
  const posted = await writer.post({ channel: CHANNEL }, { text: 'plan', blocks: [] });
  await h.plans.setMessage(plan.planId, posted);
  const t = await h.plans.transition(plan.planId, ['pending'], 'approved', { actor: BOB, checkExpiry: true });
  if (!t.ok) throw new Error(`cannot approve: ${t.current}`);
  return (await h.plans.get(plan.planId)) ?? plan;
}

beforeAll(async () => {
  slack = await startSlackApi({ channels: [{ id: CHANNEL, name: 'ops' }] });
  const env = loadEnv({ SLACK_MODE: 'http', SLACK_BOT_TOKEN: slack.token, SLACK_SIGNING_SECRET: 'unused-secret-1', SLACK_API_URL: slack.apiUrl, LOG_LEVEL: 'error', PATH: process.env['PATH'] });
  // The bot's own client options (timeout, retries, rate-limited calls wait): nothing overridden.
  writer = new SlackMessageWriter(slackWebClient(env));
  lab = await labUp({ clients: 1, sourcesPerClient: 1, firewall: 'nft' });
  h = await openHarness(lab.name, lab.inventoryEntry);
  report = await checkReport(h);
  for (const key of KEYS) original[key] = await sysctl(key);
}, 180_000);

afterAll(async () => {
  await h?.close();
  await slack?.close();
  if (lab) await labDown(lab);
});

describe('chat.update answers 429 with Retry-After during a long apply', () => {
  let plainMs = 0;
  let plainApplyMs = 0;

  it('without rate limits (the baseline): applied, then rolled back', async () => {
    const plan = await slackPlan();
    const publisher = new SlackApplyPublisher(writer, h.plans, 'apply');
    const started = performance.now();
    const outcome = await h.engine.apply(plan.planId, { actor: BOB, onProgress: (p, s) => publisher.progress(p, s) });
    plainApplyMs = performance.now() - started;
    await publisher.result(plan, outcome);
    plainMs = performance.now() - started;
    expect(outcome.outcome).toBe('applied');
    expect((await h.engine.rollback(plan.planId, { actor: BOB })).outcome).toBe('rolled-back');
    for (const key of KEYS) expect(await sysctl(key)).toBe(original[key]);
    slack.reset();
  }, 60_000);

  it('Retry-After is respected, every limited request is sent again, the apply completes and its final message arrives', async () => {
    const plan = await slackPlan();
    const publisher = new SlackApplyPublisher(writer, h.plans, 'apply');
    let injected = false;
    const started = performance.now();
    const outcome = await h.engine.apply(plan.planId, {
      actor: BOB,
      onProgress: (p, s) => publisher.progress(p, s),
      afterStep: () => {
        // From the first step on: the next two edits are rate limited.
        if (!injected) slack.failNext('chat.update', { status: 429, retryAfter: RETRY_AFTER_S, times: 2 });
        injected = true;
      },
    });
    const applyMs = performance.now() - started;
    await publisher.result(plan, outcome);
    const limitedMs = performance.now() - started;

    expect(outcome.outcome).toBe('applied');
    for (const [i, key] of KEYS.entries()) expect(await sysctl(key)).toBe(Math.max(10, original[key]! - 7 - i));
    // The final message is the result, on the plan's message.
    const ref = (await h.plans.get(plan.planId))?.message;
    const final = renderApplyResult(applyResultView(outcome));
    expect(slack.message(CHANNEL, ref?.ts ?? '')?.text).toBe(final.text);

    const calls = slack.calls();
    const limited = calls.filter((c) => c.status === 429);
    expect(limited.length).toBe(2);
    // No call of any method before a Retry-After ran out (the client holds all its calls).
    const early: string[] = [];
    for (const l of limited) {
      const until = l.at + RETRY_AFTER_S * 1000;
      for (const c of calls) if (c.seq > l.seq && c.at < until) early.push(`${c.method} ${until - c.at} ms early`);
    }
    const gaps = limited.map((l) => (calls.find((c) => c.seq > l.seq)?.at ?? NaN) - l.at);
    // Each limited request is sent again with the same content and succeeds.
    const resentOk = (l: RecordedCall): boolean => calls.some((c) => c.seq > l.seq && c.method === l.method && c.response.ok && c.args['text'] === l.args['text']);
    const dropped = limited.filter((l) => !resentOk(l));
    console.log(
      `[faults] chat.update 429 (Retry-After ${RETRY_AFTER_S} s) x${limited.length} during a ${KEYS.length}-step apply: calls before Retry-After expired ${early.length}; ` +
        `next call after the 429 at +${gaps.map((g) => Math.round(g)).join(' ms, +')} ms; limited requests dropped ${dropped.length}; ` +
        `the apply itself ${Math.round(applyMs)} ms (without rate limits ${Math.round(plainApplyMs)} ms: progress edits do not hold it), ` +
        `final message arrived ${Math.round(limitedMs)} ms after the start (without rate limits ${Math.round(plainMs)} ms)`,
    );
    // The apply does not wait for Slack's Retry-After (generous bound for a loaded machine).
    expect(applyMs).toBeLessThan(plainApplyMs + RETRY_AFTER_S * 1000);
    expect(early).toEqual([]);
    expect(dropped).toEqual([]);
    expect(calls.filter((c) => !c.response.ok && c.status !== 429)).toEqual([]);
    expect((await h.engine.rollback(plan.planId, { actor: BOB })).outcome).toBe('rolled-back');
  }, 90_000);
});
