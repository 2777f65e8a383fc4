/**
 * Abuse: the plan's Approve button clicked in another channel (defect 19). Signed
 * block_actions into the real Bolt receiver (HTTP mode, real Redis): a click whose channel
 * is not the plan's message channel is refused with nothing done; the same approver's
 * click on the plan's own message approves it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { webApi, type App } from '@slack/bolt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRedis, type RedisHandle } from '../../src/infra/redis.js';
import { openRuntime, type Runtime } from '../../src/runtime.js';
import { listenerEnv, startHttpListener } from '../metrics/listener.js';
import { realisticReport } from '../slack/blocks/fixtures.js';
import { writeUnreachableInventory } from './inventory-file.js';
import { startSlackApi, type SlackApiServer } from '../support/slack-api/index.js';
import { buildBlockActionsBody, signedFormHeaders } from '../support/slack-signing.js';
import { waitUntil } from '../support/wait-until.js';

const CHANNEL = 'C0OPS0001';
const OTHER = 'C0OTHER01';
const ALICE = 'U0ALICE01';
const BOB = 'U0BOB0001';
const SECRET = 'listener-test-signing-secret';
let slack: SlackApiServer;
let redis: RedisHandle;
let dir: string;
let rt: Runtime;
let app: App;
let base: string;

beforeAll(async () => {
  slack = await startSlackApi({ channels: [{ id: CHANNEL, name: 'ops' }, { id: OTHER, name: 'elsewhere' }], users: [{ id: ALICE, name: 'alice' }, { id: BOB, name: 'bob' }] });
  redis = await openRedis(undefined);
  dir = await mkdtemp(join(tmpdir(), 'cto-button-channel-'));
  const inventory = await writeUnreachableInventory(dir, realisticReport().gateway);
  const env = listenerEnv({ slack, redisUrl: redis.url, inventory, incidentChannel: 'C0INCIDENT1' }, { APPROVERS: BOB });
  rt = await openRuntime(env);
  ({ app, base } = await startHttpListener(rt, env));
}, 60_000);

afterAll(async () => {
  await app?.stop();
  await rt?.close();
  await redis?.stop();
  await slack?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Posts the signed click; returns the response_url id its ephemeral answer (if any) goes to. */
async function click(planId: string, channel: string, messageTs: string): Promise<string> {
  const id = `click-${channel}-${Date.now()}`;
  const responseUrl = slack.responseUrl(id, { channel, user: BOB, messageTs });
  const body = buildBlockActionsBody({ actionId: 'plan_approve', value: planId, userId: BOB, channelId: channel, messageTs, responseUrl });
  const res = await fetch(`${base}/slack/events`, { method: 'POST', headers: signedFormHeaders(SECRET, body), body });
  expect(res.status).toBe(200);
  return id;
}

async function answerTo(id: string): Promise<string> {
  return String((await slack.waitForResponse((p) => p.id === id)).body['text'] ?? '');
}

describe('a plan button clicked outside the plan\'s channel', () => {
  it('is refused and nothing is done; the same click on the plan\'s message approves', async () => {
    const plan = await rt.plans.create({ report: realisticReport(), requestedBy: ALICE, origin: { kind: 'slack', channel: CHANNEL }, ttlMinutes: 30 });
    const posted = await new webApi.WebClient(slack.token, { slackApiUrl: slack.apiUrl }).chat.postMessage({ channel: CHANNEL, text: 'findings' });
    const ts = String(posted.ts);
    await rt.plans.setMessage(plan.planId, { channel: CHANNEL, ts });
    // A copy of the message (same ts, same plan id) in another channel.
    const refused = await answerTo(await click(plan.planId, OTHER, ts));
    expect(refused).toMatch(/not on the plan's message.*Nothing was done/);
    expect((await rt.plans.get(plan.planId))?.status).toBe('pending');
    expect(await rt.queues.apply.getJobCounts()).toMatchObject({ waiting: 0, delayed: 0, active: 0 });

    const accepted = await click(plan.planId, CHANNEL, ts);
    await waitUntil('the plan approved', async () => (await rt.plans.get(plan.planId))?.status === 'approved', 10_000);
    expect(slack.responses(accepted).map((r) => r.body['text'])).toEqual([]);
  }, 60_000);
});
