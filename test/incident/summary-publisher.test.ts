/**
 * The incident summary's Slack side with real Redis and the local Slack API server (no lab):
 * posted once per episode and pinned, edited in place after polls and history records, never
 * twice from two processes, a Slack failure never fails whoever recorded history, the chart
 * (the real one, src/incident/chart.ts) once at resolution, and a critical check on a gateway with no episode opens one.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebClient } from '@slack/web-api';
import type { RedisConnection } from '../../src/infra/redis.js';
import { ApplyRecordStore } from '../../src/apply/store.js';
import { checkReportSchema } from '../../src/core/model.js';
import { parseInventory } from '../../src/config/inventory.js';
import { defaultChartRenderer } from '../../src/incident/chart-port.js';
import { IncidentMessageStore } from '../../src/incident/message-store.js';
import { openRedis, type RedisHandle } from '../../src/infra/redis.js';
import { DEFAULT_EPISODE_RULES, type PollSample } from '../../src/monitor/episodes.js';
import { WatchList } from '../../src/monitor/watch-list.js';
import { WatchStore } from '../../src/monitor/watch-store.js';
import { SlackIncidentSummary } from '../../src/slack/publish/incident-summary.js';
import { SlackMessageWriter } from '../../src/slack/publish/message-writer.js';
import { HistoryStore } from '../../src/store/history-store.js';
import { PlanStore } from '../../src/store/plan-store.js';
import { waitUntil } from '../support/wait-until.js';
import { startSlackApi, type SlackApiServer } from '../support/slack-api/index.js';
import { realisticReport } from '../slack/blocks/fixtures.js';

const INCIDENTS = 'C0INCID01';
const OPS = 'C0OPS0001';
const GW = 'gw-7';

let slack: SlackApiServer;
let handle: RedisHandle;
let redis: RedisConnection;
let prefix: string;
let n = 0;
let watchStore: WatchStore;
let history: HistoryStore;
let plans: PlanStore;
let made: SlackIncidentSummary[] = [];

const inventory = parseInventory(
  `gateways:\n  ${GW}:\n    host: 198.18.0.7\n    user: ops\n    identityFile: /nonexistent/key\n    hostKey: "SHA256:${'A'.repeat(43)}"\n`,
  'inline.yml',
);

function summary(opts: { channel?: string | null; now?: () => Date } = {}): SlackIncidentSummary {
  const s = new SlackIncidentSummary({
    writer: new SlackMessageWriter(new WebClient(slack.token, { slackApiUrl: slack.apiUrl, retryConfig: { retries: 0 } })),
    stores: { watchStore, history, plans, applies: new ApplyRecordStore(redis, prefix) },
    messages: new IncidentMessageStore(redis, prefix),
    watchList: new WatchList(redis, prefix),
    inventory: () => inventory,
    incidentChannel: opts.channel === undefined ? INCIDENTS : opts.channel,
    chart: defaultChartRenderer,
    debounceMs: 50,
    refreshMs: 60_000,
    ...(opts.now ? { now: opts.now } : {}),
  });
  made.push(s);
  return s;
}

const base = Date.parse('2026-12-04T10:00:00Z');
let tick = 0;
function sample(count: number, drop = 0): PollSample {
  return { at: new Date(base + ++tick * 1000).toISOString(), gatewayAtMs: null, count, max: 262_144, stats: { drop, earlyDrop: 0, insertFailed: 0 }, tableFullLines: 0 };
}

async function poll(s: SlackIncidentSummary, count: number, drop = 0): Promise<void> {
  const t = await watchStore.advance(GW, { ok: true, sample: sample(count, drop) }, DEFAULT_EPISODE_RULES);
  s.afterPoll({ gateway: GW, events: t.events, state: t.state, entry: null });
}

const summaries = () => slack.messages().filter((m) => m.threadTs === null && m.text.startsWith(`${GW}: conntrack incident`));

beforeAll(async () => {
  slack = await startSlackApi({ channels: [{ id: INCIDENTS, name: 'incidents' }, { id: OPS, name: 'ops' }], users: [{ id: 'U0BOB0001', name: 'bob' }] });
  handle = await openRedis(undefined);
  redis = handle.connect();
});

afterEach(async () => {
  for (const s of made) s.close();
  made = [];
  await watchStore?.close();
  slack.reset();
});

afterAll(async () => {
  redis.disconnect();
  await handle.stop();
  await slack.close();
});

function fresh(): void {
  prefix = `t-incident-${++n}`;
  tick = 0;
  watchStore = new WatchStore(redis, prefix);
  history = new HistoryStore(redis, prefix);
  plans = new PlanStore(redis, prefix);
}

describe('incident summary in Slack', () => {
  it('posts one pinned message when the episode opens and edits it after polls and history records', async () => {
    fresh();
    const s = summary();
    history.onRecord((r) => s.afterRecord(r));
    await poll(s, 1000);
    expect(summaries()).toHaveLength(0); // no episode, nothing to say
    await poll(s, 225_000);
    await poll(s, 225_000); // 85.8 %, two polls in a row: a warning opens
    const posted = await waitUntil('the summary', () => summaries()[0]);
    expect(posted.channel).toBe(INCIDENTS);
    expect(posted.text).toContain('investigating (warning)');
    await waitUntil('the pin', () => slack.pins(INCIDENTS).length > 0);
    expect(slack.pins(INCIDENTS).map((m) => m.ts)).toEqual([posted.ts]);

    await history.record({ at: new Date(base + 5_000).toISOString(), gateway: GW, event: 'rejected', actor: 'U0BOB0001', planId: null, summary: 'not now' });
    await waitUntil('the edit after the record', () => JSON.stringify(slack.message(INCIDENTS, posted.ts)?.blocks).includes('not now'));
    await poll(s, 255_000); // 97.3 %: escalated, an event, so a refresh
    await waitUntil('the edit after the poll', () => slack.message(INCIDENTS, posted.ts)!.text.includes('investigating (critical), peak 97.3 %'));
    const edits = slack.message(INCIDENTS, posted.ts)!.versions.length;
    await poll(s, 255_100); // no event, numbers fresh enough (refreshMs 60 s): no edit
    await new Promise((r) => setTimeout(r, 300));
    expect(slack.message(INCIDENTS, posted.ts)!.versions).toHaveLength(edits);
    expect(summaries()).toHaveLength(1);
    expect(slack.calls('chat.postMessage').filter((c) => c.response.ok)).toHaveLength(1);
    expect(slack.message(INCIDENTS, posted.ts)!.versions.length).toBeGreaterThanOrEqual(3);
  });

  it('two processes refreshing at once post one message; an unchanged rendering is not written again', async () => {
    fresh();
    const fixed = () => new Date(base + 60_000);
    const a = summary({ now: fixed });
    const b = summary({ now: fixed });
    await watchStore.advance(GW, { ok: true, sample: sample(255_000) }, DEFAULT_EPISODE_RULES);
    const [ra, rb] = await Promise.all([a.refresh(GW), b.refresh(GW)]);
    expect(summaries()).toHaveLength(1);
    expect([ra, rb].filter((r) => r !== null).length).toBeGreaterThanOrEqual(1);
    const ts = summaries()[0]!.ts;
    await a.refresh(GW);
    await b.refresh(GW);
    expect(slack.message(INCIDENTS, ts)!.versions).toHaveLength(1);
    expect(slack.calls('chat.update')).toHaveLength(0);
  });

  it('a Slack failure never fails the job that recorded history; the next record edits it again', async () => {
    fresh();
    const s = summary();
    history.onRecord((r) => s.afterRecord(r));
    await poll(s, 255_000);
    const posted = await waitUntil('the summary', () => summaries()[0]);
    slack.failNext('chat.update', { error: 'internal_error' });
    await expect(history.record({ at: new Date(base + 5_000).toISOString(), gateway: GW, event: 'expired', actor: 'system', planId: null, summary: 'plan expired once' })).resolves.toBeUndefined();
    await waitUntil('the failed update', () => slack.calls('chat.update').some((c) => !c.response.ok));
    await history.record({ at: new Date(base + 6_000).toISOString(), gateway: GW, event: 'expired', actor: 'system', planId: null, summary: 'plan expired twice' });
    await waitUntil('the edit after the failure', () => JSON.stringify(slack.message(INCIDENTS, posted.ts)?.blocks).includes('plan expired twice'));
  });

  it('at resolution the chart goes into the thread once, with the peak in its alt text', async () => {
    fresh();
    const s = summary();
    await poll(s, 255_000);
    const posted = await waitUntil('the summary', () => summaries()[0]);
    for (let i = 0; i < 3; i++) await poll(s, 1_000);
    await waitUntil('resolved', () => slack.message(INCIDENTS, posted.ts)!.text.includes('incident resolved'));
    const file = await waitUntil('the chart', () => slack.uploadedFiles().find((f) => f.completed));
    expect(file.threadTs).toBe(posted.ts);
    expect(file.altText).toContain('Peak 97.3%');
    expect(file.content?.subarray(1, 4).toString()).toBe('PNG');
    await s.refresh(GW);
    await poll(s, 900);
    await s.refresh(GW);
    expect(slack.uploadedFiles()).toHaveLength(1);
    // on request: again, in the same thread
    const again = await s.postChart(GW, { channel: OPS });
    expect(again).not.toBeNull();
    expect(slack.uploadedFiles().filter((f) => f.threadTs === posted.ts)).toHaveLength(2);
  });

  it('a critical check on an unwatched gateway with no episode opens one; its summary goes where the check was asked', async () => {
    fresh();
    const s = summary({ channel: null });
    history.onRecord((r) => s.afterRecord(r));
    const report = checkReportSchema.parse({ ...realisticReport(), gateway: GW, checkedAt: new Date(base).toISOString() });
    const plan = await plans.create({ report, requestedBy: 'U0BOB0001', origin: { kind: 'slack', channel: OPS }, ttlMinutes: 30 });
    await history.record({ at: report.checkedAt, gateway: GW, event: 'check', actor: 'U0BOB0001', planId: plan.planId, summary: `critical: ${report.conntrack.count}/${report.conntrack.max}, table-saturated` });
    const posted = await waitUntil('the summary', () => summaries()[0]);
    expect(posted.channel).toBe(OPS);
    const state = await watchStore.state(GW);
    expect(state.episode).toMatchObject({ status: 'open', level: 'critical', kind: 'drops', openedAt: report.checkedAt });
    expect(JSON.stringify(posted.blocks)).toContain('detected by a check');
    // a second critical check joins the open episode
    await history.record({ at: new Date(base + 60_000).toISOString(), gateway: GW, event: 'check', actor: 'U0BOB0001', planId: plan.planId, summary: 'critical: again' });
    await new Promise((r) => setTimeout(r, 200));
    expect((await watchStore.state(GW)).episode?.id).toBe(state.episode?.id);
    expect(summaries()).toHaveLength(1);
  });

  it('closed by hand: the episode resolves with who closed it, in its timeline', async () => {
    fresh();
    const s = summary();
    await poll(s, 255_000);
    const posted = await waitUntil('the summary', () => summaries()[0]);
    const t = await watchStore.closeEpisode(GW, 'U0BOB0001', new Date(base + 30_000).toISOString());
    expect(t.events).toMatchObject([{ event: 'resolved', by: 'U0BOB0001' }]);
    expect((await watchStore.closeEpisode(GW, 'U0BOB0001', new Date(base + 31_000).toISOString())).events).toEqual([]);
    await s.refresh(GW);
    const text = JSON.stringify(slack.message(INCIDENTS, posted.ts)!.blocks);
    expect(text).toContain('*closed by hand* <@U0BOB0001>');
    expect(slack.message(INCIDENTS, posted.ts)!.text).toContain('incident resolved');
  });
});
