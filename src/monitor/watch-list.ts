/**
 * Which gateways are watched, how often, and where their episodes are posted. In Redis so
 * that `/conntrack watch` in one process is seen by every worker and survives restarts.
 */
import type { RedisConnection } from '../infra/redis.js';
import { z } from 'zod';
import { gatewayNameSchema } from '../config/inventory.js';

export const DEFAULT_WATCH_INTERVAL_SECONDS = 30;

export const watchEntrySchema = z.object({
  gateway: gatewayNameSchema,
  intervalSeconds: z.number().int().min(1).max(3600),
  /** The Slack channel that asked to watch (episodes go to INCIDENT_CHANNEL when set, else here). */
  channel: z.string().regex(/^[CDG][A-Z0-9]{2,}$/).nullable(),
  by: z.string().min(1).max(64),
  since: z.string(),
});
export type WatchEntry = z.infer<typeof watchEntrySchema>;

export class WatchList {
  constructor(
    private readonly redis: RedisConnection,
    private readonly prefix: string,
  ) {}

  private get key(): string {
    return `${this.prefix}:watched`;
  }

  async add(entry: WatchEntry): Promise<void> {
    await this.redis.hset(this.key, entry.gateway, JSON.stringify(watchEntrySchema.parse(entry)));
  }

  /** True when it was watched. */
  async remove(gateway: string): Promise<boolean> {
    return (await this.redis.hdel(this.key, gateway)) === 1;
  }

  async get(gateway: string): Promise<WatchEntry | null> {
    const raw = await this.redis.hget(this.key, gateway);
    return raw ? watchEntrySchema.parse(JSON.parse(raw)) : null;
  }

  async all(): Promise<WatchEntry[]> {
    const raw = await this.redis.hgetall(this.key);
    return Object.values(raw)
      .map((r) => watchEntrySchema.parse(JSON.parse(r)))
      .sort((a, b) => a.gateway.localeCompare(b.gateway));
  }
}
