/**
 * Worker process: `npm run worker`. Runs check and apply jobs from the queue; any
 * number of these may run on any number of machines against the same Redis.
 *
 * SIGTERM / SIGINT stop it in bounded time (src/worker/bounded-stop.ts): no new job is taken;
 * with Redis answering, a running apply gets WORKER_STOP_GRACE_SECONDS to finish or restore;
 * with Redis gone at most WORKER_STOP_SECONDS. Past the bound it exits 1 and says which jobs
 * it abandoned. A second signal exits at once.
 */
import { loadEnv, redactedEnv } from '../src/config/env.js';
import { logger } from '../src/infra/logger.js';
import { hasSharedRedis } from '../src/infra/redis.js';
import { openRuntime } from '../src/runtime.js';
import { slackPublishers } from '../src/slack/publish/index.js';
import { stopOnSignals } from '../src/worker/bounded-stop.js';
import { startWorkers } from '../src/worker/start.js';

const env = loadEnv();
if (!hasSharedRedis(env)) {
  logger.error('the worker needs the Redis it shares with the Slack listener: REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES');
  process.exit(2);
}
const rt = await openRuntime(env);
const publishers = env.SLACK_BOT_TOKEN ? slackPublishers(rt, env) : undefined;
const workers = startWorkers(rt, { publishers });
logger.info({ env: redactedEnv(env) }, 'worker started');

stopOnSignals({
  redis: rt.redis,
  workers,
  closeRuntime: () => rt.close(),
  graceSeconds: env.WORKER_STOP_GRACE_SECONDS,
  goneSeconds: env.WORKER_STOP_SECONDS,
});
