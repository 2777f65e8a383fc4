/**
 * "More than one machine, for real" (issue 15): the bot on a real Redis topology
 * (helpers/redis-topology.ts) while its primary is killed in the middle of an apply.
 *
 * Real parts only: the listener (the real Bolt app in HTTP mode, signed slash commands and
 * button clicks) in this process, TWO worker processes (`jobs/worker.ts`, the production
 * entry) on the same Redis, a real lab NAT gateway over real SSH, the local Slack API server.
 *
 * The story: `/conntrack watch <gw> every 2s` (the workers' poll schedulers), `/conntrack check
 * <gw>` -> a plan, approved by a click -> the moment the plan is `applying`, the Redis primary
 * holding the bot's keys is SIGKILLed; checks keep being queued before and during the outage.
 * Measured: failover time (kill -> a new primary serves the bot's slot), recovery (kill -> the
 * plan in a final state), check jobs queued (acknowledged by Redis) vs. jobs that never ran,
 * the apply's writes on the gateway per key (every SSH command is logged by the gateway's
 * ~/.bashrc), the apply's run count, the plan's state and what the Slack message offers, and
 * whether the watch kept polling.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { App } from '@slack/bolt';
import { stringify } from 'yaml';
import { fillScenario, gatewayExec, labDown, labUp, type Lab } from '../../../lab/index.js';
import { ApplyRecordStore } from '../../../src/apply/store.js';
import { loadEnv, type Env } from '../../../src/config/env.js';
import { freePort } from '../../../src/infra/redis.js';
import { enqueueCheck } from '../../../src/queue/producer.js';
import { openRuntime, type Runtime } from '../../../src/runtime.js';
import { startHttpListener } from '../../metrics/listener.js';
import { startSlackApi, type SlackApiServer, type StoredMessage } from '../../support/slack-api/index.js';
import { buildBlockActionsBody, buildSlashCommandBody, signedFormHeaders } from '../../support/slack-signing.js';
import { waitUntil } from '../../support/wait-until.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Topology } from './redis-topology.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const SECRET = 'topology-signing-secret-41c7';
const CHANNEL = 'C0TOPO001';
const ALICE = 'U0ALICE01';
const BOB = 'U0BOB0001';
/** Checks queued just before the kill and during the outage (of a gateway that refuses at once: they fail fast, but they run). */
const CHECKS_BEFORE = 20;
const CHECKS_DURING = 20;

export interface FailoverFigures {
  topology: Topology['kind'];
  failoverMs: number;
  /** Kill -> the plan in a final state (applied, apply-failed, ...). */
  recoveredMs: number;
  /** Gateway writes of the apply's keys already done when the primary died / in all. */
  writesAtKill: number;
  stepKeys: string[];
  writesPerKey: Record<string, number>;
  applyRuns: number;
  planStatus: string;
  messageButtons: string[];
  checksAcked: number;
  /** Acknowledged check jobs that Redis no longer knows after the failover. */
  checksLost: string[];
  /** Acknowledged check jobs still not run 45 s after recovery. */
  checksStuck: string[];
  enqueueErrors: number;
  pollsBefore: number;
  pollsAfter: number;
  applyJobState: string;
  /** The poll queue's schedulers and job counts after the failover (what the watch has left). */
  pollSchedulers: string;
  /** BullMQ Workers the worker processes replaced because they had stopped taking jobs (src/worker/stuck-worker.ts). */
  workersReplaced: number;
  /** The plan's status read just before the kill. */
  statusAtKill: string;
  /** When checks are stuck: the remaining TTL of the gateway lock they wait for. */
  stuckLockTtlMs: number | null;
}

function buttonsOf(m: StoredMessage): { action_id: string; value: string }[] {
  const out: { action_id: string; value: string }[] = [];
  for (const b of m.blocks as { type: string; elements?: { type: string; action_id: string; value: string }[] }[]) {
    if (b.type === 'actions') for (const e of b.elements ?? []) if (e.type === 'button') out.push(e);
  }
  return out;
}

const FINAL = new Set(['applied', 'apply-failed', 'rolled-back', 'rollback-failed', 'interrupted', 'expired', 'rejected', 'approved']);
const WRITE = /tee \/proc\/sys\/net\/netfilter\/([a-z_0-9]+)|sysctl -w net\.netfilter\.([a-z_0-9]+)=/;

export class FailoverScenario {
  slack!: SlackApiServer;
  lab!: Lab;
  rt!: Runtime;
  app!: App;
  env!: Env;
  base!: string;
  dir!: string;
  prefix = `{cto-topo-${randomUUID().slice(0, 8)}}`;
  workers: ChildProcess[] = [];
  workerLog = '';

  /**
   * When the primary dies: `applying` = the moment the plan is applying (before its gateway
   * write); `after-write` = the moment the gateway log shows the apply's write (the gateway
   * changed, the apply's state writes to Redis still to come).
   */
  constructor(
    readonly topology: Topology,
    readonly killAt: 'applying' | 'after-write' = 'applying',
  ) {}

  private get commandLog(): string {
    return join(this.lab.dir, 'root-home', 'commands.log');
  }

  async setUp(): Promise<void> {
    this.slack = await startSlackApi({ channels: [{ id: CHANNEL, name: 'ops' }], users: [{ id: ALICE, name: 'alice' }, { id: BOB, name: 'bob' }] });
    this.lab = await labUp({ clients: 1, sourcesPerClient: 2 });
    // Idle ESTABLISHED and TIME_WAIT entries: the check proposes lower timeouts (writable in a netns).
    await fillScenario(this.lab, ['timewait'], { timewait: 3000, established: 500 });
    // The gateway logs every command the bot runs over SSH (bash sources ~/.bashrc for each).
    await writeFile(join(this.lab.dir, 'root-home', '.bashrc'), 'printf "%s\\n" "$BASH_EXECUTION_STRING" >> /root/commands.log\n');
    this.dir = await mkdtemp(join(tmpdir(), 'cto-topology-'));
    const inventory = join(this.dir, 'inventory.yml');
    const closedPort = await freePort();
    const gw = this.lab.inventoryEntry;
    await writeFile(
      inventory,
      stringify({
        gateways: {
          [this.lab.name]: { ...gw, thresholds: { warnPercent: 1 } },
          // Nothing listens there: a check fails at once ("connection refused"), i.e. it ran.
          'gw-closed': { host: '127.0.0.1', port: closedPort, user: 'root', identityFile: gw.identityFile, hostKey: gw.hostKey },
        },
      }),
    );
    const vars: Record<string, string> = {
      ...this.topology.env,
      QUEUE_PREFIX: this.prefix,
      SLACK_MODE: 'http',
      SLACK_BOT_TOKEN: this.slack.token,
      SLACK_SIGNING_SECRET: SECRET,
      SLACK_API_URL: this.slack.apiUrl,
      APPROVERS: `${ALICE},${BOB}`,
      INVENTORY: inventory,
      WORKER_CONCURRENCY: '4',
    };
    this.env = loadEnv({ ...vars, LOG_LEVEL: 'error' });
    this.rt = await openRuntime(this.env);
    ({ app: this.app, base: this.base } = await startHttpListener(this.rt, this.env));
    for (let i = 0; i < 2; i++) this.workers.push(this.startWorker(vars, i));
    await waitUntil('two workers started', () => (this.workerLog.match(/worker started/g) ?? []).length >= 2, 60_000, { context: () => this.workerLog.slice(-3000) });
  }

  private startWorker(vars: Record<string, string>, n: number): ChildProcess {
    // One process (node --import tsx): what the test kills is the worker itself.
    const child = spawn(process.execPath, ['--import', 'tsx', 'jobs/worker.ts'], {
      cwd: ROOT,
      env: { PATH: process.env['PATH'], HOME: process.env['HOME'], ...vars, LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const tag = (d: Buffer): void => {
      for (const line of d.toString().split('\n')) if (line) this.workerLog += `[w${n}] ${line}\n`;
    };
    child.stdout?.on('data', tag);
    child.stderr?.on('data', tag);
    return child;
  }

  async tearDown(): Promise<void> {
    // CTO_TOPOLOGY_LOG=<file>: keep the workers' log to read it.
    if (process.env['CTO_TOPOLOGY_LOG']) await writeFile(process.env['CTO_TOPOLOGY_LOG'], this.workerLog);
    await Promise.all(
      this.workers.map(async (w) => {
        if (w.exitCode !== null || w.signalCode !== null) return;
        const exited = new Promise((r) => w.once('exit', r));
        w.kill('SIGTERM');
        const timer = setTimeout(() => w.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }),
    );
    await this.app?.stop().catch(() => undefined);
    await Promise.race([this.rt?.close().catch(() => undefined), new Promise((r) => setTimeout(r, 5_000))]);
    await this.topology.stop();
    await this.slack?.close();
    if (this.lab) await labDown(this.lab);
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
  }

  private async post(body: string): Promise<number> {
    const res = await fetch(`${this.base}/slack/events`, { method: 'POST', headers: signedFormHeaders(SECRET, body), body });
    await res.text();
    return res.status;
  }

  private slash(text: string): Promise<number> {
    return this.post(buildSlashCommandBody({ text, userId: ALICE, channelId: CHANNEL, responseUrl: this.slack.responseUrl(undefined, { channel: CHANNEL, user: ALICE }) }));
  }

  private click(actionId: string, value: string, userId: string, messageTs: string): Promise<number> {
    const responseUrl = this.slack.responseUrl(undefined, { channel: CHANNEL, user: userId, messageTs });
    return this.post(buildBlockActionsBody({ actionId, value, userId, channelId: CHANNEL, messageTs, responseUrl }));
  }

  private async gatewayWrites(): Promise<Record<string, number>> {
    const text = await readFile(this.commandLog, 'utf8').catch(() => '');
    const counts: Record<string, number> = {};
    for (const line of text.split('\n')) {
      const m = WRITE.exec(line);
      const key = m?.[1] ?? m?.[2];
      if (key) counts[key] = (counts[key] ?? 0) + 1;
    }
    return counts;
  }

  private polls(): Promise<number> {
    return this.rt.watchStore.samples(this.lab.name).then((s) => s.length);
  }

  private enqueueClosedCheck(tag: string): Promise<string> {
    return enqueueCheck(this.rt.queues, { gateway: 'gw-closed', requestedBy: 'topology-test', requestId: `${tag}-${randomUUID().slice(0, 8)}`, origin: { kind: 'cli' } }, { attempts: 1 });
  }

  async run(): Promise<FailoverFigures> {
    const gw = this.lab.name;
    const context = (): string => `--- workers ---\n${this.workerLog.slice(-4000)}`;

    // The watch schedulers run on the workers, through this Redis.
    await this.slash(`watch ${gw} every 2s`);
    await waitUntil('the watch polls', async () => (await this.polls()) >= 2, 60_000, { context });

    // A check through Slack, the queue and a worker: a plan with Approve.
    expect200(await this.slash(`check ${gw}`));
    const findings = await waitUntil('the findings with Approve', () => this.slack.messages(CHANNEL).find((m) => buttonsOf(m).some((b) => b.action_id === 'plan_approve')), 90_000, { context });
    const planId = buttonsOf(findings).find((b) => b.action_id === 'plan_approve')?.value ?? '';
    const plan = await this.rt.plans.get(planId);
    const stepKeys = (plan?.report.plan.steps ?? []).filter((s) => !s.optional && s.writable && s.kind === 'sysctl' && s.key).map((s) => s.key as string);
    if (stepKeys.length === 0) throw new Error('the plan has no sysctl step to apply');

    // Checks queued (and acknowledged) just before the kill.
    const acked: string[] = [];
    for (let i = 0; i < CHECKS_BEFORE; i++) acked.push(await this.enqueueClosedCheck('before'));

    // Approve; kill the primary at the chosen moment of the apply.
    expect200(await this.click('plan_approve', planId, BOB, findings.ts));
    if (this.killAt === 'applying') await waitUntil('the plan applying', async () => (await this.rt.plans.get(planId))?.status === 'applying', 60_000, { everyMs: 5, context });
    else await waitUntil("the apply's gateway write", async () => Object.keys(await this.gatewayWrites()).some((k) => stepKeys.includes(k)), 60_000, { everyMs: 2, context });
    const statusAtKill = (await this.rt.plans.get(planId))?.status ?? 'missing';
    const pollsBefore = await this.polls();
    const t0 = performance.now();
    const killed = await this.topology.killPrimaryOf(`${this.prefix}:plan:${planId}`);
    const writesAtKill = Object.entries(await this.gatewayWrites()).filter(([k]) => stepKeys.includes(k)).reduce((a, [, n]) => a + n, 0);

    // Checks queued during the outage: each counts once Redis acknowledged it.
    let enqueueErrors = 0;
    const during = Array.from({ length: CHECKS_DURING }, () =>
      this.enqueueClosedCheck('during').then(
        (id) => void acked.push(id),
        () => void (enqueueErrors += 1),
      ),
    );
    const failoverMs = await this.topology.waitForNewPrimary(`${this.prefix}:plan:${planId}`, killed, t0);
    await Promise.all(during);

    // A plan that never ends is a figure too (its status is reported, the test asserts it).
    await waitUntil('the plan in a final state', async () => {
      const p = await this.rt.plans.get(planId);
      return p && FINAL.has(p.status) && p.status !== 'approved' ? p : null;
    }, 60_000).catch(() => undefined);
    const recoveredMs = performance.now() - t0;
    const finalPlan = { status: (await this.rt.plans.get(planId))?.status ?? 'missing' };

    // Every acknowledged check runs (completed or failed) or is reported.
    const states = new Map<string, string>();
    const until = Date.now() + 45_000;
    for (;;) {
      for (const id of acked) {
        if (states.get(id) === 'completed' || states.get(id) === 'failed') continue;
        const job = await this.rt.queues.check.getJob(id);
        states.set(id, job ? await job.getState() : 'missing');
      }
      const open = acked.filter((id) => !['completed', 'failed'].includes(states.get(id) ?? ''));
      if (open.length === 0 || Date.now() > until) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    const checksLost = acked.filter((id) => states.get(id) === 'missing');
    const checksStuck = acked.filter((id) => !['completed', 'failed', 'missing'].includes(states.get(id) ?? '')).map((id) => `${id}:${states.get(id)}`);
    const stuckLockTtlMs = checksStuck.length ? await this.rt.redis.pttl(`${this.prefix}:lock:gw-closed`) : null;

    // The watch kept polling through the new primary (the figure, asserted by the test).
    await waitUntil('polls after the failover', async () => (await this.polls()) >= pollsBefore + 2, 30_000).catch(() => undefined);
    const pollsAfter = await this.polls();
    const schedulers = await this.rt.queues.poll.getJobSchedulers(0, -1);
    const pollQueue = await this.rt.queues.poll.getJobCounts('waiting', 'active', 'delayed', 'completed', 'failed');

    const writes = await this.gatewayWrites();
    const applyJob = (await this.rt.queues.apply.getJobs(['completed', 'failed', 'active', 'waiting', 'delayed'])).find((j) => j.data.planId === planId);
    const message = this.slack.message(CHANNEL, findings.ts);
    return {
      topology: this.topology.kind,
      failoverMs: Math.round(failoverMs),
      recoveredMs: Math.round(recoveredMs),
      writesAtKill,
      stepKeys,
      writesPerKey: Object.fromEntries(stepKeys.map((k) => [k, writes[k] ?? 0])),
      applyRuns: await new ApplyRecordStore(this.rt.redis, this.prefix).runs(planId, 'apply'),
      planStatus: finalPlan.status,
      messageButtons: message ? buttonsOf(message).map((b) => b.action_id) : [],
      checksAcked: acked.length,
      checksLost,
      checksStuck,
      enqueueErrors,
      pollsBefore,
      pollsAfter,
      applyJobState: applyJob ? await applyJob.getState() : 'missing',
      stuckLockTtlMs,
      statusAtKill,
      workersReplaced: (this.workerLog.match(/worker stopped taking jobs; replaced it/g) ?? []).length,
      pollSchedulers: JSON.stringify({ schedulers: schedulers.map((x) => ({ key: x.key, next: x.next })), now: Date.now(), pollQueue }),
    };
  }
}

function expect200(status: number): void {
  if (status !== 200) throw new Error(`the Bolt app answered ${status}`);
}

export function describeFigures(f: FailoverFigures): string {
  return (
    `[faults] ${f.topology}: primary killed mid-apply (plan ${f.statusAtKill}, ${f.writesAtKill}/${f.stepKeys.length} step writes done); new primary after ${f.failoverMs} ms; ` +
    `plan ${f.planStatus} ${f.recoveredMs} ms after the kill (buttons: ${f.messageButtons.join(', ') || 'none'}); apply runs ${f.applyRuns}, ` +
    `gateway writes per key ${JSON.stringify(f.writesPerKey)}; check jobs acknowledged ${f.checksAcked}, lost ${f.checksLost.length}, stuck ${f.checksStuck.length}${f.checksStuck.length ? ` (${f.checksStuck.slice(0, 3).join(', ')}…; lock ttl ${f.stuckLockTtlMs} ms)` : ''}, ` +
    `enqueue errors ${f.enqueueErrors}; watch polls ${f.pollsBefore} -> ${f.pollsAfter}; stuck workers replaced ${f.workersReplaced}; apply job ${f.applyJobState} (${f.pollSchedulers})`
  );
}

/**
 * One failover case as a test file runs it: the topology is started and the scenario set up
 * before, torn down after, and the same guarantees asserted whatever the topology.
 */
export function describeFailover(title: string, start: () => Promise<Topology>, killAt: 'applying' | 'after-write' = 'applying'): void {
  let scenario: FailoverScenario | undefined;
  beforeAll(async () => {
    scenario = new FailoverScenario(await start(), killAt);
    await scenario.setUp();
  }, 180_000);
  afterAll(async () => {
    await scenario?.tearDown();
  }, 60_000);
  describe(title, () => {
    it('no check job lost, the apply ran once, the plan ends actionable, the watch keeps polling', async () => {
      if (!scenario) throw new Error('failover scenario not set up');
      const f: FailoverFigures = await scenario.run();
      console.log(describeFigures(f));
      expect(f.statusAtKill).toBe('applying');
      expect(f.checksLost).toEqual([]);
      expect(f.checksStuck).toEqual([]);
      expect(f.applyRuns).toBe(1);
      for (const key of f.stepKeys) expect(f.writesPerKey[key]).toBe(1);
      expect(f.planStatus).toBe('applied');
      expect(f.messageButtons).toContain('plan_rollback');
      expect(f.pollsAfter).toBeGreaterThan(f.pollsBefore);
    }, 240_000);
  });
}
