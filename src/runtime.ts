/**
 * Wiring shared by every process (Slack listener, worker, terminal commands):
 * Redis (embedded, REDIS_URL, Sentinel or Cluster), queues, stores and the inventory.
 */
import type { Env } from './config/env.js';
import { loadInventory, type Inventory } from './config/inventory.js';
import { openRedis, redisTarget, type RedisConnection, type RedisHandle } from './infra/redis.js';
import { WatchList } from './monitor/watch-list.js';
import { WatchStore } from './monitor/watch-store.js';
import { openQueues, type Queues } from './queue/producer.js';
import { GatewayLocks } from './store/gateway-lock.js';
import { HistoryStore } from './store/history-store.js';
import { PlanStore } from './store/plan-store.js';

export interface Runtime {
  env: Env;
  redisHandle: RedisHandle;
  /** Connection for stores (and queues; workers get their own blocking connection). */
  redis: RedisConnection;
  queues: Queues;
  plans: PlanStore;
  history: HistoryStore;
  locks: GatewayLocks;
  /** The watch: which gateways are polled, and their episodes and samples. */
  watchList: WatchList;
  watchStore: WatchStore;
  inventory: () => Inventory;
  reloadInventory(): Promise<Inventory>;
  close(): Promise<void>;
}

export async function openRuntime(env: Env, opts: { inventory?: Inventory } = {}): Promise<Runtime> {
  let inventory = opts.inventory ?? (await loadInventory(env.INVENTORY));
  const redisHandle = await openRedis(redisTarget(env));
  const redis = redisHandle.connect();
  const prefix = env.QUEUE_PREFIX;
  const queues = openQueues(redis, prefix);
  const watchList = new WatchList(redis, prefix);
  const watchStore = new WatchStore(redis, prefix);
  return {
    env,
    redisHandle,
    redis,
    queues,
    plans: new PlanStore(redis, prefix),
    history: new HistoryStore(redis, prefix),
    locks: new GatewayLocks(redis, prefix, env.GATEWAY_LOCK_TTL_SECONDS * 1000),
    watchList,
    watchStore,
    inventory: () => inventory,
    async reloadInventory() {
      inventory = await loadInventory(env.INVENTORY);
      return inventory;
    },
    async close() {
      await watchStore.close();
      await queues.close();
      redis.disconnect();
      await redisHandle.stop();
    },
  };
}
