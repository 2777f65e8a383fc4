/**
 * Abuse of the approval path, through signed block_actions requests into the real Bolt
 * app (HTTP mode), real Redis and the local Slack Web API server:
 *  - a checkbox payload with more than 10 options, or one malformed id, is refused and
 *    nothing happens (defect 14: it used to become "no optional steps" and approve);
 *  - usergroups.users.list failing makes the approval fail closed, and the user is told
 *    (defect 15: it threw after the ack, with no reply).
 * Each case: the plan stays pending and no apply job is queued.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { App } from '@slack/bolt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadEnv } from '../../src/config/env.js';
import { openRuntime, type Runtime } from '../../src/runtime.js';
import { createSlackApp } from '../../src/slack/app.js';
import type { PlanRecord } from '../../src/store/plan-store.js';
import { realisticReport } from '../slack/blocks/fixtures.js';
import { startSlackApi, type SlackApiServer } from '../support/slack-api/index.js';
import { buildBlockActionsBody, signedFormHeaders } from '../support/slack-signing.js';
import { waitUntil } from '../support/wait-until.js';

const SECRET = 'faults-signing-secret-7e21';
const CHANNEL = 'C0OPS0001';
const ALICE = 'U0ALICE01'; // requester
const BOB = 'U0BOB0001'; // approver by id
const CAROL = 'U0CAROL01'; // approver only through the user group

let slack: SlackApiServer;
let rt: Runtime;
let app: App;
let url: string;
let messageTs: string;

beforeAll(async () => {
  slack = await startSlackApi({
    channels: [{ id: CHANNEL, name: 'ops' }],
    users: [
      { id: ALICE, name: 'alice' },
      { id: BOB, name: 'bob' },
      { id: CAROL, name: 'carol' },
    ],
    usergroups: [{ id: 'S0NETOPS1', handle: 'netops', users: [CAROL] }],
  });
  const env = loadEnv({
    SLACK_MODE: 'http',
    SLACK_BOT_TOKEN: slack.token,
    SLACK_SIGNING_SECRET: SECRET,
    SLACK_API_URL: slack.apiUrl,
    APPROVERS: `${ALICE},${BOB}`,
    APPROVER_GROUPS: 'S0NETOPS1',
    QUEUE_PREFIX: `{cto-faults-approval-${process.pid}}`,
    LOG_LEVEL: 'error',
    ...(process.env['REDIS_URL'] ? { REDIS_URL: process.env['REDIS_URL'] } : {}),
    PATH: process.env['PATH'],
  });
  rt = await openRuntime(env, { inventory: { gateways: {} } });
  app = createSlackApp({ rt, env, clientOptions: { retryConfig: { retries: 0 } } });
  const server = (await app.start({ port: 0, host: '127.0.0.1' } as never)) as unknown as Server;
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/slack/events`;
  // A real message for the buttons to sit on (the bot edits it after a decision).
  const posted = await app.client.chat.postMessage({ channel: CHANNEL, text: 'plan' });
  messageTs = String(posted.ts);
}, 60_000);

afterAll(async () => {
  await rt?.queues.apply.obliterate({ force: true }).catch(() => undefined);
  await app?.stop();
  await rt?.close();
  await slack?.close();
});

function newPlan(): Promise<PlanRecord> {
  return rt.plans.create({ report: realisticReport(), requestedBy: ALICE, origin: { kind: 'slack', channel: CHANNEL }, ttlMinutes: 30 });
}

async function clickApprove(planId: string, userId: string, selected: { value: string }[] | undefined): Promise<number> {
  const responseUrl = slack.responseUrl(undefined, { channel: CHANNEL, user: userId, messageTs });
  const stateValues = selected
    ? { plan_optional: { plan_optional_steps: { type: 'checkboxes', selected_options: selected.map((o) => ({ ...o, text: { type: 'plain_text', text: o.value } })) } } }
    : undefined;
  const body = buildBlockActionsBody({ actionId: 'plan_approve', value: planId, userId, channelId: CHANNEL, messageTs, responseUrl, ...(stateValues ? { stateValues } : {}) });
  const res = await fetch(url, { method: 'POST', headers: signedFormHeaders(SECRET, body), body });
  await res.text();
  return res.status;
}

async function applyJobsFor(planId: string): Promise<number> {
  const jobs = await rt.queues.apply.getJobs(['waiting', 'delayed', 'active', 'completed', 'failed', 'prioritized']);
  return jobs.filter((j) => j.data.planId === planId).length;
}

const toldTo = (user: string, pattern: RegExp): Promise<string> =>
  waitUntil(`${user} told ${pattern}`, () => slack.ephemerals({ user }).map((e) => e.text).find((t) => pattern.test(t)), 10_000);

describe('checkbox payload abuse (defect 14)', () => {
  it('more than 10 ticked options: refused, the plan stays pending, no apply job', async () => {
    const plan = await newPlan();
    const eleven = Array.from({ length: 11 }, () => ({ value: 's4' }));
    expect(await clickApprove(plan.planId, BOB, eleven)).toBe(200);
    await toldTo(BOB, /ticked optional steps in this request are not valid/);
    expect((await rt.plans.get(plan.planId))?.status).toBe('pending');
    expect(await applyJobsFor(plan.planId)).toBe(0);
  });

  it('one malformed id among valid ones: refused, nothing done', async () => {
    const plan = await newPlan();
    expect(await clickApprove(plan.planId, BOB, [{ value: 's4' }, { value: 's5; rm -rf /' }])).toBe(200);
    await waitUntil('the refusal', () => slack.ephemerals({ user: BOB }).filter((e) => /not valid/.test(e.text)).length >= 2 || undefined, 10_000);
    expect((await rt.plans.get(plan.planId))?.status).toBe('pending');
    expect(await applyJobsFor(plan.planId)).toBe(0);
  });

  it('a well-formed payload still approves with the ticked step (the guard is not a wall)', async () => {
    const plan = await newPlan();
    expect(await clickApprove(plan.planId, BOB, [{ value: 's4' }])).toBe(200);
    await waitUntil('approved', async () => ((await rt.plans.get(plan.planId))?.status === 'approved' ? true : undefined), 10_000);
    const jobs = await rt.queues.apply.getJobs(['waiting', 'delayed', 'active', 'completed', 'failed', 'prioritized']);
    expect(jobs.filter((j) => j.data.planId === plan.planId).map((j) => j.data.steps)).toEqual([['s4']]);
  });
});

describe('user-group lookup failure (defect 15)', () => {
  it('usergroups.users.list fails: no approval, and the user is told why', async () => {
    const plan = await newPlan();
    slack.failNext('usergroups.users.list', { error: 'ratelimited', times: 5 });
    expect(await clickApprove(plan.planId, CAROL, undefined)).toBe(200);
    const told = await toldTo(CAROL, /Could not check the approver groups/);
    expect(told).toMatch(/nothing was done/);
    expect((await rt.plans.get(plan.planId))?.status).toBe('pending');
    expect(await applyJobsFor(plan.planId)).toBe(0);
    // Once Slack answers again, the group member can approve.
    await waitUntil(
      'carol approves once the lookup works',
      async () => {
        await clickApprove(plan.planId, CAROL, undefined);
        await new Promise((r) => setTimeout(r, 300));
        return (await rt.plans.get(plan.planId))?.status === 'approved' ? true : undefined;
      },
      20_000,
    );
    expect(await applyJobsFor(plan.planId)).toBe(1);
  });
});
