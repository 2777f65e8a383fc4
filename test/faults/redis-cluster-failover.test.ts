/**
 * Fault: the Redis Cluster primary holding the bot's slot (QUEUE_PREFIX's hash tag) is
 * killed in the middle of an apply, right after its gateway write (the apply's state writes
 * still to come); its replica is promoted (cluster-node-timeout 1 s).
 * Two worker processes and the listener work through it all along (helpers/failover-scenario.ts).
 * Slow by nature (a 6-node cluster, a lab gateway, two workers): about 60 s.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeFigures, FailoverScenario, type FailoverFigures } from './helpers/failover-scenario.js';
import { startCluster } from './helpers/redis-topology.js';

let scenario: FailoverScenario;

beforeAll(async () => {
  scenario = new FailoverScenario(await startCluster({ nodeTimeoutMs: 1_000 }), 'after-write');
  await scenario.setUp();
}, 180_000);

afterAll(async () => {
  await scenario?.tearDown();
}, 60_000);

describe('Redis Cluster: a primary killed mid-apply, its replica promoted', () => {
  it('no check job lost, the apply ran once, the plan ends actionable, the watch keeps polling', async () => {
    const f: FailoverFigures = await scenario.run();
    console.log(describeFigures(f));
    expect(f.statusAtKill).toBe('applying');
    expect(f.checksLost).toEqual([]);
    expect(f.checksStuck).toEqual([]);
    expect(f.applyRuns).toBe(1);
    for (const key of f.stepKeys) expect(f.writesPerKey[key]).toBe(1);
    expect(f.planStatus).toBe('applied');
    expect(f.messageButtons).toContain('plan_rollback');
    expect(f.pollsAfter).toBeGreaterThan(f.pollsBefore);
  }, 240_000);
});
