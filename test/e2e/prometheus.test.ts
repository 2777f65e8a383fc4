/**
 * The monitoring stack end to end, with no piece of it written by us except the bot:
 * Debian's prometheus-node-exporter INSIDE a lab gateway's namespace (its conntrack
 * collector reads that namespace's table), Debian's prometheus scraping it with the shipped
 * rule pack, Debian's prometheus-alertmanager with a config derived from the shipped one
 * posting to the bot's POST /alertmanager (bearer token from a credentials_file), the bot
 * (Bolt HTTP mode + in-process workers) and the local Slack API server.
 *
 * The lab's table is filled to 97 %: ConntrackTableSaturated fires in Prometheus, Alertmanager
 * delivers it, the bot opens the gateway's episode (one message in the incident channel, the
 * alert in its thread) and the full check it queued posts its findings into that thread.
 *
 * Shortened for a test, in copies only: the rules' `for:` (30 s / 1 m -> 5 s), scrape and
 * evaluation every 1 s, Alertmanager's group_wait 1 s. Every process runs on loopback (or
 * inside the lab namespace) with its own temp data dir and is killed in afterAll.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { App } from '@slack/bolt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { fillToPercent, labDown, labUp, type Lab } from '../../lab/index.js';
import { freePort, openRedis, type RedisHandle } from '../../src/infra/redis.js';
import { openRuntime, type Runtime } from '../../src/runtime.js';
import type { RunningWorkers } from '../../src/worker/start.js';
import { listenerEnv, startHttpListener, startSlackWorkers } from '../metrics/listener.js';
import { scrape, seriesKey, waitUntil } from '../metrics/scrape.js';
import { startSlackApi, type SlackApiServer, type StoredMessage } from '../support/slack-api/index.js';

const ROOT = resolve(import.meta.dirname, '../..');
const INCIDENTS = 'C0PROMET1';
const TOKEN = 'e2e-alertmanager-token-5f1c9a';

let slack: SlackApiServer;
let redis: RedisHandle;
let lab: Lab;
let rt: Runtime;
let app: App;
let workers: RunningWorkers;
let dir: string;
let botBase: string;
let promBase: string;
let amBase: string;
const children: { name: string; proc: ChildProcess; log: string[] }[] = [];

function run(name: string, cmd: string, args: string[]): ChildProcess {
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const entry = { name, proc, log: [] as string[] };
  const keep = (d: Buffer) => {
    entry.log.push(d.toString());
    if (entry.log.length > 200) entry.log.shift();
  };
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  children.push(entry);
  return proc;
}

function logs(): string {
  return children.map((c) => `--- ${c.name} (exit ${c.proc.exitCode}) ---\n${c.log.join('').slice(-2500)}`).join('\n');
}

async function stopAll(): Promise<void> {
  await Promise.all(
    children.map(async ({ proc }) => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }),
  );
}

async function httpOk(url: string): Promise<string | null> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    return res.ok ? await res.text() : null;
  } catch {
    return null;
  }
}

/** The shipped rule pack with the `for:` durations shortened (30s, 1m -> 5s); nothing else changes. */
function shortenedRules(text: string): string {
  const out = text.replace(/^(\s+for:\s*)(30s|1m)\s*$/gm, '$15s');
  if (out === text) throw new Error('the rule pack has no `for: 30s` / `for: 1m` any more: update the e2e');
  return out;
}

/** The shipped Alertmanager config with short waits, the bot's URL and our token file. */
function derivedAlertmanagerConfig(text: string, botUrl: string, tokenFile: string): string {
  const cfg = parseYaml(text) as {
    route: { group_wait: string; group_interval: string; routes: { receiver: string; group_wait: string; group_interval?: string }[] };
    receivers: { name: string; webhook_configs?: { url: string; http_config: { authorization: { credentials_file: string } } }[] }[];
  };
  cfg.route.group_wait = '1s';
  cfg.route.group_interval = '5s';
  for (const r of cfg.route.routes) {
    r.group_wait = '1s';
    r.group_interval = '5s';
  }
  const receiver = cfg.receivers.find((r) => r.name === 'conntrack-ops');
  const hook = receiver?.webhook_configs?.[0];
  if (!hook) throw new Error('deploy/alertmanager/alertmanager.yml has no conntrack-ops webhook any more: update the e2e');
  hook.url = `${botUrl}/alertmanager`;
  hook.http_config.authorization.credentials_file = tokenFile;
  return stringifyYaml(cfg);
}

beforeAll(async () => {
  slack = await startSlackApi({ channels: [{ id: INCIDENTS, name: 'incidents' }] });
  redis = await openRedis(undefined);
  lab = await labUp({});
  dir = await mkdtemp(join(tmpdir(), 'cto-prom-'));
  const inventory = join(dir, 'inventory.yml');
  await lab.writeInventory(inventory, { merge: false });

  // the bot: HTTP mode on loopback, workers in this process; the gateway is NOT watched: the alert opens the episode
  const env = listenerEnv({ slack, redisUrl: redis.url, inventory, incidentChannel: INCIDENTS }, { ALERTMANAGER_TOKEN: TOKEN, LOG_LEVEL: 'warn' });
  rt = await openRuntime(env);
  ({ app, base: botBase } = await startHttpListener(rt, env));
  workers = startSlackWorkers(rt, env);

  // node_exporter inside the gateway's namespace, on its management address
  const gwAddr = lab.mgmt.gatewayAddress;
  run('node-exporter', 'ip', ['netns', 'exec', lab.namespaces.gateway, '/usr/bin/prometheus-node-exporter', `--web.listen-address=${gwAddr}:9100`, '--collector.disable-defaults', '--collector.conntrack']);
  await waitUntil('node_exporter in the gateway namespace', async () => (await httpOk(`http://${gwAddr}:9100/metrics`))?.includes('node_nf_conntrack_entries_limit'), 30_000, logs);

  // Alertmanager, clustering off, posting to the bot with the token from a file
  const tokenFile = join(dir, 'conntrack-ops.token');
  await writeFile(tokenFile, TOKEN, { mode: 0o600 });
  const amPort = await freePort();
  amBase = `http://127.0.0.1:${amPort}`;
  const amConfig = join(dir, 'alertmanager.yml');
  await writeFile(amConfig, derivedAlertmanagerConfig(await readFile(join(ROOT, 'deploy/alertmanager/alertmanager.yml'), 'utf8'), botBase, tokenFile));
  run('alertmanager', '/usr/bin/prometheus-alertmanager', [`--config.file=${amConfig}`, `--storage.path=${join(dir, 'am-data')}`, `--web.listen-address=127.0.0.1:${amPort}`, '--cluster.listen-address=']);
  await waitUntil('alertmanager ready', () => httpOk(`${amBase}/-/ready`), 30_000, logs);

  // Prometheus: scrapes the node_exporter every second, evaluates the (copied) rule pack every second
  const rules = join(dir, 'conntrack-rules.yml');
  await writeFile(rules, shortenedRules(await readFile(join(ROOT, 'deploy/prometheus/conntrack-rules.yml'), 'utf8')));
  const promPort = await freePort();
  promBase = `http://127.0.0.1:${promPort}`;
  const promConfig = join(dir, 'prometheus.yml');
  await writeFile(
    promConfig,
    stringifyYaml({
      global: { scrape_interval: '1s', evaluation_interval: '1s' },
      rule_files: [rules],
      alerting: { alertmanagers: [{ static_configs: [{ targets: [`127.0.0.1:${amPort}`] }] }] },
      scrape_configs: [{ job_name: 'node', static_configs: [{ targets: [`${gwAddr}:9100`] }] }],
    }),
  );
  run('prometheus', '/usr/bin/prometheus', [`--config.file=${promConfig}`, `--storage.tsdb.path=${join(dir, 'prom-data')}`, `--web.listen-address=127.0.0.1:${promPort}`]);
  await waitUntil('prometheus ready', () => httpOk(`${promBase}/-/ready`), 60_000, logs);
  await waitUntil(
    'prometheus scraping the gateway',
    async () => {
      const body = await httpOk(`${promBase}/api/v1/query?query=${encodeURIComponent('node_nf_conntrack_entries_limit')}`);
      return body && (JSON.parse(body) as { data: { result: unknown[] } }).data.result.length > 0;
    },
    60_000,
    logs,
  );
}, 300_000);

afterAll(async () => {
  await stopAll();
  await app?.stop().catch(() => undefined);
  await workers?.close();
  await rt?.close();
  if (lab) await labDown(lab);
  await redis?.stop();
  await slack?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

interface PromAlert {
  labels: Record<string, string>;
  state: string;
}

async function promAlerts(): Promise<PromAlert[]> {
  const body = await httpOk(`${promBase}/api/v1/alerts`);
  return body ? (JSON.parse(body) as { data: { alerts: PromAlert[] } }).data.alerts : [];
}

async function amAlerts(): Promise<{ labels: Record<string, string> }[]> {
  const body = await httpOk(`${amBase}/api/v2/alerts`);
  return body ? (JSON.parse(body) as { labels: Record<string, string> }[]) : [];
}

const topLevel = (): StoredMessage[] => slack.messages(INCIDENTS).filter((m) => m.threadTs === null || m.threadTs === m.ts);
const thread = (m: StoredMessage): StoredMessage[] => slack.replies(INCIDENTS, m.ts).filter((r) => r.ts !== m.ts);
const text = (m: StoredMessage): string => `${m.text}\n${JSON.stringify(m.blocks)}`;

describe('Prometheus -> Alertmanager -> the bot -> Slack, all real', () => {
  it('a table filled past 95 % fires ConntrackTableSaturated, Alertmanager posts it, the episode message and the check\'s findings land in Slack', async () => {
    expect(await promAlerts()).toEqual([]);
    const t0 = Date.now();
    const filled = await fillToPercent(lab, 97);
    expect(filled.count / filled.max).toBeGreaterThan(0.95);
    const tFilled = Date.now();

    await waitUntil('ConntrackTableSaturated firing in Prometheus', async () => (await promAlerts()).some((a) => a.labels['alertname'] === 'ConntrackTableSaturated' && a.state === 'firing'), 90_000, logs);
    const tFiring = Date.now();
    await waitUntil('the alert in Alertmanager', async () => (await amAlerts()).some((a) => a.labels['alertname'] === 'ConntrackTableSaturated'), 60_000, logs);
    const tAlertmanager = Date.now();
    const episodeMsg = await waitUntil('the episode message in the incident channel', () => topLevel().find((m) => text(m).includes(lab.name)), 60_000, logs);
    const tMessage = Date.now();
    const alertReply = await waitUntil('the alert in the episode thread', () => thread(episodeMsg).find((r) => text(r).includes('ConntrackTableSaturated firing')), 30_000, logs);
    expect(alertReply).toBeTruthy();
    expect(text(slack.message(INCIDENTS, episodeMsg.ts)!)).toContain('CRITICAL');
    const findings = await waitUntil('the check\'s findings in the episode thread', () => thread(episodeMsg).find((r) => JSON.stringify(r.blocks).includes('plan_approve')), 180_000, logs);
    const tFindings = Date.now();
    expect(text(findings)).toMatch(/saturated|full/i);

    // the bot saw it through its webhook, authenticated, once per alert state
    const s = await scrape(botBase);
    expect(s.series.get(seriesKey('conntrack_ops_alertmanager_alerts_total', { status: 'firing', outcome: 'accepted' }))).toBeGreaterThanOrEqual(1);
    expect(s.series.get(seriesKey('conntrack_ops_alertmanager_requests_total', { code: '401' }))).toBeUndefined();
    expect(topLevel()).toHaveLength(1);

    const timings = {
      fillSeconds: (tFilled - t0) / 1000,
      fillToFiringSeconds: (tFiring - tFilled) / 1000,
      firingToAlertmanagerSeconds: (tAlertmanager - tFiring) / 1000,
      alertmanagerToSlackMessageSeconds: (tMessage - tAlertmanager) / 1000,
      slackMessageToFindingsSeconds: (tFindings - tMessage) / 1000,
      totalSeconds: (tFindings - t0) / 1000,
    };
    console.log(`prometheus e2e timings: ${JSON.stringify(timings)}`);
    if (process.env['CTO_PROM_TIMINGS']) await writeFile(process.env['CTO_PROM_TIMINGS'], JSON.stringify(timings, null, 1));
  }, 400_000);
});
