/**
 * Where each episode's incident summary lives in Slack, in Redis (so a restart, another worker
 * or the Slack listener edit the same message): its ref, a short claim so that only one process
 * posts it, and a once-only mark for the chart posted at resolution.
 */
import type { RedisConnection } from '../infra/redis.js';
import { messageRefSchema, type MessageRef } from '../monitor/watch-store.js';

/** Kept as long as the episode's events (30 days). */
const RETENTION_SECONDS = 30 * 24 * 3600;
/** A process that claimed the post and died frees it after this long. */
const CLAIM_SECONDS = 30;

export class IncidentMessageStore {
  constructor(
    private readonly redis: RedisConnection,
    private readonly prefix: string,
  ) {}

  private key(episodeId: string, what: 'ref' | 'claim' | 'chart' | 'rendered'): string {
    return `${this.prefix}:incident-summary:${what}:${episodeId}`;
  }

  async ref(episodeId: string): Promise<MessageRef | null> {
    const raw = await this.redis.get(this.key(episodeId, 'ref'));
    return raw ? messageRefSchema.parse(JSON.parse(raw)) : null;
  }

  async setRef(episodeId: string, ref: MessageRef): Promise<void> {
    await this.redis.set(this.key(episodeId, 'ref'), JSON.stringify(messageRefSchema.parse(ref)), 'EX', RETENTION_SECONDS);
  }

  /** True for the one caller that may post the summary now. */
  async claimPost(episodeId: string): Promise<boolean> {
    return (await this.redis.set(this.key(episodeId, 'claim'), '1', 'EX', CLAIM_SECONDS, 'NX')) === 'OK';
  }

  /** True once per episode: for the chart at resolution. */
  async claimChart(episodeId: string): Promise<boolean> {
    return (await this.redis.set(this.key(episodeId, 'chart'), new Date().toISOString(), 'EX', RETENTION_SECONDS, 'NX')) === 'OK';
  }

  async releaseChart(episodeId: string): Promise<void> {
    await this.redis.del(this.key(episodeId, 'chart'));
  }

  /** A fingerprint of the last rendering written, to skip edits that change nothing. */
  async lastRendered(episodeId: string): Promise<string | null> {
    return this.redis.get(this.key(episodeId, 'rendered'));
  }

  async setRendered(episodeId: string, fingerprint: string): Promise<void> {
    await this.redis.set(this.key(episodeId, 'rendered'), fingerprint, 'EX', RETENTION_SECONDS);
  }
}
