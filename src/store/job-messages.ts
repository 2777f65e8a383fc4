/**
 * The Slack message a job shows its progress in, by job id: a retried check (the gateway
 * dropped the connection, the worker died) keeps updating the same message instead of
 * posting a new one per attempt, on whichever worker the retry runs.
 */
import type { RedisConnection } from '../infra/redis.js';
import { slackMessageRefSchema, type SlackMessageRef } from './plan-store.js';

const TTL_SECONDS = 24 * 3600;

export class JobMessageStore {
  constructor(
    private readonly redis: RedisConnection,
    private readonly prefix: string,
  ) {}

  private key(jobId: string): string {
    return `${this.prefix}:job-message:${jobId}`;
  }

  async get(jobId: string): Promise<SlackMessageRef | null> {
    const raw = await this.redis.get(this.key(jobId));
    if (!raw) return null;
    const parsed = slackMessageRefSchema.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : null;
  }

  async set(jobId: string, ref: SlackMessageRef): Promise<void> {
    await this.redis.set(this.key(jobId), JSON.stringify(ref), 'EX', TTL_SECONDS);
  }
}
