/**
 * The one way work enters the system, for every front end (Slack, terminal, monitor).
 * Stable job ids make the same request enqueued twice run once.
 */
import { Queue, QueueEvents } from 'bullmq';
import { logger } from '../infra/logger.js';
import type { RedisConnection } from '../infra/redis.js';
import { BulkAdder } from './bulk-adder.js';
import { applyJobId, applyJobSchema, checkJobId, checkJobSchema, QUEUES, savedFileJobId, savedFileJobSchema, type ApplyJob, type CheckJob, type PollJob, type SavedFileJob } from './jobs.js';

export interface Queues {
  check: Queue<CheckJob>;
  apply: Queue<ApplyJob>;
  /** The watch's polls, produced by job schedulers (src/monitor/schedulers.ts). */
  poll: Queue<PollJob>;
  /** Files shared in Slack, read as saved files (offline analysis). */
  saved: Queue<SavedFileJob>;
  close(): Promise<void>;
}

/** Read-only work (a check, a saved file's analysis): safe to retry with backoff. */
const READ_ONLY_JOB_OPTIONS = {
  attempts: 3,
  backoff: { type: 'exponential', delay: 2_000 },
  removeOnComplete: { age: 24 * 3600, count: 1000 },
  removeOnFail: { age: 7 * 24 * 3600 },
} as const;

export function openQueues(connection: RedisConnection, prefix: string): Queues {
  // Checks: the gateway may drop our SYN while saturated. Saved files: a failed download is
  // retried; a file that is not a saved file is not (UnrecoverableError).
  const check = new Queue<CheckJob>(QUEUES.check, { connection, prefix, defaultJobOptions: READ_ONLY_JOB_OPTIONS });
  const apply = new Queue<ApplyJob>(QUEUES.apply, {
    connection,
    prefix,
    defaultJobOptions: {
      // Changes a gateway: never retried automatically (a stalled job is guarded by the plan state).
      attempts: 1,
      removeOnComplete: { age: 7 * 24 * 3600 },
      removeOnFail: { age: 7 * 24 * 3600 },
    },
  });
  const poll = new Queue<PollJob>(QUEUES.poll, { connection, prefix });
  const saved = new Queue<SavedFileJob>(QUEUES.saved, { connection, prefix, defaultJobOptions: READ_ONLY_JOB_OPTIONS });
  // A Queue re-emits its connection's errors; without a listener BullMQ prints each one raw
  // (console.error) on every reconnect attempt during an outage or failover. ioredis reconnects.
  for (const q of [check, apply, poll, saved]) q.on('error', (err: Error) => logger.debug({ queue: q.name, err: err.message }, 'queue connection error'));
  return {
    check,
    apply,
    poll,
    saved,
    async close() {
      await Promise.all([check.close(), apply.close(), poll.close(), saved.close()]);
    },
  };
}

/** One batcher per check queue (see BulkAdder: a burst of commands is one Redis round trip). */
const checkAdders = new WeakMap<Queue<CheckJob>, BulkAdder<CheckJob>>();

function checkAdder(queue: Queue<CheckJob>): BulkAdder<CheckJob> {
  let adder = checkAdders.get(queue);
  if (!adder) {
    adder = new BulkAdder(queue);
    checkAdders.set(queue, adder);
  }
  return adder;
}

export async function enqueueCheck(queues: Queues, payload: CheckJob, opts: { attempts?: number; delayMs?: number } = {}): Promise<string> {
  const data = checkJobSchema.parse(payload);
  const jobId = checkJobId(data);
  await checkAdder(queues.check).add('check', data, {
    jobId,
    ...(opts.attempts !== undefined ? { attempts: opts.attempts } : {}),
    ...(opts.delayMs !== undefined ? { delay: opts.delayMs } : {}),
  });
  return jobId;
}

export async function enqueueApply(queues: Queues, payload: ApplyJob): Promise<string> {
  const data = applyJobSchema.parse(payload);
  const jobId = applyJobId(data);
  await queues.apply.add(data.action, data, { jobId });
  return jobId;
}

export function openQueueEvents(connection: RedisConnection, prefix: string, queue: keyof typeof QUEUES): QueueEvents {
  return new QueueEvents(QUEUES[queue], { connection, prefix });
}

/** Queue the analysis of a file shared in Slack; the same file in the same channel is queued once. */
export async function enqueueSavedFile(queues: Queues, payload: SavedFileJob): Promise<string> {
  const data = savedFileJobSchema.parse(payload);
  const jobId = savedFileJobId(data);
  await queues.saved.add('saved-file', data, { jobId });
  return jobId;
}
