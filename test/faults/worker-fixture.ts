/**
 * Real parts for the worker fault tests: the local Slack API server behind a proxy that can
 * hold one chat.update (the apply awaits its progress message, so holding one stops a real
 * worker process at a known point mid-apply without touching its code), an embedded Redis,
 * a lab gateway over real sshd, its inventory file, `jobs/worker.ts` processes
 * (`node --import tsx`: the pid is the worker's own, so kill -9 kills the worker itself)
 * and a runtime for the test's side (approvals, stores).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { webApi } from '@slack/bolt';
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

/** A pass-through to the local Slack API that holds the n-th chat.update whose body contains `marker`. */
export class HoldingProxy {
  private server!: Server;
  private rule: { marker: string; nth: number; seen: number } | null = null;
  private held: ServerResponse[] = [];
  private onHeld: (() => void) | null = null;

  constructor(private readonly target: string) {}

  async start(): Promise<void> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
  }

  get apiUrl(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/api/`;
  }

  /** Hold the n-th chat.update mentioning `marker`; resolves when it arrives. */
  holdUpdate(marker: string, nth: number): Promise<void> {
    this.rule = { marker, nth, seen: 0 };
    return new Promise((r) => (this.onHeld = r));
  }

  /** Answer what was held (the answers may reach a stopped process later) and stop holding. */
  async release(): Promise<void> {
    this.rule = null;
    const held = this.held;
    this.held = [];
    for (const res of held) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ok: true, channel: CHANNEL, ts: '0', text: '' }));
    }
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    const rule = this.rule;
    if (rule && req.url?.endsWith('chat.update') && body.toString().includes(rule.marker)) {
      rule.seen += 1;
      if (rule.seen === rule.nth) {
        this.held.push(res);
        res.on('close', () => undefined);
        this.onHeld?.();
        return;
      }
    }
    try {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string' && k !== 'host' && k !== 'content-length') headers[k] = v;
      const answer = await fetch(new URL(req.url ?? '/', this.target.replace(/\/api\/$/, '/')), { method: req.method ?? 'POST', headers, body: req.method === 'GET' ? undefined : body });
      const out = Buffer.from(await answer.arrayBuffer());
      const pass: Record<string, string> = {};
      answer.headers.forEach((v, k) => {
        if (k !== 'content-length' && k !== 'transfer-encoding' && k !== 'connection') pass[k] = v;
      });
      res.writeHead(answer.status, pass);
      res.end(out);
    } catch {
      res.destroy();
    }
  }

  async close(): Promise<void> {
    for (const res of this.held) res.destroy();
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
}

export interface WorkerProcess {
  child: ChildProcess;
  log(): string;
  /** Resolves with the exit code / signal and the time it exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
}

/** `jobs/worker.ts` as its own process, on `redisUrl`, reporting to Slack through `slackApiUrl`. */
export function spawnWorker(opts: { redisUrl: string; slackApiUrl: string; token: string; inventory: string; env?: Record<string, string> }): WorkerProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'jobs/worker.ts'], {
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
  proxy: HoldingProxy;
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
  const proxy = new HoldingProxy(slack.apiUrl);
  await proxy.start();
  const redis = await openRedis(undefined);
  const lab = await labUp({ clients: 1, sourcesPerClient: 1, firewall: 'nft' });
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
    proxy,
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
      await proxy.close().catch(() => undefined);
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
