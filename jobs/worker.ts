/**
 * Worker process: `npm run worker`. Runs check and apply jobs from the queue; any
 * number of these may run on any number of machines against the same Redis.
 *
 * SIGTERM / SIGINT stop it in bounded time: no new job is taken; with Redis answering, a
 * running apply gets WORKER_STOP_GRACE_SECONDS to finish or restore; with Redis gone
 * (nothing can be recorded, BullMQ would wait for it for ever) at most WORKER_STOP_SECONDS.
 * Past the bound it exits 1 and says which jobs it abandoned (the sweep of another worker
 * reports an abandoned apply in its channel). A second signal exits at once.
 */
import { loadEnv, redactedEnv } from '../src/config/env.js';
import { logger } from '../src/infra/logger.js';
import { hasSharedRedis, type RedisConnection } from '../src/infra/redis.js';
import { openRuntime } from '../src/runtime.js';
import { slackPublishers } from '../src/slack/publish/index.js';
import { startWorkers, type RunningJob } from '../src/worker/start.js';

const env = loadEnv();
if (!hasSharedRedis(env)) {
  logger.error('the worker needs the Redis it shares with the Slack listener: REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES');
  process.exit(2);
}
const rt = await openRuntime(env);
const publishers = env.SLACK_BOT_TOKEN ? slackPublishers(rt, env) : undefined;
const workers = startWorkers(rt, { publishers });
logger.info({ env: redactedEnv(env) }, 'worker started');

/** PING within `ms`, without queuing behind ioredis's reconnects. */
async function redisAnswers(redis: RedisConnection, ms: number): Promise<boolean> {
  if (redis.status !== 'ready') return false;
  const timeout = new Promise<false>((r) => setTimeout(() => r(false), ms).unref());
  return Promise.race([redis.ping().then((p) => p === 'PONG', () => false), timeout]);
}

function describeJobs(jobs: RunningJob[]): string {
  if (jobs.length === 0) return 'no running job';
  return jobs.map((j) => `${j.queue} job ${j.id}${j.what ? ` (${j.what})` : ''}, running ${Math.round((Date.now() - j.sinceMs) / 1000)} s`).join('; ');
}

let stopping = false;
const stop = async (signal: string): Promise<void> => {
  if (stopping) {
    logger.warn({ signal, abandoned: describeJobs(workers.running()) }, 'second signal: exiting now');
    process.exit(1);
  }
  stopping = true;
  const reachable = await redisAnswers(rt.redis, 1_000);
  const boundMs = (reachable ? env.WORKER_STOP_GRACE_SECONDS : env.WORKER_STOP_SECONDS) * 1000;
  logger.info({ signal, redis: reachable ? 'answering' : 'unreachable', boundSeconds: boundMs / 1000, running: describeJobs(workers.running()) }, 'stopping: no new jobs');
  const abandon = (): never => {
    const abandoned = workers.running();
    logger.error(
      { signal, redis: reachable ? 'answering' : 'unreachable', abandoned: describeJobs(abandoned) },
      `stop did not finish within ${boundMs / 1000} s: exiting, abandoned ${abandoned.length} job(s)` +
        (abandoned.some((j) => j.queue === 'apply') ? ' (an abandoned apply is reported as interrupted by the sweep of another worker; roll back restores its snapshot)' : ''),
    );
    process.exit(1);
  };
  const deadline = setTimeout(abandon, boundMs);
  const closing = workers.close().then(() => rt.close());
  if (!reachable) {
    // Nothing can be recorded without Redis and BullMQ's close would wait for it: wait only for
    // the jobs running here to end (a restore finishing on its gateway), then go.
    while (workers.running().length > 0) await new Promise((r) => setTimeout(r, 100));
    clearTimeout(deadline);
    logger.warn({ signal, redis: 'unreachable' }, 'stopped without Redis: no running job, nothing abandoned');
    process.exit(0);
  }
  try {
    await closing;
    clearTimeout(deadline);
    logger.info({ signal }, 'stopped cleanly: nothing abandoned');
    process.exit(0);
  } catch (err) {
    logger.error({ err: (err as Error).message, abandoned: describeJobs(workers.running()) }, 'stop failed: exiting');
    process.exit(1);
  }
};
process.on('SIGINT', () => void stop('SIGINT'));
process.on('SIGTERM', () => void stop('SIGTERM'));
