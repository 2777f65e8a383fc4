/**
 * The decision log cannot be erased by checks (defect 11). Real Redis, the real Bolt app (HTTP
 * mode, signed requests) and the local Slack Web API server:
 *   a plan is approved by a signed button click; then 500 check records land in the
 *   gateway's history (as the check processor writes them: the recent list keeps 200); then
 *   `/conntrack history gw-3`: the approval, by whom and for which plan, is still shown.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { App } from '@slack/bolt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadEnv } from '../../src/config/env.js';
import { loadInventory } from '../../src/config/inventory.js';
import { openRuntime, type Runtime } from '../../src/runtime.js';
import { createSlackApp } from '../../src/slack/app.js';
import { realisticReport } from '../slack/blocks/fixtures.js';
import { startSlackApi, type SlackApiServer } from '../support/slack-api/index.js';
import { buildBlockActionsBody, buildSlashCommandBody, signedFormHeaders } from '../support/slack-signing.js';
import { waitUntil } from '../support/wait-until.js';
import { writeUnreachableInventory } from './inventory-file.js';

const SECRET = 'faults-audit-secret-5c19';
const CHANNEL = 'C0AUDIT01';
const ALICE = 'U0ALICE01'; // requester
const BOB = 'U0BOB0001'; // approver
const MALLORY = 'U0MALL001'; // runs checks
const GATEWAY = 'gw-3';
const CHECKS = 500;

let slack: SlackApiServer;
let rt: Runtime;
let app: App;
let url: string;
let dir: string;

beforeAll(async () => {
  slack = await startSlackApi({
    channels: [{ id: CHANNEL, name: 'ops' }],
    users: [
      { id: ALICE, name: 'alice' },
      { id: BOB, name: 'bob' },
      { id: MALLORY, name: 'mallory' },
    ],
  });
  dir = await mkdtemp(join(tmpdir(), 'cto-audit-'));
  const inventoryPath = await writeUnreachableInventory(dir, GATEWAY);
  const env = loadEnv({
    SLACK_MODE: 'http',
    SLACK_BOT_TOKEN: slack.token,
    SLACK_SIGNING_SECRET: SECRET,
    SLACK_API_URL: slack.apiUrl,
    APPROVERS: BOB,
    INVENTORY: inventoryPath,
    QUEUE_PREFIX: `{cto-faults-audit-${process.pid}}`,
    LOG_LEVEL: 'error',
    ...(process.env['REDIS_URL'] ? { REDIS_URL: process.env['REDIS_URL'] } : {}),
    PATH: process.env['PATH'],
  });
  rt = await openRuntime(env, { inventory: await loadInventory(inventoryPath) });
  app = createSlackApp({ rt, env, clientOptions: { retryConfig: { retries: 0 } } });
  const server = (await app.start({ port: 0, host: '127.0.0.1' } as never)) as unknown as Server;
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/slack/events`;
}, 60_000);

afterAll(async () => {
  await rt?.queues.apply.obliterate({ force: true }).catch(() => undefined);
  await app?.stop();
  await rt?.close();
  await slack?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function post(body: string): Promise<void> {
  const res = await fetch(url, { method: 'POST', headers: signedFormHeaders(SECRET, body), body });
  await res.text();
  expect(res.status).toBe(200);
}

describe('decisions survive any number of checks', () => {
  it(`an approval is still in /conntrack history after ${CHECKS} checks`, async () => {
    const plan = await rt.plans.create({ report: realisticReport(), requestedBy: ALICE, origin: { kind: 'slack', channel: CHANNEL }, ttlMinutes: 30 });
    const posted = await app.client.chat.postMessage({ channel: CHANNEL, text: 'plan' });
    const messageTs = String(posted.ts);
    await post(
      buildBlockActionsBody({
        actionId: 'plan_approve',
        value: plan.planId,
        userId: BOB,
        channelId: CHANNEL,
        messageTs,
        responseUrl: slack.responseUrl(undefined, { channel: CHANNEL, user: BOB, messageTs }),
      }),
    );
    await waitUntil('the approval', async () => (await rt.plans.get(plan.planId))?.status === 'approved', 10_000);

    // 500 checks by someone else, each recorded as the check processor records it.
    const t0 = Date.now();
    for (let i = 0; i < CHECKS; i++) {
      await rt.history.record({ at: new Date(t0 + i + 1).toISOString(), gateway: GATEWAY, event: 'check', actor: MALLORY, planId: `check-${i}`, summary: 'ok: 10/262144 (0%), table-healthy' });
    }
    // The checks did fill the recent list (its 200 places hold only checks now) ...
    const recent = await rt.redis.lrange(`${rt.env.QUEUE_PREFIX}:history:${GATEWAY}`, 0, -1);
    expect(recent).toHaveLength(200);
    expect(recent.every((r) => r.includes('"event":"check"'))).toBe(true);
    // ... but not the decision log.
    const decisions = await rt.history.audit.recent(GATEWAY, 50);
    expect(decisions.filter((d) => d.event === 'approved' && d.planId === plan.planId && d.actor === BOB)).toHaveLength(1);
    expect(await rt.history.audit.length(GATEWAY)).toBe(1);

    // What a user sees.
    await post(buildSlashCommandBody({ text: `history ${GATEWAY}`, userId: ALICE, channelId: CHANNEL, responseUrl: slack.responseUrl(undefined, { channel: CHANNEL, user: ALICE }) }));
    const reply = await slack.waitForResponse((p) => JSON.stringify(p.body).includes('History of'));
    const shown = JSON.stringify(reply.body);
    expect(shown).toContain('approved');
    expect(shown).toContain(plan.planId);
    expect(shown).toContain(BOB);
    console.log(`[figure] decisions kept after ${CHECKS} checks: 1 of 1 (recent list: 200 checks); /conntrack history shows the approval of ${plan.planId} by ${BOB}`);
  }, 60_000);
});
