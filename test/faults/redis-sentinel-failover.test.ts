/**
 * Fault: the Redis primary behind 3 Sentinels (quorum 2, down-after-milliseconds 1 s) is
 * killed in the middle of an apply, right after its gateway write; the Sentinels promote its
 * replica and the bot follows (ioredis asks the Sentinels again when the primary's socket
 * closes). Two worker processes and the listener work through it all along
 * (helpers/failover-scenario.ts). Slow by nature: about 60 s.
 */
import { describeFailover } from './helpers/failover-scenario.js';
import { startSentinel } from './helpers/redis-topology.js';

describeFailover('Redis Sentinel: the primary killed mid-apply, the replica promoted by the Sentinels', () => startSentinel({ downAfterMs: 1_000 }), 'after-write');
