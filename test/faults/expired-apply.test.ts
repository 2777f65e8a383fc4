/**
 * Plan expiry at apply start (defect 19, the expiry part). A plan approved inside its window
 * whose apply job only starts after the window closed (it waited behind a busy gateway) is
 * not applied: through the real apply worker (BullMQ on real Redis) and the real Slack apply
 * publisher (local Slack API), on a real lab gateway.
 */
import { webApi } from '@slack/bolt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatewayExec, labDown, labUp, type Lab } from '../../lab/index.js';
import type { CheckReport } from '../../src/core/model.js';
import { enqueueApply } from '../../src/queue/producer.js';
import { SlackApplyPublisher } from '../../src/slack/publish/apply-message.js';
import { SlackMessageWriter } from '../../src/slack/publish/message-writer.js';
import { startSlackApi, type SlackApiServer } from '../support/slack-api/index.js';
import { checkReport, finishedApplyJob, openHarness, startApplyWorker, sysctlStep, type Harness } from '../apply/helpers/harness.js';

const CHANNEL = 'C0EXPIRE1';
const BOB = 'U0BOB0001';
const TW = 'nf_conntrack_tcp_timeout_time_wait';

let lab: Lab;
let h: Harness;
let slack: SlackApiServer;
let writer: SlackMessageWriter;
let report: CheckReport;

async function timeWait(): Promise<number> {
  return Number((await gatewayExec(lab, ['cat', `/proc/sys/net/netfilter/${TW}`], { check: true })).stdout.trim());
}

beforeAll(async () => {
  slack = await startSlackApi({ channels: [{ id: CHANNEL, name: 'ops' }] });
  writer = new SlackMessageWriter(new webApi.WebClient(slack.token, { slackApiUrl: slack.apiUrl, retryConfig: { retries: 0 } }));
  lab = await labUp({ clients: 1, sourcesPerClient: 1 });
  h = await openHarness(lab.name, lab.inventoryEntry);
  report = await checkReport(h);
}, 120_000);

afterAll(async () => {
  await h?.queues.apply.obliterate({ force: true }).catch(() => undefined);
  await h?.close();
  await slack?.close();
  if (lab) await labDown(lab);
});

describe('an approved plan whose apply starts after it expired', () => {
  it('is refused with a message saying so, goes to expired, and the gateway is untouched', async () => {
    const before = await timeWait();
    // Requested 31 minutes ago with the default 30-minute window; approved in time (no expiry check at the click).
    const plan = await h.plans.create({
      report: { ...report, plan: { steps: [sysctlStep('tw', TW, before, 40)], notes: ['expiry test'] } },
      requestedBy: 'U0ALICE01',
      origin: { kind: 'slack', channel: CHANNEL },
      ttlMinutes: 30,
      now: new Date(Date.now() - 31 * 60_000),
    });
    await h.plans.setMessage(plan.planId, await writer.post({ channel: CHANNEL }, { text: 'plan', blocks: [] }));
    expect((await h.plans.transition(plan.planId, ['pending'], 'approved', { actor: BOB, now: new Date(Date.now() - 2 * 60_000) })).ok).toBe(true);

    const worker = startApplyWorker(h, { concurrency: 1, publisherFor: (job) => new SlackApplyPublisher(writer, h.plans, job.action) });
    try {
      const id = await enqueueApply(h.queues, { action: 'apply', planId: plan.planId, gateway: lab.name, decidedBy: BOB, origin: plan.origin });
      const job = await finishedApplyJob(h, id);
      expect(job.outcome?.outcome).toBe('not-allowed');
      expect(job.outcome?.message).toContain(`expired at ${plan.expiresAt}`);
      expect(job.outcome?.message).toContain('nothing was applied');
    } finally {
      await worker.close();
    }
    expect((await h.plans.get(plan.planId))?.status).toBe('expired');
    expect(await timeWait()).toBe(before);
    const history = await h.history.list(lab.name);
    expect(history.some((r) => r.event === 'expired' && r.planId === plan.planId)).toBe(true);
    // What the channel reads: the plan's message now says it expired and nothing was applied.
    const shown = slack.messages(CHANNEL).map((m) => `${m.text}\n${JSON.stringify(m.blocks)}`).join('\n');
    expect(shown).toContain('expired');
    expect(shown).toContain('nothing was applied');
  }, 90_000);
});
