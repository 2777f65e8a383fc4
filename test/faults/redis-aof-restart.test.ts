/**
 * Fault: the bot's one Redis (AOF, appendfsync always) is killed (SIGKILL) in the middle of
 * an apply and started again on the same port and files. Two worker processes and the
 * listener work through it all along (helpers/failover-scenario.ts). About 50 s.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeFigures, FailoverScenario, type FailoverFigures } from './helpers/failover-scenario.js';
import { startSingle } from './helpers/redis-topology.js';

let scenario: FailoverScenario;

beforeAll(async () => {
  scenario = new FailoverScenario(await startSingle());
  await scenario.setUp();
}, 180_000);

afterAll(async () => {
  await scenario?.tearDown();
}, 60_000);

describe('one Redis with AOF (appendfsync always): killed mid-apply and started again on its files', () => {
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
