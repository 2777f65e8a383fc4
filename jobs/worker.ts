/**
 * Worker process: `npm run worker`. Runs check and apply jobs from the queue; any
 * number of these may run on any number of machines against the same Redis.
 */
import { loadEnv, redactedEnv } from '../src/config/env.js';
import { logger } from '../src/infra/logger.js';
import { hasSharedRedis } from '../src/infra/redis.js';
import { openRuntime } from '../src/runtime.js';
import { slackPublishers } from '../src/slack/publish/index.js';
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
const stop = async (): Promise<void> => {
  await workers.close();
  await rt.close();
  process.exit(0);
};
process.once('SIGINT', () => void stop());
process.once('SIGTERM', () => void stop());
