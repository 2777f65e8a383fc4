/**
 * /metrics of the running app, in HTTP mode (Bolt's custom routes) and in Socket Mode (our
 * node:http server on PORT; the Socket Mode client really connected to a local endpoint),
 * after real polls of a real lab gateway by real workers: the fleet's series are read from
 * Redis at scrape time and equal the stored state; the bot's series (job durations, queue
 * depth, Slack API errors) are there; promtool finds nothing to lint.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { App } from '@slack/bolt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fillToPercent, labDown, labUp, type Lab } from '../../lab/index.js';
import type { Env } from '../../src/config/env.js';
import { freePort, openRedis, type RedisHandle } from '../../src/infra/redis.js';
import { watchGateways } from '../../src/monitor/watch-control.js';
import { pollSchedulerId } from '../../src/queue/jobs.js';
import { openRuntime, type Runtime } from '../../src/runtime.js';
import { createSlackApp } from '../../src/slack/app.js';
import type { RunningWorkers } from '../../src/worker/start.js';
import { startSlackApi, type SlackApiServer } from '../support/slack-api/index.js';
import { listenerEnv, startHttpListener, startSlackWorkers } from './listener.js';
import { startLocalSocketMode, type LocalSocketMode } from './local-socket-mode.js';
import { metricTypes, promtoolCheckMetrics, scrape, seriesKey, waitUntil, type Scrape } from './scrape.js';

const INCIDENTS = 'C0METRIC1';
const AM_TOKEN = 'metrics-socket-am-token-01';

let slack: SlackApiServer;
let socketMode: LocalSocketMode;
let redis: RedisHandle;
let lab: Lab;
let rt: Runtime;
let env: Env;
let httpApp: App;
let socketApp: App;
let workers: RunningWorkers;
let dir: string;
let httpBase: string;
let socketBase: string;

beforeAll(async () => {
  slack = await startSlackApi({ channels: [{ id: INCIDENTS, name: 'incidents' }] });
  socketMode = await startLocalSocketMode(slack.apiUrl);
  redis = await openRedis(undefined);
  lab = await labUp({});
  dir = await mkdtemp(join(tmpdir(), 'cto-metrics-'));
  const inventory = join(dir, 'inventory.yml');
  await lab.writeInventory(inventory, { merge: false });
  const vars = { slack, redisUrl: redis.url, inventory, incidentChannel: INCIDENTS };
  env = listenerEnv(vars);
  rt = await openRuntime(env);
  ({ app: httpApp, base: httpBase } = await startHttpListener(rt, env));
  // the same runtime, served by a Socket Mode listener: its routes on PORT
  const socketPort = await freePort();
  const socketEnv = listenerEnv(vars, { SLACK_MODE: 'socket', SLACK_APP_TOKEN: 'xapp-1-local-socket-mode', SLACK_API_URL: socketMode.apiUrl, PORT: String(socketPort), ALERTMANAGER_TOKEN: AM_TOKEN });
  socketApp = createSlackApp({ rt, env: socketEnv, clientOptions: { retryConfig: { retries: 0 } } });
  await socketApp.start({ host: '127.0.0.1' } as never);
  socketBase = `http://127.0.0.1:${socketPort}`;
  workers = startSlackWorkers(rt, env, { warmSyncMs: 1_000 });
}, 240_000);

afterAll(async () => {
  await socketApp?.stop().catch(() => undefined);
  await httpApp?.stop().catch(() => undefined);
  await workers?.close();
  await rt?.close();
  if (lab) await labDown(lab);
  await redis?.stop();
  await socketMode?.close();
  await slack?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function value(s: Scrape, name: string, labels: Record<string, string> = {}): number | undefined {
  return s.series.get(seriesKey(name, labels));
}

describe('/metrics in both Slack modes', () => {
  it('serves /healthz in both modes and POST /alertmanager in Socket Mode too; Socket Mode is really connected', async () => {
    expect(socketMode.connections()).toBe(1);
    for (const base of [httpBase, socketBase]) {
      const res = await fetch(`${base}/healthz`);
      expect(res.status).toBe(200);
      expect(await res.text()).toBe('ok\n');
    }
    const wrong = await fetch(`${socketBase}/nothing-here`);
    expect(wrong.status).toBe(404);
    expect((await fetch(`${socketBase}/metrics`, { method: 'POST' })).status).toBe(405);
    // the same Alertmanager handler as in HTTP mode (test/monitor/alertmanager-receiver.test.ts)
    const am = (token: string) => fetch(`${socketBase}/alertmanager`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{"version":"3"}' });
    expect((await am('not-the-token')).status).toBe(401);
    expect((await am(AM_TOKEN)).status).toBe(400);
    // HTTP mode's listener here has no ALERTMANAGER_TOKEN: not configured
    expect((await fetch(`${httpBase}/alertmanager`, { method: 'POST', body: '{}' })).status).toBe(503);
  });

  it('after real polls: the gateway series equal the stored state, the episode is open, jobs are timed, and promtool finds nothing', async () => {
    const gw = lab.name;
    // the first episode post fails once: a Slack API error, counted by method and code
    slack.failNext('chat.postMessage', { error: 'channel_not_found' });
    await watchGateways({ inventory: rt.inventory, watchList: rt.watchList, queues: rt.queues, defaultIntervalSeconds: 1 }, [gw], { intervalSeconds: 1, channel: null, by: 'metrics-test' });
    await waitUntil('a first poll', async () => (await rt.watchStore.state(gw)).lastSample, 60_000);
    await fillToPercent(lab, 96);
    await waitUntil('the critical episode', async () => (await rt.watchStore.state(gw)).episode?.status === 'open', 60_000);
    // the automatic check at critical runs through the worker: its duration is observed
    await waitUntil('the automatic check to finish', async () => (await rt.queues.check.getJobCounts('completed', 'failed')).completed ?? 0, 120_000);
    await waitUntil('the episode message (after the injected failure)', () => slack.messages(INCIDENTS).length > 0, 30_000);
    // stop polling (the watch list stays: the series stay) and let a poll in flight land
    await rt.queues.poll.removeJobScheduler(pollSchedulerId(gw));
    await new Promise((r) => setTimeout(r, 2_500));
    const state = await rt.watchStore.state(gw);
    const sample = state.lastSample!;

    for (const base of [httpBase, socketBase]) {
      const s = await scrape(base);
      expect(s.status).toBe(200);
      expect(s.contentType).toContain('text/plain');
      const g = { gateway: gw };
      expect(value(s, 'conntrack_ops_nf_conntrack_entries', g)).toBe(sample.count);
      expect(sample.count / sample.max).toBeGreaterThan(0.95);
      expect(value(s, 'conntrack_ops_nf_conntrack_entries_limit', g)).toBe(sample.max);
      expect(value(s, 'conntrack_ops_nf_conntrack_stat_drop', g)).toBe(sample.stats.drop);
      expect(value(s, 'conntrack_ops_nf_conntrack_stat_early_drop', g)).toBe(sample.stats.earlyDrop);
      expect(value(s, 'conntrack_ops_nf_conntrack_stat_insert_failed', g)).toBe(sample.stats.insertFailed);
      expect(value(s, 'conntrack_ops_last_poll_timestamp_seconds', g)).toBe(Date.parse(state.lastPollAt!) / 1000);
      expect(Date.now() / 1000 - value(s, 'conntrack_ops_last_poll_timestamp_seconds', g)!).toBeLessThan(30);
      expect(value(s, 'conntrack_ops_last_poll_success', g)).toBe(1);
      expect(value(s, 'conntrack_ops_open_episodes', { gateway: gw, level: 'critical', kind: 'utilisation' })).toBe(1);
      // not node_exporter's names: both can be scraped side by side
      expect(s.text).not.toMatch(/^node_nf_conntrack/m);
      const types = metricTypes(s.text);
      expect(types.get('conntrack_ops_nf_conntrack_stat_drop')).toBe('gauge');
      expect(types.get('conntrack_ops_job_duration_seconds')).toBe('histogram');
      expect(value(s, 'conntrack_ops_job_duration_seconds_count', { queue: 'poll', outcome: 'completed' })).toBeGreaterThan(2);
      expect(value(s, 'conntrack_ops_job_duration_seconds_count', { queue: 'check', outcome: 'completed' })).toBeGreaterThanOrEqual(1);
      expect(value(s, 'conntrack_ops_queue_jobs', { queue: 'check', state: 'waiting' })).toBe(0);
      expect(value(s, 'conntrack_ops_queue_jobs', { queue: 'poll', state: 'active' })).toBeDefined();
      expect(value(s, 'conntrack_ops_slack_api_errors_total', { method: 'chat.postMessage', error: 'channel_not_found' })).toBe(1);
      // CTO_METRICS_RECORD=<file>: keep the scrape, to read it
      if (process.env['CTO_METRICS_RECORD'] && base === socketBase) await writeFile(process.env['CTO_METRICS_RECORD'], s.text);
      const lint = await promtoolCheckMetrics(s.text);
      expect(lint.out).toBe('');
      expect(lint.code).toBe(0);
    }
  }, 300_000);

  it('a job queued shows in the queue depth at the next scrape, and is gone from it once removed', async () => {
    await rt.queues.check.add('check', { gateway: lab.name, requestedBy: 'metrics-test', requestId: 'depth-probe', origin: { kind: 'cli' } }, { jobId: 'depth-probe', delay: 60_000 });
    const s = await scrape(socketBase);
    expect(value(s, 'conntrack_ops_queue_jobs', { queue: 'check', state: 'delayed' })).toBe(1);
    await rt.queues.check.remove('depth-probe');
    expect(value(await scrape(httpBase), 'conntrack_ops_queue_jobs', { queue: 'check', state: 'delayed' })).toBe(0);
  });
});
