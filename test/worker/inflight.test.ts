/**
 * The in-flight entries the sweep reads, on a real Redis: written in the same step as the
 * plan's transition (and not at all when the transition fails), and a run left in the set
 * used before this hash (a run in flight across an upgrade) is still found and cleared.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApplyRecordStore } from '../../src/apply/store.js';
import { startEmbeddedRedis, type RedisConnection, type RedisHandle } from '../../src/infra/redis.js';
import { PlanStore } from '../../src/store/plan-store.js';
import { realisticReport } from '../slack/blocks/fixtures.js';

let handle: RedisHandle;
let redis: RedisConnection;

beforeAll(async () => {
  handle = await startEmbeddedRedis();
  redis = handle.connect();
});

afterAll(async () => {
  redis?.disconnect();
  await handle?.stop();
});

describe('in-flight entries', () => {
  it('go with the transition, or not at all; the legacy set is read and cleared', async () => {
    const prefix = `{inflight-${randomUUID().slice(0, 8)}}`;
    const plans = new PlanStore(redis, prefix);
    const records = new ApplyRecordStore(redis, prefix);
    const plan = await plans.create({ report: realisticReport(), requestedBy: 'U0ALICE01', origin: { kind: 'cli' }, ttlMinutes: 30 });
    // Not approved: the transition fails and writes no entry.
    expect((await plans.transition(plan.planId, ['approved'], 'applying', { also: records.inflightEntry(plan.planId, 'apply') })).ok).toBe(false);
    expect(await records.active()).toEqual([]);
    await plans.transition(plan.planId, ['pending'], 'approved');
    expect((await plans.transition(plan.planId, ['approved'], 'applying', { also: records.inflightEntry(plan.planId, 'apply') })).ok).toBe(true);
    expect((await records.active()).map((r) => [r.planId, r.action])).toEqual([[plan.planId, 'apply']]);
    await records.clearActive(plan.planId);
    expect(await records.active()).toEqual([]);

    const legacy = randomUUID();
    await redis.sadd(`${prefix}:apply:active`, legacy);
    expect((await records.active()).map((r) => r.planId)).toEqual([legacy]);
    await records.clearActive(legacy);
    expect(await records.active()).toEqual([]);
  });
});
