/**
 * The incident summary end to end, with real parts only: two real lab NAT gateways over real
 * SSH, real Redis (embedded redis-server, reached by URL as by separate processes), the real
 * worker (in-process startWorkers, on its own runtime, restarted mid-episode; the watch test
 * covers the separate process), signed `/conntrack` commands and button clicks into the real
 * Bolt app on another runtime, and the local Slack API server.
 *
 * One story on gateway A: watch -> fill (dead ESTABLISHED entries + saturated + heavy hitter)
 * -> episode -> automatic check -> approval by a second user -> apply -> verify -> follow-up
 * -> the worker restarts -> drain -> resolved. At each stage the ONE pinned summary message
 * was edited, never re-posted. Beside it, gateway B (cheap: a small TIME_WAIT pile over a 1 %
 * warning line) has its own summary, closed by hand by an approver; the two never mix.
 *
 * The chart is the real one (src/incident/chart.ts: vega -> SVG -> resvg PNG).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { App } from '@slack/bolt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { fillScenario, flushTable, labDown, labUp, type FillResult, type Lab } from '../../lab/index.js';
import { loadEnv, type Env } from '../../src/config/env.js';
import { parseInventory, type Inventory } from '../../src/config/inventory.js';
import { openRedis, type RedisHandle } from '../../src/infra/redis.js';
import { openRuntime, type Runtime } from '../../src/runtime.js';
import { createSlackApp } from '../../src/slack/app.js';
import { slackPublishers, slackWebClient } from '../../src/slack/publish/index.js';
import { startWorkers, type RunningWorkers } from '../../src/worker/start.js';
import { waitUntil } from '../support/wait-until.js';
import { startSlackApi, type SlackApiServer, type StoredMessage } from '../support/slack-api/index.js';
import { buildBlockActionsBody, buildSlashCommandBody, signedFormHeaders } from '../support/slack-signing.js';

const SECRET = 'incident-signing-secret-3e9d';
const OPS = 'C0OPS0001';
const INCIDENTS = 'C0INCID01';
const ALICE = 'U0ALICE01'; // asks to watch; an approver
const BOB = 'U0BOB0001'; // the second user, an approver
const MALLORY = 'U0MALLOR1'; // not an approver
const ROOT = resolve(import.meta.dirname, '../..');

let slack: SlackApiServer;
let redis: RedisHandle;
let labA: Lab;
let labB: Lab;
let env: Env;
let inventory: Inventory;
let rtApp: Runtime;
let rtWorker: Runtime | null = null;
let workers: RunningWorkers | null = null;
let app: App;
let url: string;
let dir: string;
const timings: Record<string, number> = {};
const t0 = Date.now();
const mark = (what: string): void => {
  timings[what] = Math.round((Date.now() - t0) / 100) / 10;
};

async function startWorker(): Promise<void> {
  rtWorker = await openRuntime(env, { inventory });
  const publishers = slackPublishers(rtWorker, env, slackWebClient(env, { retryConfig: { retries: 0 } }));
  workers = startWorkers(rtWorker, { publishers, concurrency: 2, warmSyncMs: 1000 });
}

async function stopWorker(): Promise<void> {
  await workers?.close();
  await rtWorker?.close();
  workers = null;
  rtWorker = null;
}

async function post(body: string): Promise<number> {
  const res = await fetch(url, { method: 'POST', headers: signedFormHeaders(SECRET, body), body });
  await res.text();
  return res.status;
}

function slash(text: string, userId: string, channelId = OPS): Promise<number> {
  return post(buildSlashCommandBody({ text, userId, channelId, responseUrl: slack.responseUrl(undefined, { channel: channelId, user: userId }) }));
}

const body = (m: StoredMessage): string => `${m.text}\n${JSON.stringify(m.blocks)}`;
const topLevel = (): StoredMessage[] => slack.messages(INCIDENTS).filter((m) => m.threadTs === null || m.threadTs === m.ts);
const summariesOf = (gw: string): StoredMessage[] => topLevel().filter((m) => m.text.startsWith(`${gw}: conntrack incident`));
const int = (n: number): string => n.toLocaleString('en-US');

/** The one summary of `gw`, fresh, once `probe` holds. */
function summaryWhen(gw: string, what: string, probe: (text: string) => boolean, timeoutMs = 60_000): Promise<StoredMessage> {
  return waitUntil(`${gw}'s summary: ${what}`, () => {
    const all = summariesOf(gw);
    return all.length === 1 && probe(body(all[0]!)) ? all[0] : undefined;
  }, timeoutMs);
}

beforeAll(async () => {
  slack = await startSlackApi({
    channels: [
      { id: OPS, name: 'ops' },
      { id: INCIDENTS, name: 'incidents' },
    ],
    users: [
      { id: ALICE, name: 'alice' },
      { id: BOB, name: 'bob' },
      { id: MALLORY, name: 'mallory' },
    ],
  });
  redis = await openRedis(undefined);
  [labA, labB] = await Promise.all([labUp({}), labUp({})]);
  dir = await mkdtemp(join(tmpdir(), 'cto-incident-'));
  const inventoryPath = join(dir, 'inventory.yml');
  // B warns from 1 %: a small TIME_WAIT pile is enough for a (cheap) episode of its own.
  const yaml = stringify({ gateways: { [labA.name]: labA.inventoryEntry, [labB.name]: { ...labB.inventoryEntry, thresholds: { warnPercent: 1 } } } });
  await writeFile(inventoryPath, yaml);
  inventory = parseInventory(yaml, inventoryPath);
  env = loadEnv({
    SLACK_MODE: 'http',
    SLACK_BOT_TOKEN: slack.token,
    SLACK_SIGNING_SECRET: SECRET,
    SLACK_API_URL: slack.apiUrl,
    REDIS_URL: redis.url,
    APPROVERS: `${ALICE},${BOB}`,
    INVENTORY: inventoryPath,
    INCIDENT_CHANNEL: INCIDENTS,
    EPISODE_REFRESH_SECONDS: '5',
    FOLLOW_UP_DELAY_SECONDS: '3',
    LOG_LEVEL: 'error',
    PATH: process.env.PATH,
  });
  await startWorker();
  rtApp = await openRuntime(env, { inventory });
  app = createSlackApp({ rt: rtApp, env, clientOptions: { retryConfig: { retries: 0 } } });
  const server = (await app.start({ port: 0, host: '127.0.0.1' } as never)) as unknown as Server;
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/slack/events`;
}, 240_000);

afterAll(async () => {
  // CTO_SLACK_RECORD=<file>: keep what the bot wrote to the incident channel, to read it.
  if (process.env['CTO_SLACK_RECORD'] && slack) await writeFile(process.env['CTO_SLACK_RECORD'], JSON.stringify(slack.messages(INCIDENTS), null, 1));
  console.log(`incident e2e timings (s since start): ${JSON.stringify(timings)}`);
  await stopWorker();
  await app?.stop();
  await rtApp?.close();
  await Promise.all([labA && labDown(labA), labB && labDown(labB)]);
  await redis?.stop();
  await slack?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('incident summary: one pinned message per episode, edited in place from the first sign to the end', () => {
  let fill: FillResult;
  let summaryA: StoredMessage;
  /** Per stage, the first version of the summary that shows it: each stage a later edit of the one message. */
  const stageAt: { stage: string; version: number }[] = [];
  /** `sameEditAllowed`: this stage may land in the previous stage's edit (both inside one ~1 s debounce window). */
  const stage = (name: string, shows: (text: string) => boolean, sameEditAllowed = false): void => {
    const m = slack.message(INCIDENTS, summaryA.ts)!;
    const version = m.versions.findIndex((v) => shows(`${v.text}\n${JSON.stringify(v.blocks)}`));
    expect(version, `a version of the summary shows "${name}"`).toBeGreaterThanOrEqual(0);
    const previous = stageAt[stageAt.length - 1];
    if (previous && sameEditAllowed) expect(version, `"${name}" is shown no earlier than "${previous.stage}"`).toBeGreaterThanOrEqual(previous.version);
    else if (previous) expect(version, `"${name}" is an edit after "${previous.stage}"`).toBeGreaterThan(previous.version);
    stageAt.push({ stage: name, version });
    expect(summariesOf(labA.name), 'still one summary of A, never re-posted').toHaveLength(1);
  };

  it('A: filled -> episode -> the summary is posted and pinned; the automatic check makes the root cause, suspected', async () => {
    expect(await slash(`watch ${labA.name} every 1s`, ALICE)).toBe(200);
    expect(await slash(`watch ${labB.name} every 1s`, ALICE)).toBe(200);
    await waitUntil('both watched', async () => (await rtApp.watchList.all()).length === 2);
    mark('watching');
    fill = await fillScenario(labA, ['dead-established', 'saturated', 'heavy-hitter']);
    mark('A filled');
    expect(fill.heavyHitter).toBeTruthy();
    expect(fill.dead?.entries).toBe(20_000);

    summaryA = await summaryWhen(labA.name, 'posted', (t) => t.includes('investigating') || t.includes('suspected'), 60_000);
    mark('A summary posted');
    await waitUntil('the pin', () => slack.message(INCIDENTS, summaryA.ts)?.pinned);
    stage('posted', (t) => t.includes('conntrack incident investigating'));

    const withCause = await summaryWhen(labA.name, 'root cause from the automatic check', (t) => t.includes('suspected cause'), 180_000);
    mark('A root cause (suspected)');
    const text = body(withCause);
    // the heavy hitter and the dead entries, with the lab's numbers
    expect(text).toContain(`heavy hitter ${fill.heavyHitter!.ip} holds`);
    expect(text).toMatch(new RegExp(`heavy hitter ${fill.heavyHitter!.ip.replace(/\./g, '\\.')} holds \\d+ % of entries \\(UDP to ${labA.serverAddress.replace(/\./g, '\\.')}:2\\d{4}(-2\\d{4})?\\)`));
    const share = Number(/heavy hitter [\d.]+ holds (\d+) %/.exec(text)?.[1]);
    const counted = (await rtApp.plans.get((await rtApp.history.list(labA.name, 50)).find((r) => r.event === 'check')!.planId!))!.report.conntrack.count;
    expect(Math.abs(share - (fill.heavyHitter!.flows / counted) * 100)).toBeLessThanOrEqual(2);
    expect(text).toContain(`${int(fill.dead!.entries)} ESTABLISHED entries idle > 1 d under the 5 d timeout`);
    // the check ran at the escalation, while the fill was still going: at max, or just under it
    expect(text).toMatch(new RegExp(`table at (max|\\d+ % of max) ${int(fill.after.max)}`));
    expect(text).not.toContain('cause (confirmed');
    stage('suspected cause', (t) => t.includes('suspected cause'));
  }, 400_000);

  it('A: approved by a second user -> applied -> verified -> follow-up: the same message, the cause confirmed', async () => {
    const check = (await rtApp.history.list(labA.name, 50)).find((r) => r.event === 'check' && r.actor === 'watch');
    const plan = await rtApp.plans.get(check!.planId!);
    expect(plan?.message?.channel).toBe(INCIDENTS); // the findings are in the episode message's thread
    const messageTs = plan!.message!.ts;
    const responseUrl = slack.responseUrl(undefined, { channel: INCIDENTS, user: BOB, messageTs });
    expect(await post(buildBlockActionsBody({ actionId: 'plan_approve', value: plan!.planId, userId: BOB, channelId: INCIDENTS, messageTs, responseUrl }))).toBe(200);

    await summaryWhen(labA.name, 'approved by Bob', (t) => t.includes(`approved by <@${BOB}>`));
    mark('A approved');
    stage('approved', (t) => t.includes(`approved by <@${BOB}>`));
    await summaryWhen(labA.name, 'mitigated', (t) => t.includes('conntrack incident mitigated') && t.includes('-&gt;'), 120_000);
    mark('A applied (mitigated)');
    // the apply often completes within a second of the approval: one edit may show both
    stage('mitigated', (t) => t.includes('conntrack incident mitigated'), true);
    const confirmed = await summaryWhen(labA.name, 'follow-up', (t) => t.includes('*follow-up: '), 120_000);
    mark('A follow-up');
    expect(body(confirmed)).toContain('confirmed: the follow-up after the apply saw no more drops');
    expect(confirmed.text).toContain('; cause:');
    // confirmed, the cause is still the diagnosis the plan acted on (not the follow-up check's view after it)
    expect(body(confirmed)).toContain(`${int(fill.dead!.entries)} ESTABLISHED entries idle &gt; 1 d under the 5 d timeout`);
    expect(body(confirmed)).toContain(`heavy hitter ${fill.heavyHitter!.ip} holds`);
    stage('confirmed', (t) => t.includes('*follow-up: drops stopped*') && t.includes('; cause:'));
  }, 300_000);

  it('A: the worker restarts mid-episode, the table drains -> resolved in the same message; the chart in its thread once', async () => {
    await stopWorker();
    await flushTable(labA);
    mark('A drained');
    await startWorker();
    const resolvedMsg = await summaryWhen(labA.name, 'resolved', (t) => t.includes('conntrack incident resolved'), 90_000);
    mark('A resolved');
    stage('resolved', (t) => t.includes('conntrack incident resolved'));
    console.log(`summary of A: ${slack.message(INCIDENTS, summaryA.ts)!.versions.length} versions; stages at ${JSON.stringify(stageAt)}`);
    expect(slack.pins(INCIDENTS).filter((m) => m.ts === summaryA.ts)).toHaveLength(1);
    const text = body(resolvedMsg);
    expect(text).toContain('lasted');

    // the timeline: every event, with the approver's id
    const incident = await rtApp.watchStore.state(labA.name);
    expect(incident.episode?.status).toBe('resolved');
    for (const ev of ['detected', 'check', 'approved', 'applied', 'apply step', 'follow-up: drops stopped', 'resolved']) expect(text, ev).toContain(`*${ev}*`);
    expect(text).toContain(`*approved* <@${BOB}>`);

    const chart = await waitUntil('the chart in the summary thread', () => slack.uploadedFiles().find((f) => f.completed && f.threadTs === summaryA.ts), 30_000);
    mark('A chart');
    expect(chart.channel).toBe(INCIDENTS);
    expect(chart.content?.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    // a real image of sensible size (IHDR: width, height), whose alt text carries the peak
    expect(chart.content!.length).toBeGreaterThan(10_000);
    const [w, h] = [chart.content!.readUInt32BE(16), chart.content!.readUInt32BE(20)];
    expect(w).toBeGreaterThanOrEqual(600);
    expect(h).toBeGreaterThanOrEqual(250);
    expect(chart.altText).toContain(`Peak ${incident.episode!.peakPercent.toFixed(1)}%`);
    if (process.env['CTO_SLACK_RECORD']) await writeFile(`${process.env['CTO_SLACK_RECORD']}.png`, chart.content!);
    // a few more polls and records: still one chart, one summary
    await new Promise((r) => setTimeout(r, 4_000));
    expect(slack.uploadedFiles().filter((f) => f.threadTs === summaryA.ts)).toHaveLength(1);
    expect(summariesOf(labA.name)).toHaveLength(1);
  }, 200_000);

  it('B: its own summary that never mixes with A; /conntrack incident links to the pinned one; closed by hand by an approver only', async () => {
    await fillScenario(labB, ['timewait'], { timewait: 3000, established: 500 });
    const summaryB = await summaryWhen(labB.name, 'posted', (t) => t.includes('investigating'), 60_000);
    mark('B summary posted');
    expect(summaryB.ts).not.toBe(summaryA.ts);
    expect(body(summaryB)).not.toContain(labA.name);
    expect(body(slack.message(INCIDENTS, summaryA.ts)!)).not.toContain(labB.name);
    // the summary is posted, then pinned (pins.add follows chat.postMessage)
    const pinned = await waitUntil('B\'s summary pinned', () => {
      const ts = slack.pins(INCIDENTS).map((m) => m.ts).sort();
      return ts.length >= 2 ? ts : null;
    }, 10_000);
    expect(pinned).toEqual([summaryA.ts, summaryB.ts].sort());

    // the ephemeral answer links to the pinned message
    expect(await slash(`incident ${labB.name}`, MALLORY)).toBe(200);
    const shown = await slack.waitForResponse((p) => JSON.stringify(p.body).includes('The pinned summary'), 10_000);
    expect(shown.outcome).toBe('ephemeral');
    expect(JSON.stringify(shown.body)).toContain(`p${summaryB.ts.replace('.', '')}`);

    // close: not by a non-approver; by Bob after the watch stops (else the next poll reopens it)
    expect(await slash(`incident ${labB.name} close`, MALLORY)).toBe(200);
    await slack.waitForResponse((p) => JSON.stringify(p.body).includes('Only approvers'), 10_000);
    expect((await rtApp.watchStore.state(labB.name)).episode?.status).toBe('open');
    expect(await slash(`unwatch ${labB.name}`, ALICE)).toBe(200);
    await waitUntil('B unwatched', async () => (await rtApp.watchList.get(labB.name)) === null);
    expect(await slash(`incident ${labB.name} close`, BOB)).toBe(200);
    const closed = await summaryWhen(labB.name, 'closed by hand', (t) => t.includes('conntrack incident resolved'), 20_000);
    mark('B closed by hand');
    expect(body(closed)).toContain(`*closed by hand* <@${BOB}>`);
    expect((await rtApp.history.list(labB.name, 5)).find((r) => r.event === 'closed')?.actor).toBe(BOB);
    expect(body(closed)).not.toContain(labA.name);
    expect(summariesOf(labB.name)).toHaveLength(1);
    expect(summariesOf(labA.name)).toHaveLength(1);
  }, 200_000);

  it('the terminal shows the same incident: JSON fields, Markdown; without REDIS_URL it says so and exits 2', async () => {
    const run = (args: string[], extraEnv: Record<string, string>) =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((res) => {
        const p = spawn(join(ROOT, 'node_modules/.bin/tsx'), ['src/cli/main.ts', 'incident', ...args], { cwd: ROOT, env: { PATH: process.env.PATH, ...extraEnv } });
        let stdout = '';
        let stderr = '';
        p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        p.on('close', (code) => res({ code, stdout, stderr }));
      });
    const json = await run([labA.name, '--json'], { REDIS_URL: redis.url });
    expect(json.code, json.stderr).toBe(0);
    const parsed = JSON.parse(json.stdout) as Record<string, unknown>;
    for (const k of ['status', 'severity', 'gateway', 'detectedAt', 'mitigatedAt', 'resolvedAt', 'peakPercent', 'drops', 'rootCause', 'actions', 'timeline']) expect(parsed, k).toHaveProperty(k);
    expect(parsed['status']).toBe('resolved');
    expect(parsed['rootCause']).toMatchObject({ confirmed: true });
    expect((parsed['timeline'] as { by?: string }[]).some((t) => t.by === BOB)).toBe(true);
    const md = await run([labA.name, '--markdown'], { REDIS_URL: redis.url });
    expect(md.code, md.stderr).toBe(0);
    expect(md.stdout).toContain(`# Incident: conntrack table on ${labA.name}`);
    expect(md.stdout).toContain('## Root cause (confirmed)');
    const none = await run([labA.name], {});
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('REDIS_URL');
  }, 60_000);
});
