/**
 * Fault: the Redis Cluster primary holding the bot's slot (QUEUE_PREFIX's hash tag) is
 * killed in the middle of an apply, right after its gateway write (the apply's state writes
 * still to come); its replica is promoted (cluster-node-timeout 1 s).
 * Two worker processes and the listener work through it all along (helpers/failover-scenario.ts).
 * Slow by nature (a 6-node cluster, a lab gateway, two workers): about 60 s.
 */
import { describeFailover } from './helpers/failover-scenario.js';
import { startCluster } from './helpers/redis-topology.js';

describeFailover('Redis Cluster: a primary killed mid-apply, its replica promoted', () => startCluster({ nodeTimeoutMs: 1_000 }), 'after-write');
