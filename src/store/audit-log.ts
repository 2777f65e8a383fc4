/**
 * The decision log: who approved, rejected, applied or rolled back which plan on which
 * gateway, when, and with what outcome. One Redis stream per gateway, never trimmed (a
 * decision is a few hundred bytes; a busy gateway has a few a day), apart from the check
 * history, which keeps only the newest 200 records and which anyone can fill by running checks.
 */
import type { RedisConnection } from '../infra/redis.js';
import { historyRecordSchema, type HistoryRecord } from './history-record.js';

/** The events that are decisions or their outcome, the follow-up's verdict included (everything but checks). */
export const DECISION_EVENTS: ReadonlySet<HistoryRecord['event']> = new Set([
  'follow-up',
  'approved',
  'rejected',
  'expired',
  'applied',
  'apply-failed',
  'rolled-back',
  'rollback-failed',
  'refused',
  'closed',
]);

export function isDecision(record: HistoryRecord): boolean {
  return DECISION_EVENTS.has(record.event);
}

export class AuditLog {
  constructor(
    private readonly redis: RedisConnection,
    private readonly prefix: string,
  ) {}

  /** The stream of one gateway's decisions. */
  key(gateway: string): string {
    return `${this.prefix}:audit:${gateway}`;
  }

  /** XADD arguments of one decision (for a caller's MULTI); no MAXLEN: never trimmed. */
  entry(record: HistoryRecord): [key: string, id: '*', field: 'record', value: string] {
    return [this.key(record.gateway), '*', 'record', JSON.stringify(historyRecordSchema.parse(record))];
  }

  /** The newest `limit` decisions of a gateway, newest first. */
  async recent(gateway: string, limit = 20): Promise<HistoryRecord[]> {
    // XREVRANGE ... COUNT 0 answers nil, not an empty list
    if (limit <= 0) return [];
    const rows = await this.redis.xrevrange(this.key(gateway), '+', '-', 'COUNT', limit);
    return (rows ?? []).flatMap(([, fields]) => {
      const i = fields.indexOf('record');
      const raw = i >= 0 ? fields[i + 1] : undefined;
      return raw === undefined ? [] : [historyRecordSchema.parse(JSON.parse(raw))];
    });
  }

  async length(gateway: string): Promise<number> {
    return this.redis.xlen(this.key(gateway));
  }
}
