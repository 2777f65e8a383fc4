/**
 * `/conntrack check all` (defect 12), with real parts: signed slash commands into the real
 * Bolt app (HTTP mode), real Redis, real workers, a real lab gateway over real sshd listed
 * N times in the inventory (N names, N real checks), and the local Slack API server,
 * which rejects any message Slack would reject (Block Kit validated) and rate-limits
 * chat.postMessage on command.
 *  - a non-approver is refused (ephemeral) and nothing is queued;
 *  - an approver's run posts ONE message in the channel, edited as each check ends;
 *    findings to act on go in its thread; chat.postMessage answering `ratelimited` (429)
 *    meanwhile loses nothing;
 *  - applies write through their own WebClient: an apply's progress edits are not
 *    held behind the checks' rate limit (delay measured with and without the spam, and,
 *    for comparison, with the old wiring where both shared one client).
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { App } from '@slack/bolt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { fillScenario, labDown, labUp, type Lab } from '../../lab/index.js';
import { loadEnv, type Env } from '../../src/config/env.js';
import { parseInventory } from '../../src/config/inventory.js';
import { openRuntime, type Runtime } from '../../src/runtime.js';
import { createSlackApp } from '../../src/slack/app.js';
import { CHECK_ALL_REFUSAL } from '../../src/slack/commands/check-all-command.js';
import { slackPublishers, slackWebClient } from '../../src/slack/publish/publishers.js';
import { SlackMessageWriter } from '../../src/slack/publish/message-writer.js';
import { SlackApplyPublisher } from '../../src/slack/publish/apply-message.js';
import { startWorkers } from '../../src/worker/start.js';
import type { ApplyStepState } from '../../src/apply/model.js';
import { realisticReport } from '../slack/blocks/fixtures.js';
import type { WebClient } from '@slack/web-api';
import { startSlackApi, type SlackApiServer, type StoredMessage } from '../support/slack-api/index.js';
import { buildSlashCommandBody, signedFormHeaders } from '../support/slack-signing.js';
import { waitUntil } from '../support/wait-until.js';

const SECRET = 'check-all-signing-secret-31';
const CHANNEL = 'C0OPS0001';
const ALICE = 'U0ALICE01'; // approver
const BOB = 'U0BOB0001'; // approver
const MALLORY = 'U0MALLOR1'; // not an approver
const N = 6;
const RETRY_AFTER_S = 3;
const TW = 'nf_conntrack_tcp_timeout_time_wait';

let slack: SlackApiServer;
let lab: Lab;
let rt: Runtime;
let env: Env;
let app: App;
let url: string;
let dir: string;
let names: string[];

async function slash(text: string, userId: string): Promise<{ status: number; json: Record<string, unknown> | null }> {
  const body = buildSlashCommandBody({ text, userId, channelId: CHANNEL, responseUrl: slack.responseUrl(undefined, { channel: CHANNEL, user: userId }) });
  const res = await fetch(url, { method: 'POST', headers: signedFormHeaders(SECRET, body), body });
  const raw = await res.text();
  return { status: res.status, json: raw ? (JSON.parse(raw) as Record<string, unknown>) : null };
}

const topLevel = (): StoredMessage[] => slack.messages(CHANNEL).filter((m) => m.threadTs === null);
const summaryMessage = (): StoredMessage | undefined => topLevel().find((m) => m.text.startsWith('Check of all '));

beforeAll(async () => {
  slack = await startSlackApi({
    channels: [{ id: CHANNEL, name: 'ops' }],
    users: [
      { id: ALICE, name: 'alice' },
      { id: BOB, name: 'bob' },
      { id: MALLORY, name: 'mallory' },
    ],
  });
  lab = await labUp({});
  await fillScenario(lab, ['timewait'], { timewait: 3000, established: 500 });
  dir = await mkdtemp(join(tmpdir(), 'cto-check-all-'));
  const inventoryPath = join(dir, 'inventory.yml');
  // N names for the one lab gateway: N real checks over real SSH, each with findings (warn from 1 %).
  names = Array.from({ length: N }, (_, i) => `${lab.name}-n${i}`);
  const gateways = Object.fromEntries([lab.name, ...names].map((n) => [n, { ...lab.inventoryEntry, thresholds: { warnPercent: 1 } }]));
  const inventory = parseInventory(stringify({ gateways }), inventoryPath);
  env = loadEnv({
    SLACK_MODE: 'http',
    SLACK_BOT_TOKEN: slack.token,
    SLACK_SIGNING_SECRET: SECRET,
    SLACK_API_URL: slack.apiUrl,
    APPROVERS: `${ALICE},${BOB}`,
    INVENTORY: inventoryPath,
    QUEUE_PREFIX: `{cto-faults-check-all-${process.pid}}`,
    LOG_LEVEL: 'error',
    ...(process.env['REDIS_URL'] ? { REDIS_URL: process.env['REDIS_URL'] } : {}),
    PATH: process.env['PATH'],
  });
  rt = await openRuntime(env, { inventory });
  app = createSlackApp({ rt, env });
  const server = (await app.start({ port: 0, host: '127.0.0.1' } as never)) as unknown as Server;
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/slack/events`;
}, 240_000);

afterAll(async () => {
  await rt?.queues.check.obliterate({ force: true }).catch(() => undefined);
  await rt?.queues.apply.obliterate({ force: true }).catch(() => undefined);
  await app?.stop();
  await rt?.close();
  await slack?.close();
  if (lab) await labDown(lab);
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('check all is for approvers', () => {
  it('a non-approver gets an ephemeral refusal; nothing is queued, nothing posted', async () => {
    const res = await slash('check all', MALLORY);
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ response_type: 'ephemeral', text: CHECK_ALL_REFUSAL });
    expect(await rt.queues.check.count()).toBe(0);
    expect(slack.calls('chat.postMessage')).toEqual([]);
  });
});

describe('check all posts one summary message, through a chat.postMessage rate limit', () => {
  it(`${N + 1} gateways: one channel message edited to the end, findings in its thread, nothing lost to 429s`, async () => {
    const workers = startWorkers(rt, { publishers: slackPublishers(rt, env), concurrency: 3, only: ['check'] });
    try {
      const res = await slash('check all', ALICE);
      expect(res.json?.['response_type']).toBe('ephemeral');
      expect(String(res.json?.['text'])).toMatch(new RegExp(`^Checking all ${N + 1} gateways`));
      const summary = await waitUntil('the summary message', summaryMessage);
      // From now on chat.postMessage is rate limited for a while, as Slack does under a burst.
      slack.rateLimit('chat.postMessage', 4000, 1);
      const done = await waitUntil('every gateway in the summary', () => {
        const m = slack.message(CHANNEL, summary.ts);
        return m && new RegExp(`: ${N + 1}/${N + 1} done`).test(m.text) ? m : undefined;
      }, 180_000, { context: () => JSON.stringify(slack.message(CHANNEL, summary.ts)?.text) });
      expect(done.text).toMatch(new RegExp(`^Check of all ${N + 1} gateways: ${N + 1}/${N + 1} done`));

      // One message in the channel; a findings reply per gateway in its thread, each with Approve.
      expect(topLevel().map((m) => m.ts)).toEqual([summary.ts]);
      const replies = slack.replies(CHANNEL, summary.ts);
      const withFindings = Number(/(\d+) with findings/.exec(done.text)?.[1] ?? NaN);
      // Each gateway with findings: its findings with the buttons (and their overflow detail) in the thread.
      const findingsReplies = replies.filter((r) => JSON.stringify(r.blocks).includes('plan_approve'));
      expect(findingsReplies.length).toBe(withFindings);
      expect(withFindings).toBeGreaterThan(0);
      const text = JSON.stringify(done.blocks);
      for (const g of [lab.name, ...names]) expect(text).toContain(`*${g}*`);

      const limited = slack.calls('chat.postMessage').filter((c) => c.status === 429);
      const okPosts = slack.calls('chat.postMessage').filter((c) => c.response.ok);
      const rejected = slack.calls().filter((c) => !c.response.ok && c.status !== 429);
      console.log(
        `[faults] check all of ${N + 1} gateways: channel messages 1 (was ${N + 1}), summary edits ${done.versions.length - 1}, thread replies ${replies.length} (${findingsReplies.length} findings with buttons); ` +
          `chat.postMessage answered ratelimited ${limited.length} times, posts that got through ${okPosts.length}, calls Slack rejected otherwise ${rejected.length}`,
      );
      expect(limited.length).toBeGreaterThan(0);
      expect(rejected).toEqual([]);
    } finally {
      await workers.close();
    }
  }, 240_000);
});

describe('applies are not held behind check spam (their own WebClient)', () => {
  const EDITS = 12;
  const EDIT_EVERY_MS = 250;
  const step = (status: ApplyStepState['status']): ApplyStepState => ({ stepId: 's1', kind: 'sysctl', key: TW, status, before: null, after: null, expected: '40' });

  /**
   * An apply's progress edits through the workers' apply publisher, EDITS of them one after
   * the other; returns how long each took to reach Slack (the message the user sees). With `spam`, a `check all` runs meanwhile through the real workers and
   * chat.postMessage is rate limited, so the checks' client waits on Retry-After.
   */
  async function editDelays(opts: { spam: boolean; sharedClient: boolean }): Promise<number[]> {
    slack.reset();
    const checkClient: WebClient = slackWebClient(env);
    const publishers = slackPublishers(rt, env, checkClient, { applyClient: opts.sharedClient ? checkClient : slackWebClient(env) });
    const workers = startWorkers(rt, { publishers, concurrency: 3, only: ['check'] });
    try {
      const plan = await rt.plans.create({ report: realisticReport(), requestedBy: ALICE, origin: { kind: 'slack', channel: CHANNEL }, ttlMinutes: 30 });
      const message = await new SlackMessageWriter(slackWebClient(env)).post({ channel: CHANNEL }, { text: 'plan', blocks: [] });
      await rt.plans.setMessage(plan.planId, message);
      const withMessage = { ...plan, message };
      if (opts.spam) {
        await slash('check all', ALICE);
        await waitUntil('the summary message', summaryMessage, 30_000);
        slack.rateLimit('chat.postMessage', 15_000, RETRY_AFTER_S);
        // A findings reply (the checks' client, in the summary's thread) answered 429: that client now waits.
        await slack.waitForCall('chat.postMessage', (c) => c.status === 429 && typeof c.args['thread_ts'] === 'string', 60_000);
      }
      const apply = publishers.apply({ action: 'apply', planId: plan.planId, gateway: lab.name, decidedBy: BOB, origin: { kind: 'slack', channel: CHANNEL } });
      if (!(apply instanceof SlackApplyPublisher)) throw new Error('a Slack plan gets the Slack apply publisher');
      const delays: number[] = [];
      for (let i = 0; i < EDITS; i++) {
        const started = performance.now();
        await apply.progress(withMessage, [step(i === EDITS - 1 ? 'applied' : 'running')]);
        // The apply does not wait for the edit (apply-message.ts); the user does: until it is in Slack.
        await apply.settled();
        delays.push(Math.round(performance.now() - started));
        await new Promise((r) => setTimeout(r, EDIT_EVERY_MS));
      }
      return delays;
    } finally {
      await workers.close();
      await rt.queues.check.obliterate({ force: true }).catch(() => undefined);
    }
  }

  it('figure: apply progress edits with check-all spam / without; own client vs the old shared one', async () => {
    const quiet = await editDelays({ spam: false, sharedClient: false });
    const spammed = await editDelays({ spam: true, sharedClient: false });
    const shared = await editDelays({ spam: true, sharedClient: true });
    const max = (xs: number[]): number => Math.max(...xs);
    const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
    console.log(
      `[faults] apply progress edits (${EDITS}, one every ${EDIT_EVERY_MS} ms) during a check all of ${N + 1} gateways with chat.postMessage rate-limited (Retry-After ${RETRY_AFTER_S} s): ` +
        `first edit ${spammed[0]} ms vs ${quiet[0]} ms without the spam, all edits ${sum(spammed)} ms vs ${sum(quiet)} ms (ratio ${(sum(spammed) / Math.max(1, sum(quiet))).toFixed(2)}), slowest ${max(spammed)} ms vs ${max(quiet)} ms; ` +
        `old wiring (one client for checks and applies): first ${shared[0]} ms, all ${sum(shared)} ms, slowest ${max(shared)} ms`,
    );
    // Never held behind the checks' Retry-After (generous bound for a loaded machine).
    expect(max(spammed)).toBeLessThan(RETRY_AFTER_S * 1000 * 0.5);
    // The old wiring was: some edit waited on the checks' Retry-After.
    expect(max(shared)).toBeGreaterThan(max(spammed));
  }, 300_000);
});
