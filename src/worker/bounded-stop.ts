/**
 * A process's stop on SIGTERM / SIGINT, in bounded time (the worker, and `conntrack-ops start`
 * with its listener and in-process worker): first no new work (the Slack listener stops, the
 * Workers take no new job); with Redis answering, a running apply gets `graceSeconds` to finish
 * or restore; with Redis gone (nothing can be recorded, BullMQ would wait for it for ever) at
 * most `goneSeconds`. Past the bound the process exits 1 and says which jobs it abandoned (the
 * sweep of another worker reports an abandoned apply in its channel). A second signal exits at once.
 */
import { logger } from '../infra/logger.js';
import type { RedisConnection } from '../infra/redis.js';
import type { RunningJob, RunningWorkers } from './start.js';

export interface BoundedStop {
  redis: RedisConnection;
  /** The process's workers (null: a listener without an in-process worker). */
  workers: RunningWorkers | null;
  /** What takes new work in (the Slack listener), stopped first. */
  listener?: { stop(): Promise<unknown> };
  /** Closes the runtime (Redis connections, embedded Redis) once the workers are closed. */
  closeRuntime(): Promise<void>;
  graceSeconds: number;
  goneSeconds: number;
  /** Exits the process (tests pass their own). */
  exit?: (code: number) => void;
}

/** PING within `ms`, without queuing behind ioredis's reconnects. */
export async function redisAnswers(redis: RedisConnection, ms: number): Promise<boolean> {
  if (redis.status !== 'ready') return false;
  const timeout = new Promise<false>((r) => setTimeout(() => r(false), ms).unref());
  return Promise.race([redis.ping().then((p) => p === 'PONG', () => false), timeout]);
}

export function describeJobs(jobs: RunningJob[]): string {
  if (jobs.length === 0) return 'no running job';
  return jobs.map((j) => `${j.queue} job ${j.id}${j.what ? ` (${j.what})` : ''}, running ${Math.round((Date.now() - j.sinceMs) / 1000)} s`).join('; ');
}

/** Installs the SIGINT / SIGTERM handlers; returns the stop itself (also callable directly). */
export function stopOnSignals(target: BoundedStop): (signal: string) => Promise<void> {
  const exit = target.exit ?? ((code: number) => process.exit(code));
  const running = (): RunningJob[] => target.workers?.running() ?? [];
  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) {
      logger.warn({ signal, abandoned: describeJobs(running()) }, 'second signal: exiting now');
      exit(1);
      return;
    }
    stopping = true;
    const reachable = await redisAnswers(target.redis, 1_000);
    const boundMs = (reachable ? target.graceSeconds : target.goneSeconds) * 1000;
    logger.info({ signal, redis: reachable ? 'answering' : 'unreachable', boundSeconds: boundMs / 1000, running: describeJobs(running()) }, 'stopping: no new work');
    let done = false;
    const finish = (code: number): void => {
      if (done) return;
      done = true;
      clearTimeout(deadline);
      exit(code);
    };
    const deadline = setTimeout(() => {
      const abandoned = running();
      logger.error(
        { signal, redis: reachable ? 'answering' : 'unreachable', abandoned: describeJobs(abandoned) },
        `stop did not finish within ${boundMs / 1000} s: exiting, abandoned ${abandoned.length} job(s)` +
          (abandoned.some((j) => j.queue === 'apply') ? ' (an abandoned apply is reported as interrupted by the sweep of another worker; roll back restores its snapshot)' : ''),
      );
      finish(1);
    }, boundMs);
    const closing = (async () => {
      await target.listener?.stop();
      await target.workers?.close();
      await target.closeRuntime();
    })();
    if (!reachable) {
      // Nothing can be recorded without Redis and BullMQ's close would wait for it: wait only for
      // the jobs running here to end (a restore finishing on its gateway), then go.
      closing.catch(() => undefined);
      while (running().length > 0 && !done) await new Promise((r) => setTimeout(r, 100));
      if (done) return;
      logger.warn({ signal, redis: 'unreachable' }, 'stopped without Redis: no running job, nothing abandoned');
      finish(0);
      return;
    }
    try {
      await closing;
      if (done) return;
      logger.info({ signal }, 'stopped cleanly: nothing abandoned');
      finish(0);
    } catch (err) {
      if (done) return;
      logger.error({ err: (err as Error).message, abandoned: describeJobs(running()) }, 'stop failed: exiting');
      finish(1);
    }
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  return stop;
}
