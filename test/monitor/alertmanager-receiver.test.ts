/**
 * POST /alertmanager with real HTTP requests against the real app (Bolt HTTP mode, its custom
 * routes), real Redis and the local Slack API server: authentication, limits, validation, an
 * alert opening and joining the gateway's episode with a check queued into its thread, a
 * resolution replied there, duplicate deliveries handled once, unknown instances counted.
 * (Socket Mode serves the same handler: test/metrics/metrics-endpoint.test.ts.)
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { App } from '@slack/bolt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRedis, type RedisHandle } from '../../src/infra/redis.js';
import { checkRequestIdOf } from '../../src/monitor/alertmanager-receiver.js';
import { webhookPayloadSchema } from '../../src/monitor/alertmanager.js';
import { checkJobId } from '../../src/queue/jobs.js';
import { openRuntime, type Runtime } from '../../src/runtime.js';
import { startSlackApi, type SlackApiServer, type StoredMessage } from '../support/slack-api/index.js';
import { listenerEnv, startHttpListener } from '../metrics/listener.js';
import { scrape, seriesKey } from '../metrics/scrape.js';

const TOKEN = 'am-token-0123456789abcdef';
const INCIDENTS = 'C0ALERTS1';
const KEY = 'SHA256:ic9+NvPvYbG8dlJBJUBOAsNcui4WkSOOwedwmWRpo6g';

let slack: SlackApiServer;
let redis: RedisHandle;
let rt: Runtime;
let app: App;
let bare: App;
let base: string;
let bareBase: string;
let dir: string;

beforeAll(async () => {
  slack = await startSlackApi({ channels: [{ id: INCIDENTS, name: 'incidents' }] });
  redis = await openRedis(undefined);
  dir = await mkdtemp(join(tmpdir(), 'cto-am-'));
  const inventory = join(dir, 'inventory.yml');
  await writeFile(
    inventory,
    `gateways:
  gw-3: { host: 198.19.1.2, user: root, identityFile: /k, hostKey: "${KEY}", aliases: [gw3.example.net] }
  gw-4: { host: gw4.example.net, user: root, identityFile: /k, hostKey: "${KEY}" }
`,
  );
  const vars = { slack, redisUrl: redis.url, inventory, incidentChannel: INCIDENTS };
  const env = listenerEnv(vars, { ALERTMANAGER_TOKEN: TOKEN, LOG_LEVEL: 'silent' });
  rt = await openRuntime(env);
  ({ app, base } = await startHttpListener(rt, env));
  ({ app: bare, base: bareBase } = await startHttpListener(rt, listenerEnv(vars, { LOG_LEVEL: 'silent' })));
}, 60_000);

afterAll(async () => {
  await app?.stop();
  await bare?.stop();
  await rt?.close();
  await redis?.stop();
  await slack?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

interface AlertInit {
  labels: Record<string, string>;
  status?: 'firing' | 'resolved';
  fingerprint?: string;
  startsAt?: string;
  summary?: string;
}

function alert({ labels, status = 'firing', fingerprint = 'c3a4b5d6e7f80912', startsAt = '2026-12-04T10:00:00.000Z', summary = 'conntrack table of 198.19.1.2:9100 at 97%' }: AlertInit) {
  return {
    status,
    labels: { alertname: 'ConntrackTableSaturated', severity: 'critical', kind: 'utilisation', ...labels },
    annotations: { summary },
    startsAt,
    endsAt: status === 'resolved' ? '2026-12-04T10:20:00.000Z' : '0001-01-01T00:00:00Z',
    generatorURL: 'http://127.0.0.1:9090/graph',
    fingerprint,
  };
}

function payload(alerts: object[], status: 'firing' | 'resolved' = 'firing'): object {
  return {
    version: '4',
    groupKey: '{}/{alertname=~"Conntrack.*"}:{alertname="ConntrackTableSaturated"}',
    truncatedAlerts: 0,
    status,
    receiver: 'conntrack-ops',
    groupLabels: { alertname: 'ConntrackTableSaturated' },
    commonLabels: {},
    commonAnnotations: {},
    externalURL: 'http://127.0.0.1:9093',
    alerts,
  };
}

function post(body: string | object, opts: { token?: string | null; at?: string } = {}): Promise<Response> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  const token = opts.token === undefined ? TOKEN : opts.token;
  if (token !== null) headers['authorization'] = `Bearer ${token}`;
  return fetch(`${opts.at ?? base}/alertmanager`, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
}

const topLevel = (): StoredMessage[] => slack.messages(INCIDENTS).filter((m) => m.threadTs === null || m.threadTs === m.ts);
const replies = (m: StoredMessage): StoredMessage[] => slack.replies(INCIDENTS, m.ts).filter((r) => r.ts !== m.ts);
const text = (m: StoredMessage): string => `${m.text}\n${JSON.stringify(m.blocks)}`;

describe('POST /alertmanager: who may post what', () => {
  it('without ALERTMANAGER_TOKEN the route accepts nothing and says it is not configured (503)', async () => {
    const res = await post(payload([alert({ labels: { instance: '198.19.1.2:9100' } })]), { at: bareBase });
    expect(res.status).toBe(503);
    expect(await res.text()).toContain('not configured');
  });

  it('a missing, wrong, or differently long token is 401', async () => {
    const body = payload([alert({ labels: { instance: '198.19.1.2:9100' } })]);
    expect((await post(body, { token: null })).status).toBe(401);
    expect((await post(body, { token: TOKEN.replace(/.$/, 'x') })).status).toBe(401);
    expect((await post(body, { token: 'short' })).status).toBe(401);
    expect((await post(body, { token: `${TOKEN}0` })).status).toBe(401);
    expect(topLevel()).toHaveLength(0);
  });

  it('a body over 1 MiB is 413, not JSON 400, not a v4 payload 400 with the reason', async () => {
    const huge = JSON.stringify(payload([alert({ labels: { instance: '198.19.1.2:9100', pad: 'x'.repeat(1024 * 1024) } })]));
    expect((await post(huge)).status).toBe(413);
    expect((await post('{not json')).status).toBe(400);
    const v3 = await post({ ...payload([]), version: '3' });
    expect(v3.status).toBe(400);
    expect(await v3.text()).toContain('version');
  });

  it('GET /alertmanager is not a route (405 is Bolt\'s business in HTTP mode: anything but 200)', async () => {
    const res = await fetch(`${base}/alertmanager`);
    expect(res.status).not.toBe(200);
  });
});

describe('POST /alertmanager: an alert is a source of the gateway episode', () => {
  const saturated = alert({ labels: { instance: '198.19.1.2:9100' } });

  it('a firing alert opens gw-3\'s episode: one message, the alert in its thread, a full check queued into that thread', async () => {
    const res = await post(payload([saturated]));
    expect(res.status).toBe(200);
    const answer = (await res.json()) as { alerts: { outcome: string; gateway: string; checkRequestId: string }[] };
    expect(answer.alerts).toEqual([expect.objectContaining({ outcome: 'accepted', gateway: 'gw-3' })]);

    const state = await rt.watchStore.state('gw-3');
    expect(state.episode).toMatchObject({ status: 'open', level: 'critical', kind: 'utilisation' });
    const events = await rt.watchStore.episodeEvents(state.episode!.id);
    expect(events.map((e) => e.event)).toEqual(['opened', 'alert']);
    expect(events[1]!.alert).toEqual({ name: 'ConntrackTableSaturated', status: 'firing', summary: 'conntrack table of 198.19.1.2:9100 at 97%' });

    expect(topLevel()).toHaveLength(1);
    const msg = topLevel()[0]!;
    expect(text(msg)).toContain('gw-3: CRITICAL');
    expect(text(msg)).toContain('opened by an alert');
    expect(replies(msg).map(text).join('\n')).toContain('ConntrackTableSaturated firing');
    expect(await rt.watchStore.episodeMessage(state.episode!.id)).toEqual({ channel: INCIDENTS, ts: msg.ts });

    const alertObj = webhookPayloadSchema.parse(payload([saturated])).alerts[0]!;
    const job = await rt.queues.check.getJob(checkJobId({ gateway: 'gw-3', requestId: checkRequestIdOf(alertObj) }));
    expect(job?.data).toMatchObject({ gateway: 'gw-3', requestedBy: 'alertmanager', origin: { kind: 'slack', channel: INCIDENTS, threadTs: msg.ts } });
  });

  it('the same alert delivered again (a retry) and twice at once (an HA pair) runs one check and says nothing more', async () => {
    const again = await post(payload([saturated]));
    expect(again.status).toBe(200);
    expect(((await again.json()) as { alerts: { outcome: string }[] }).alerts[0]!.outcome).toBe('duplicate');
    const pair = await Promise.all([post(payload([saturated])), post(payload([saturated]))]);
    for (const r of pair) expect(r.status).toBe(200);
    expect(await rt.queues.check.getJobCounts('waiting')).toEqual({ waiting: 1 });
    expect(topLevel()).toHaveLength(1);
    expect(replies(topLevel()[0]!)).toHaveLength(1);
  });

  it('another alert on the same gateway (by alias) joins the open episode: a reply and its own check, in the same thread', async () => {
    const drops = alert({
      labels: { alertname: 'ConntrackTableFullDrops', instance: 'gw3.example.net:9100', kind: 'drops' },
      fingerprint: 'd00dfeed12345678',
      startsAt: '2026-12-04T10:01:00.000Z',
      summary: 'gw3.example.net:9100 dropped new connections: conntrack table full',
    });
    expect((await post(payload([drops]))).status).toBe(200);
    expect(topLevel()).toHaveLength(1);
    const msg = topLevel()[0]!;
    expect(replies(msg).map(text).join('\n')).toContain('ConntrackTableFullDrops firing');
    expect(await rt.queues.check.getJobCounts('waiting')).toEqual({ waiting: 2 });
    const jobs = await rt.queues.check.getJobs(['waiting']);
    for (const j of jobs) expect(j.data.origin).toEqual({ kind: 'slack', channel: INCIDENTS, threadTs: msg.ts });
  });

  it('a resolved alert is replied in the thread, queues no check, and leaves the episode to the polls', async () => {
    const resolved = { ...saturated, status: 'resolved', endsAt: '2026-12-04T10:20:00.000Z' };
    expect((await post(payload([resolved], 'resolved'))).status).toBe(200);
    const msg = topLevel()[0]!;
    expect(replies(msg).map(text).join('\n')).toContain('ConntrackTableSaturated resolved');
    expect(await rt.queues.check.getJobCounts('waiting')).toEqual({ waiting: 2 });
    expect((await rt.watchStore.state('gw-3')).episode?.status).toBe('open');
    // delivered again: once is enough
    expect((await post(payload([resolved], 'resolved'))).status).toBe(200);
    expect(replies(msg).filter((r) => text(r).includes('resolved'))).toHaveLength(1);
  });

  it('an alert about no inventory gateway is answered 200, counted and logged; the known one next to it is handled', async () => {
    const unknown = alert({ labels: { instance: '203.0.113.9:9100' }, fingerprint: 'aaaaaaaaaaaaaaaa' });
    const gw4 = alert({ labels: { gateway: 'gw-4' }, fingerprint: 'bbbbbbbbbbbbbbbb' });
    const res = await post(payload([unknown, gw4]));
    expect(res.status).toBe(200);
    const answer = (await res.json()) as { alerts: { outcome: string; gateway: string | null }[] };
    expect(answer.alerts.map((a) => [a.outcome, a.gateway])).toEqual([
      ['unknown_gateway', null],
      ['accepted', 'gw-4'],
    ]);
    expect(topLevel()).toHaveLength(2);
    const s = await scrape(base);
    expect(s.series.get(seriesKey('conntrack_ops_alertmanager_alerts_total', { status: 'firing', outcome: 'unknown_gateway' }))).toBe(1);
    expect(s.series.get(seriesKey('conntrack_ops_alertmanager_alerts_total', { status: 'firing', outcome: 'duplicate' }))).toBe(3);
    expect(s.series.get(seriesKey('conntrack_ops_alertmanager_alerts_total', { status: 'firing', outcome: 'accepted' }))).toBe(3);
    expect(s.series.get(seriesKey('conntrack_ops_alertmanager_requests_total', { code: '401' }))).toBe(4);
    expect(s.series.get(seriesKey('conntrack_ops_alertmanager_requests_total', { code: '503' }))).toBe(1);
  });
});
