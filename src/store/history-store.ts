/**
 * What happened on each gateway: checks, decisions (who, when, which plan, outcome),
 * applies and roll backs. Shown by `/conntrack history <gw>` and `status`.
 *
 * Every record goes to the recent list (newest 200: checks fill it); decisions also go to
 * their own, never trimmed log (audit-log.ts), so no number of checks can erase them.
 */
import type { RedisConnection } from '../infra/redis.js';
import { z } from 'zod';
import { AuditLog, isDecision } from './audit-log.js';
import { historyRecordSchema, type HistoryRecord } from './history-record.js';

export { historyRecordSchema, type HistoryRecord } from './history-record.js';

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
  readonly audit: AuditLog;

  constructor(
    private readonly redis: RedisConnection,
    private readonly prefix: string,
  ) {
    this.audit = new AuditLog(redis, prefix);
  }

  async record(entry: HistoryRecord): Promise<void> {
    const key = `${this.prefix}:history:${entry.gateway}`;
    const record = historyRecordSchema.parse(entry);
    const tx = this.redis.multi().lpush(key, JSON.stringify(record)).ltrim(key, 0, KEEP - 1);
    // Applied plans per gateway, never trimmed: the roll back guard looks for newer ones.
    if (record.event === 'applied' && record.planId) tx.zadd(this.appliedKey(record.gateway), Date.parse(record.at), record.planId);
    if (isDecision(record)) tx.xadd(...this.audit.entry(record));
    const results = await tx.exec();
    const failed = results?.find(([err]) => err !== null)?.[0];
    if (failed) throw failed;
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

  /**
   * The newest `limit` decisions (from the untrimmed log) and the newest `checks` other
   * records (checks, follow-ups), merged newest first: decisions never drown in checks.
   */
  async list(gateway: string, limit = 20, checks = limit): Promise<HistoryRecord[]> {
    const [decisions, raw] = await Promise.all([this.audit.recent(gateway, limit), this.redis.lrange(`${this.prefix}:history:${gateway}`, 0, -1)]);
    const others: HistoryRecord[] = [];
    for (const r of raw) {
      if (others.length >= checks) break;
      const record = historyRecordSchema.parse(JSON.parse(r));
      if (!isDecision(record)) others.push(record);
    }
    return [...decisions, ...others].sort((a, b) => Date.parse(b.at) - Date.parse(a.at));
  }

  /** Plans applied on this gateway, oldest first, with when (each plan's latest apply). */
  async appliedPlans(gateway: string): Promise<{ planId: string; at: string }[]> {
    const raw = await this.redis.zrange(this.appliedKey(gateway), '0', '-1', 'WITHSCORES');
    const out: { planId: string; at: string }[] = [];
    for (let i = 0; i + 1 < raw.length; i += 2) out.push({ planId: raw[i]!, at: new Date(Number(raw[i + 1])).toISOString() });
    return out;
  }

  private appliedKey(gateway: string): string {
    return `${this.prefix}:applied-plans:${gateway}`;
  }

  async setLastCheck(gateway: string, last: LastCheck): Promise<void> {
    await this.redis.hset(`${this.prefix}:last-check`, gateway, JSON.stringify(lastCheckSchema.parse(last)));
  }

  async lastChecks(): Promise<Record<string, LastCheck>> {
    const all = await this.redis.hgetall(`${this.prefix}:last-check`);
    return Object.fromEntries(Object.entries(all).map(([gw, v]) => [gw, lastCheckSchema.parse(JSON.parse(v))]));
  }
}
