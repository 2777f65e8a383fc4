/**
 * `conntrack-ops check <gateway>`: the same check job Slack enqueues, followed from the
 * terminal. Without REDIS_URL an embedded redis-server and an in-process worker run it.
 */
import { hasSharedRedis } from '../infra/redis.js';
import { terminalSafe } from './terminal-safe.js';
import { randomUUID } from 'node:crypto';
import type { Command } from 'commander';
import { QueueEvents } from 'bullmq';
import { loadEnv } from '../config/env.js';
import { findGateway, gatewayNameSchema, loadInventory, type Inventory } from '../config/inventory.js';
import type { CheckReport } from '../core/model.js';
import { checkResultSchema, QUEUES } from '../queue/jobs.js';
import { enqueueCheck } from '../queue/producer.js';
import { openRuntime, type Runtime } from '../runtime.js';
import { startWorkers, type RunningWorkers } from '../worker/start.js';
import { CHECK_STEP_LABELS, type CheckStep } from '../check/run-check.js';
import { renderReportText } from './render-text.js';
import { CliError } from './errors.js';

export interface CheckCliOptions {
  inventory: string;
  json?: boolean;
  retries?: number;
  quiet?: boolean;
}

/** A runtime for one terminal command: embedded Redis + in-process worker unless REDIS_URL points elsewhere. */
export async function openCliRuntime(inventory: Inventory, inventoryPath: string): Promise<{ rt: Runtime; workers: RunningWorkers | null; close(): Promise<void> }> {
  const env = loadEnv({ ...process.env, INVENTORY: inventoryPath });
  const rt = await openRuntime(env, { inventory });
  const localWorker = !hasSharedRedis(env) || process.env.CONNTRACK_OPS_LOCAL_WORKER === '1';
  const workers = localWorker ? startWorkers(rt, { concurrency: 2 }) : null;
  return {
    rt,
    workers,
    async close() {
      await workers?.close();
      await rt.close();
    },
  };
}

export async function runCheckViaQueue(
  rt: Runtime,
  gateway: string,
  opts: { retries?: number; onProgress?: (line: string) => void; requestedBy?: string },
): Promise<{ report: CheckReport; planId: string }> {
  const events = new QueueEvents(QUEUES.check, { connection: rt.redisHandle.connect(), prefix: rt.env.QUEUE_PREFIX });
  try {
    await events.waitUntilReady();
    const jobId = await enqueueCheck(rt.queues, {
      gateway,
      requestedBy: opts.requestedBy ?? `cli:${process.env.USER ?? 'user'}`,
      requestId: randomUUID(),
      origin: { kind: 'cli' },
    }, { attempts: 1 + (opts.retries ?? 0) });
    const job = await rt.queues.check.getJob(jobId);
    if (!job) throw new CliError(`job ${jobId} vanished from the queue`, 3);
    events.on('progress', ({ jobId: id, data }) => {
      if (id !== jobId || typeof data !== 'object' || data === null) return;
      const p = data as { step?: string; status?: string; detail?: string };
      const label = CHECK_STEP_LABELS[p.step as CheckStep] ?? p.step;
      if (p.status !== 'running') opts.onProgress?.(`${p.status === 'done' ? '✓' : '✗'} ${label}${p.detail ? `: ${p.detail}` : ''}`);
    });
    let raw: unknown;
    try {
      raw = await job.waitUntilFinished(events);
    } catch (err) {
      throw new CliError(`check of ${gateway} failed: ${(err as Error).message}`, 3);
    }
    const result = checkResultSchema.parse(raw);
    const plan = await rt.plans.get(result.planId);
    if (!plan) throw new CliError(`plan ${result.planId} not found in Redis`, 3);
    return { report: plan.report, planId: plan.planId };
  } finally {
    await events.close();
  }
}

export function registerCheckCommand(program: Command): void {
  program
    .command('check')
    .description('check a gateway over SSH (runbook steps 1-3) and print findings and a change plan')
    .argument('<gateway>', 'gateway name from the inventory')
    .option('-i, --inventory <file>', 'inventory file (YAML)', process.env.INVENTORY ?? 'inventory.yml')
    .option('--json', 'print the report as one JSON object')
    .option('--retries <n>', 'retries with backoff when the gateway cannot be reached', (v) => Number.parseInt(v, 10), 0)
    .action(async (gatewayArg: string, opts: CheckCliOptions) => {
      const name = gatewayNameSchema.safeParse(gatewayArg);
      if (!name.success) throw new CliError(`invalid gateway name "${gatewayArg}": ${name.error.issues[0]?.message ?? ''}`, 2);
      const inventory = await loadInventory(opts.inventory);
      findGateway(inventory, name.data);
      const cli = await openCliRuntime(inventory, opts.inventory);
      try {
        const progress = opts.json ? undefined : (line: string) => process.stderr.write(`${terminalSafe(line)}\n`);
        const { report } = await runCheckViaQueue(cli.rt, name.data, { onProgress: progress, retries: opts.retries });
        if (opts.json) process.stdout.write(`${JSON.stringify(toJsonReport(report), null, 2)}\n`);
        else process.stdout.write(renderReportText(report));
      } finally {
        await cli.close();
      }
    });
}

/** The documented JSON shape (README): the report without the raw facts dump. */
export function toJsonReport(report: CheckReport): Record<string, unknown> {
  const { facts, table, ...rest } = report;
  return {
    ...rest,
    table: { entries: table.entries, assured: table.assured, unreplied: table.unreplied, offloaded: table.offloaded ?? { total: 0, hardware: 0 }, byProto: table.byProto, topPortUse: table.topPortUse, approximate: table.approximate, establishedIdle: table.establishedIdle },
    gatewayInfo: {
      kernelRelease: facts.kernelRelease,
      firewallBackend: facts.firewallBackend,
      externalAddresses: facts.externalAddresses,
      writable: facts.writable,
      memTotalKb: facts.memTotalKb,
      localPortRange: facts.localPortRange,
      hasConntrackTool: facts.hasConntrackTool,
    },
  };
}
