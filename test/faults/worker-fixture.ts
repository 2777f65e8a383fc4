/**
 * Real parts for the worker fault tests: the local Slack API server, an embedded Redis, a
 * lab gateway over real sshd whose writes can be held (GatewayHolds: a slow gateway stops a
 * real worker at a known point mid-apply), its inventory file, `jobs/worker.ts` processes
 * (`node --import tsx`: the pid is the worker's own, so kill -9 kills the worker itself)
 * and a runtime for the test's side (approvals, stores).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { webApi } from '@slack/bolt';
import { run } from '../../lab/exec.js';
import { gatewayExec, labDown, labUp, type Lab } from '../../lab/index.js';
import { ApprovalRules } from '../../src/approvals/rules.js';
import { runCheck } from '../../src/check/run-check.js';
import { loadEnv } from '../../src/config/env.js';
import type { CheckReport, PlanStep } from '../../src/core/model.js';
import { freshSessions } from '../../src/gateway/session-pool.js';
import { openRedis, type RedisHandle } from '../../src/infra/redis.js';
import { openRuntime, type Runtime } from '../../src/runtime.js';
import { SlackMessageWriter } from '../../src/slack/publish/message-writer.js';
import type { PlanRecord } from '../../src/store/plan-store.js';
import { startSlackApi, type SlackApiServer } from '../support/slack-api/index.js';

export const CHANNEL = 'C0OPS0001';
export const ALICE = 'U0ALICE01';
export const BOB = 'U0BOB0001';
const ROOT = resolve(import.meta.dirname, '../..');

/**
 * A slow gateway, on command: the lab gateway's /usr/local/sbin (lab-owned, first on root's
 * PATH in its sshd namespace) gets a `tee` that waits while `.hold-<key>` exists there before
 * running the real one. The bot's write of a netfilter key (`tee /proc/sys/net/netfilter/<key>`)
 * then hangs on the gateway until released: a real worker process stops at a known point
 * mid-apply, with its code untouched.
 */
export class GatewayHolds {
  constructor(private readonly lab: Lab) {}

  private get dir(): string {
    return join(this.lab.dir, 'usr-local-sbin');
  }

  async install(): Promise<void> {
    await writeFile(
      join(this.dir, 'tee'),
      '#!/bin/sh\n# fault-test wrapper: wait while /usr/local/sbin/.hold-<key> exists, then the real tee\n' +
        'for a in "$@"; do case "$a" in /proc/sys/net/netfilter/*) k=${a##*/}; while [ -e "/usr/local/sbin/.hold-$k" ]; do sleep 0.05; done;; esac; done\n' +
        'exec /usr/bin/tee "$@"\n',
      { mode: 0o755 },
    );
  }

  async hold(key: string): Promise<void> {
    await writeFile(join(this.dir, `.hold-${key}`), '');
  }

  async release(key: string): Promise<void> {
    await rm(join(this.dir, `.hold-${key}`), { force: true });
  }

  /** The pid of a write of `key` waiting on the gateway, or null. */
  async waitingWrite(key: string): Promise<number | null> {
    const out = (await run('ip', ['netns', 'pids', this.lab.namespaces.gateway], { check: false })).stdout;
    for (const pid of out.split('\n').map((l) => Number(l.trim())).filter((n) => Number.isInteger(n) && n > 0)) {
      const cmd = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0').join(' ');
      if (cmd.includes('/usr/local/sbin/tee') && cmd.includes(`/proc/sys/net/netfilter/${key}`)) return pid;
    }
    return null;
  }
}

export interface WorkerProcess {
  child: ChildProcess;
  log(): string;
  /** Resolves with the exit code / signal and the time it exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
}

/** `jobs/worker.ts` as its own process, on `redisUrl`, reporting to Slack through `slackApiUrl`. */
/**
 * A `jobs/worker.ts` process, or with `entry: 'start'` a `conntrack-ops start` process (the
 * Slack listener in HTTP mode on a free port, with its in-process worker).
 */
export function spawnWorker(opts: { redisUrl: string; slackApiUrl: string; token: string; inventory: string; env?: Record<string, string>; entry?: 'worker' | 'start' }): WorkerProcess {
  const args = opts.entry === 'start' ? ['src/cli/main.ts', 'start'] : ['jobs/worker.ts'];
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], {
    cwd: ROOT,
    env: {
      PATH: process.env['PATH'],
      REDIS_URL: opts.redisUrl,
      SLACK_BOT_TOKEN: opts.token,
      SLACK_API_URL: opts.slackApiUrl,
      INVENTORY: opts.inventory,
      LOG_LEVEL: 'info',
      ...opts.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout?.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((r) => child.once('exit', (code, signal) => r({ code, signal, at: Date.now() })));
  return { child, log: () => log, exited };
}

/** The pid of the worker whose log says it started the job of `planId` (pino logs carry the pid). */
export function pidRunning(workers: readonly WorkerProcess[], planId: string, action: 'apply' | 'rollback' = 'apply'): number | null {
  for (const w of workers) {
    for (const line of w.log().split('\n')) {
      if (!line.includes(planId) || !line.includes(`${action} job started`)) continue;
      try {
        const pid = (JSON.parse(line) as { pid?: number }).pid;
        if (pid) return pid;
      } catch {
        // not a log line
      }
    }
  }
  return null;
}

export async function stopWorker(w: WorkerProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (w.child.exitCode !== null || w.child.signalCode !== null) return;
  w.child.kill(signal);
  await w.exited;
}

export interface WorkerLab {
  slack: SlackApiServer;
  holds: GatewayHolds;
  redis: RedisHandle;
  lab: Lab;
  inventoryPath: string;
  rt: Runtime;
  rules: ApprovalRules;
  writer: SlackMessageWriter;
  report: CheckReport;
  sysctl(key: string): Promise<number>;
  /** A plan of these steps requested by Alice in CHANNEL, shown on a message (not approved yet). */
  slackPlan(steps: PlanStep[]): Promise<PlanRecord>;
  close(): Promise<void>;
}

export async function openWorkerLab(opts: { env?: Record<string, string> } = {}): Promise<WorkerLab> {
  const slack = await startSlackApi({ channels: [{ id: CHANNEL, name: 'ops' }] });
  const redis = await openRedis(undefined);
  const lab = await labUp({ clients: 1, sourcesPerClient: 1, firewall: 'nft' });
  const holds = new GatewayHolds(lab);
  await holds.install();
  const dir = await mkdtemp(join(tmpdir(), 'cto-worker-faults-'));
  const inventoryPath = join(dir, 'inventory.yml');
  await lab.writeInventory(inventoryPath, { merge: false });
  const env = loadEnv({ REDIS_URL: redis.url, INVENTORY: inventoryPath, LOG_LEVEL: 'error', PATH: process.env['PATH'], ...opts.env });
  const rt = await openRuntime(env);
  const writer = new SlackMessageWriter(new webApi.WebClient(slack.token, { slackApiUrl: slack.apiUrl, retryConfig: { retries: 0 } }));
  const report = await runCheck({ gatewayName: lab.name, config: lab.inventoryEntry, sessions: freshSessions() });
  const sysctl = async (key: string): Promise<number> => Number((await gatewayExec(lab, ['cat', `/proc/sys/net/netfilter/${key}`])).stdout.trim());
  return {
    slack,
    holds,
    redis,
    lab,
    inventoryPath,
    rt,
    rules: new ApprovalRules({ approvers: [BOB], approverGroups: [], allowSelfApproval: false }),
    writer,
    report,
    sysctl,
    async slackPlan(steps) {
      const plan = await rt.plans.create({ report: { ...report, plan: { steps, notes: ['fault test'] } }, requestedBy: ALICE, origin: { kind: 'slack', channel: CHANNEL }, ttlMinutes: 30 });
      const posted = await writer.post({ channel: CHANNEL }, { text: `plan ${plan.planId}`, blocks: [] });
      await rt.plans.setMessage(plan.planId, posted);
      return (await rt.plans.get(plan.planId)) ?? plan;
    },
    async close() {
      await rt.close().catch(() => undefined);
      await slack.close().catch(() => undefined);
      await redis.stop().catch(() => undefined);
      await labDown(lab).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Body of a Slack message as a user reads it (text and blocks). */
export function bodyOf(m: { text: string; blocks: unknown[] }): string {
  return `${m.text}\n${JSON.stringify(m.blocks)}`;
}
