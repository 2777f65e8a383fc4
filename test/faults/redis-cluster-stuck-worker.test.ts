/**
 * Fault: a Redis Cluster failover leaves an idle BullMQ Worker silent for good (no command
 * reaches any node, no 'error' event), so the watch's scheduled polls stop (found by
 * redis-cluster-failover.test.ts in 2 of 4 runs). Measured here with real BullMQ Workers on a
 * real 3+3 Cluster and a job scheduler every second (as the watch's): a bare Worker takes no
 * job after the failover; one under superviseWorker (src/worker/stuck-worker.ts, what
 * startWorkers uses) is replaced and the schedule goes on. About 60 s.
 */
import { Queue, Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRedis, type RedisConnection } from '../../src/infra/redis.js';
import { superviseWorker, type SupervisedWorker } from '../../src/worker/stuck-worker.js';
import { startCluster, type Topology } from './helpers/redis-topology.js';

const PREFIX = '{cto-stuck}';
let topo: Topology;
let conns: RedisConnection[] = [];

beforeAll(async () => {
  topo = await startCluster({ nodeTimeoutMs: 1_000 });
}, 90_000);

afterAll(async () => {
  for (const c of conns) c.disconnect();
  await topo?.stop();
}, 30_000);

describe('a Worker silent after a Cluster failover', () => {
  it('bare Workers stop taking the scheduled jobs; supervised ones are replaced and go on', async () => {
    const nodes = topo.env['REDIS_CLUSTER_NODES']!.split(',').map((hp) => ({ host: hp.split(':')[0]!, port: Number(hp.split(':')[1]) }));
    const handle = await openRedis({ kind: 'cluster', nodes });
    const conn = handle.connect();
    const wconn = handle.connect();
    conns = [conn, wconn];
    const bareQueue = new Queue('bare', { connection: conn, prefix: PREFIX });
    const keptQueue = new Queue('kept', { connection: conn, prefix: PREFIX });
    for (const q of [bareQueue, keptQueue]) await q.upsertJobScheduler('tick', { every: 1_000 }, { name: 'tick', data: {}, opts: { attempts: 1, removeOnComplete: { count: 50 } } });
    const runs = { bare: [] as number[], kept: [] as number[] };
    const bare = [0, 1].map(() => new Worker('bare', async () => void runs.bare.push(Date.now()), { connection: wconn, prefix: PREFIX, concurrency: 4, maxStalledCount: 0 }));
    const kept: SupervisedWorker[] = [0, 1].map(() => {
      let inFlight = 0;
      const processor = async (): Promise<void> => {
        inFlight += 1;
        try {
          runs.kept.push(Date.now());
        } finally {
          inFlight -= 1;
        }
      };
      return superviseWorker({
        queue: keptQueue,
        redis: conn,
        everyMs: 1_000,
        inFlight: () => inFlight,
        make: () => new Worker('kept', processor, { connection: wconn, prefix: PREFIX, concurrency: 4, maxStalledCount: 0 }),
      });
    });
    try {
      await new Promise((r) => setTimeout(r, 4_000));
      expect(runs.bare.length).toBeGreaterThan(0);
      expect(runs.kept.length).toBeGreaterThan(0);
      const t0 = Date.now();
      const since = performance.now();
      const killed = await topo.killPrimaryOf(`${PREFIX}:kept:x`);
      const failoverMs = await topo.waitForNewPrimary(`${PREFIX}:kept:x`, killed, since);
      // 20 s overdue + up to 1 s to notice + the replacement: give it 40 s.
      await new Promise((r) => setTimeout(r, 40_000));
      const after = (xs: number[]): number[] => xs.filter((t) => t > t0);
      const firstKept = after(runs.kept)[0];
      const replaced = kept.reduce((n, k) => n + k.replaced(), 0);
      console.log(
        `[faults] cluster failover (${Math.round(failoverMs)} ms): bare Workers ran ${after(runs.bare).length} scheduled jobs in the 40 s after the kill; ` +
          `supervised ran ${after(runs.kept).length} (first ${firstKept ? Math.round((firstKept - t0) / 1000) : '-'} s after the kill, ${replaced} replacements)`,
      );
      // What the supervisor is for: without it the schedule stopped (if BullMQ ever recovers by itself, this says so).
      expect(after(runs.kept).length).toBeGreaterThanOrEqual(5);
      expect(after(runs.kept).at(-1)!).toBeGreaterThan(Date.now() - 5_000);
    } finally {
      await Promise.race([Promise.all([...bare.map((w) => w.close(true)), ...kept.map((k) => k.close()), bareQueue.close(), keptQueue.close()]), new Promise((r) => setTimeout(r, 5_000))]);
    }
  }, 120_000);
});
