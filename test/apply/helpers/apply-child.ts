/**
 * A worker process for the "worker killed during apply" test: applies a plan and, after
 * its first step, says so on stdout and hangs until the test kills it with SIGKILL.
 * Env: CTO_REDIS_URL, CTO_PREFIX, CTO_GATEWAY, CTO_CONFIG (JSON GatewayConfig), CTO_PLAN.
 */
import { Redis } from 'ioredis';
import { z } from 'zod';
import { ApplyEngine } from '../../../src/apply/engine.js';
import { ApplyRecordStore } from '../../../src/apply/store.js';
import { gatewayConfigSchema } from '../../../src/config/inventory.js';
import { freshSessions } from '../../../src/gateway/session-pool.js';
import { GatewayLocks } from '../../../src/store/gateway-lock.js';
import { HistoryStore } from '../../../src/store/history-store.js';
import { PlanStore } from '../../../src/store/plan-store.js';

const env = z
  .object({ CTO_REDIS_URL: z.string(), CTO_PREFIX: z.string(), CTO_GATEWAY: z.string(), CTO_CONFIG: z.string(), CTO_PLAN: z.string() })
  .parse(process.env);
const config = gatewayConfigSchema.parse(JSON.parse(env.CTO_CONFIG));
const redis = new Redis(env.CTO_REDIS_URL, { maxRetriesPerRequest: null });
const engine = new ApplyEngine({
  inventory: () => ({ gateways: { [env.CTO_GATEWAY]: config } }),
  sessions: freshSessions(),
  plans: new PlanStore(redis, env.CTO_PREFIX),
  history: new HistoryStore(redis, env.CTO_PREFIX),
  // Short TTLs so the test does not wait a minute for the dead worker's lock and lease.
  locks: new GatewayLocks(redis, env.CTO_PREFIX, 3_000),
  records: new ApplyRecordStore(redis, env.CTO_PREFIX, 3_000),
});
await engine.apply(env.CTO_PLAN, {
  actor: 'U-approver',
  afterStep: async (stepId) => {
    process.stdout.write(`STEP-DONE ${stepId}\n`);
    await new Promise<never>(() => undefined);
  },
});
