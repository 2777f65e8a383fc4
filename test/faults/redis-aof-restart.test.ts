/**
 * Fault: the bot's one Redis (AOF, appendfsync always) is killed (SIGKILL) in the middle of
 * an apply and started again on the same port and files. Two worker processes and the
 * listener work through it all along (helpers/failover-scenario.ts). About 50 s.
 */
import { describeFailover } from './helpers/failover-scenario.js';
import { startSingle } from './helpers/redis-topology.js';

describeFailover('one Redis with AOF (appendfsync always): killed mid-apply and started again on its files', startSingle);
