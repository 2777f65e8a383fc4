/**
 * What happened on each gateway: checks, decisions (who, when, which plan, outcome),
 * applies and roll backs. Shown by `/conntrack history <gw>` and `status`.
 */
import type { RedisConnection } from '../infra/redis.js';
import { z } from 'zod';

export const historyRecordSchema = z.object({
  at: z.string(),
  gateway: z.string(),
  event: z.enum(['check', 'approved', 'rejected', 'expired', 'applied', 'apply-failed', 'rolled-back', 'rollback-failed', 'refused', 'follow-up', 'closed']),
  actor: z.string(),
  planId: z.string().nullable(),
  /** One line: what the outcome was (severity, counts, failing step...). */
  summary: z.string(),
  /** For `follow-up`: did the apply stop the drops? */
  stopped: z.boolean().optional(),
});
export type HistoryRecord = z.infer<typeof historyRecordSchema>;

export const lastCheckSchema = z.object({
  at: z.string(),
  planId: z.string(),
  worst: z.string(),
  count: z.number(),
  max: z.number(),
  percent: z.number(),
  findings: z.array(z.string()),
});
export type LastCheck = z.infer<typeof lastCheckSchema>;

const KEEP = 200;

/** Told after each record is stored (e.g. to refresh the incident summary). Must not throw; it is not awaited. */
export type HistoryListener = (record: HistoryRecord) => void;

export class HistoryStore {
  private readonly listeners = new Set<HistoryListener>();

  constructor(
    private readonly redis: RedisConnection,
    private readonly prefix: string,
  ) {}

  async record(entry: HistoryRecord): Promise<void> {
    const key = `${this.prefix}:history:${entry.gateway}`;
    const record = historyRecordSchema.parse(entry);
    await this.redis.multi().lpush(key, JSON.stringify(record)).ltrim(key, 0, KEEP - 1).exec();
    // Best effort: whoever listens must never fail the job that recorded history.
    for (const listener of this.listeners) {
      try {
        listener(record);
      } catch {
        // a listener's own failure is its business
      }
    }
  }

  /** Call `listener` after each record stored through this store; returns how to stop. */
  onRecord(listener: HistoryListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async list(gateway: string, limit = 20): Promise<HistoryRecord[]> {
    const raw = await this.redis.lrange(`${this.prefix}:history:${gateway}`, 0, limit - 1);
    return raw.map((r) => historyRecordSchema.parse(JSON.parse(r)));
  }

  async setLastCheck(gateway: string, last: LastCheck): Promise<void> {
    await this.redis.hset(`${this.prefix}:last-check`, gateway, JSON.stringify(lastCheckSchema.parse(last)));
  }

  async lastChecks(): Promise<Record<string, LastCheck>> {
    const all = await this.redis.hgetall(`${this.prefix}:last-check`);
    return Object.fromEntries(Object.entries(all).map(([gw, v]) => [gw, lastCheckSchema.parse(JSON.parse(v))]));
  }
}
