/**
 * A BullMQ Worker that stops taking jobs without an error is replaced.
 *
 * Measured on a Redis Cluster (test/faults/redis-cluster-failover.test.ts): after the primary
 * of the bot's slot is killed and its replica promoted, an idle Worker's blocking connection
 * can stay silent for good (no command reaches any node, no 'error' event); the watch's next
 * poll then sits in `delayed`, overdue, forever (reproduced 3 of 3 times with a bare Queue +
 * Worker and a job scheduler). BullMQ's maintainers' advice for a Worker whose connection does
 * not come back (taskforcesh/bullmq#3185) is to close it and make a new one; a new Worker on
 * the same connection takes the overdue job at once.
 *
 * The sign used here cannot happen to a live idle Worker: it is idle (no job of this process
 * running) and its queue has a job it should have taken long ago: a delayed job due more than
 * `overdueMs` ago (a live Worker promotes due delayed jobs within BullMQ's 10 s block limit), or
 * a waiting job older than `overdueMs`. Only an idle Worker is replaced, so no running job is
 * abandoned (force-closing a busy one would stall its jobs).
 */
import type { Queue, Worker } from 'bullmq';
import type { RedisConnection } from '../infra/redis.js';

export interface SupervisedWorker<W extends Worker = Worker> {
  current(): W;
  /** Times the Worker was replaced. */
  replaced(): number;
  close(): Promise<void>;
}

export interface SuperviseOptions<W extends Worker> {
  queue: Queue;
  /** Reads the queue's delayed set (its scores are when each job is due). */
  redis: RedisConnection;
  /** Makes the Worker (again, when it is replaced). */
  make: () => W;
  /**
   * How many of this queue's jobs run in this process now, counted around the processor (a
   * job moved back to delayed ends with no Worker event).
   */
  inFlight: () => number;
  everyMs?: number;
  overdueMs?: number;
  onReplace?: (why: string) => void;
}

/** How late the queue's oldest due job is (ms; 0 = nothing late). */
async function lateness(queue: Queue, redis: RedisConnection, now: number): Promise<{ ms: number; what: string }> {
  // BullMQ scores a delayed job due at t as t * 0x1000 + a counter: the first member is the next due.
  const [delayedId, score] = await redis.zrange(queue.keys['delayed']!, '0', '0', 'WITHSCORES');
  const delayedDue = score === undefined ? null : Math.floor(Number(score) / 0x1000);
  const waiting = [...(await queue.getWaiting(0, 0)), ...(await queue.getWaiting(-1, -1))];
  const oldestWaiting = waiting.length ? Math.min(...waiting.map((j) => j.timestamp)) : null;
  const late = { ms: 0, what: '' };
  if (delayedDue !== null && now - delayedDue > late.ms) Object.assign(late, { ms: now - delayedDue, what: `delayed job ${delayedId ?? '?'}` });
  if (oldestWaiting !== null && now - oldestWaiting > late.ms) Object.assign(late, { ms: now - oldestWaiting, what: 'waiting job' });
  return late;
}

export function superviseWorker<W extends Worker>(opts: SuperviseOptions<W>): SupervisedWorker<W> {
  const everyMs = opts.everyMs ?? 5_000;
  const overdueMs = opts.overdueMs ?? 20_000;
  const { inFlight } = opts;
  let replaced = 0;
  let closing = false;
  let notBefore = Date.now() + overdueMs;
  let worker = opts.make();
  let checking = false;
  const check = async (): Promise<void> => {
    if (checking || closing || inFlight() > 0 || Date.now() < notBefore) return;
    checking = true;
    try {
      const late = await lateness(opts.queue, opts.redis, Date.now());
      if (late.ms <= overdueMs || closing || inFlight() > 0) return;
      const old = worker;
      // The stuck Worker may never settle its close: do not wait for it long.
      await Promise.race([old.close(true).catch(() => undefined), new Promise((r) => setTimeout(r, 5_000))]);
      if (closing) return;
      worker = opts.make();
      replaced += 1;
      notBefore = Date.now() + overdueMs;
      opts.onReplace?.(`${late.what} ${Math.round(late.ms / 1000)} s overdue with this worker idle`);
    } catch {
      // Redis unreachable right now: the next round asks again.
    } finally {
      checking = false;
    }
  };
  const timer = setInterval(() => void check(), everyMs);
  timer.unref();
  return {
    current: () => worker,
    replaced: () => replaced,
    async close() {
      closing = true;
      clearInterval(timer);
      await worker.close();
    },
  };
}
