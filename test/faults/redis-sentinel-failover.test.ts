/**
 * Fault: the Redis primary behind 3 Sentinels (quorum 2, down-after-milliseconds 1 s) is
 * killed in the middle of an apply, right after its gateway write; the Sentinels promote its
 * replica and the bot follows (ioredis asks the Sentinels again when the primary's socket
 * closes). Two worker processes and the listener work through it all along
 * (helpers/failover-scenario.ts). Slow by nature: about 60 s.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeFigures, FailoverScenario, type FailoverFigures } from './helpers/failover-scenario.js';
import { startSentinel } from './helpers/redis-topology.js';

let scenario: FailoverScenario;

beforeAll(async () => {
  scenario = new FailoverScenario(await startSentinel({ downAfterMs: 1_000 }), 'after-write');
  await scenario.setUp();
}, 180_000);

afterAll(async () => {
  await scenario?.tearDown();
}, 60_000);

describe('Redis Sentinel: the primary killed mid-apply, the replica promoted by the Sentinels', () => {
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
