/**
 * The apply outbox: an approval writes its apply job here in the same atomic step as the
 * plan's pending -> approved (PlanStore.transition `also`), and removes it once the job is
 * queued. A crash between the two leaves the entry, and the sweep (src/worker/sweeper.ts)
 * queues the job again under the same job id: BullMQ ignores an id it already has, so
 * the apply never runs twice.
 *
 *   <prefix>:apply:outbox   hash planId -> {job, at}
 */
import type { RedisConnection } from '../infra/redis.js';
import { z } from 'zod';
import { jsonOrNull } from '../infra/json.js';
import { applyJobSchema, type ApplyJob } from '../queue/jobs.js';
import type { TransitionAlso } from './plan-store.js';

const entrySchema = z.object({ job: applyJobSchema, at: z.number() });
export type OutboxEntry = z.infer<typeof entrySchema>;

export class ApplyOutbox {
  constructor(
    private readonly redis: RedisConnection,
    private readonly prefix: string,
  ) {}

  private get key(): string {
    return `${this.prefix}:apply:outbox`;
  }

  /** The write that goes with the approval's transition. */
  entry(job: ApplyJob, now = Date.now()): TransitionAlso {
    return { key: this.key, field: job.planId, set: JSON.stringify(entrySchema.parse({ job, at: now })) };
  }

  async done(planId: string): Promise<void> {
    await this.redis.hdel(this.key, planId);
  }

  /** Every entry; malformed ones are dropped (they cannot be queued). */
  async all(): Promise<OutboxEntry[]> {
    const raw = await this.redis.hgetall(this.key);
    const out: OutboxEntry[] = [];
    for (const [planId, value] of Object.entries(raw)) {
      const parsed = entrySchema.safeParse(jsonOrNull(value));
      if (parsed.success && parsed.data.job.planId === planId) out.push(parsed.data);
      else await this.redis.hdel(this.key, planId);
    }
    return out;
  }
}

