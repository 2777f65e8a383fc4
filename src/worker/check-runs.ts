/**
 * Duplicate checks of one gateway are merged: a check run answers every check of that
 * gateway requested before the run started (its findings are fresher than the request), so
 * 200 checks queued at once cost the gateway one run, and each requester still gets the
 * findings, with a plan of their own (the four-eyes rule counts per requester).
 *
 *   <prefix>:check-runs:<gateway>   hash: runningSince (ms), lastStartedAt (ms), lastPlanId
 */
import type { RedisConnection } from '../infra/redis.js';

export class CheckRuns {
  constructor(
    private readonly redis: RedisConnection,
    private readonly prefix: string,
  ) {}

  private key(gateway: string): string {
    return `${this.prefix}:check-runs:${gateway}`;
  }

  async started(gateway: string, at: number): Promise<void> {
    await this.redis.hset(this.key(gateway), 'runningSince', String(at));
  }

  /** The run that started at `startedAt` produced `planId`: it answers every check requested until then. */
  async finished(gateway: string, startedAt: number, planId: string): Promise<void> {
    await this.redis.multi().hset(this.key(gateway), { lastStartedAt: String(startedAt), lastPlanId: planId }).hdel(this.key(gateway), 'runningSince').exec();
  }

  async failed(gateway: string): Promise<void> {
    await this.redis.hdel(this.key(gateway), 'runningSince');
  }

  /** The plan of a finished run that started at or after `requestedAt`, if any. */
  async answerFor(gateway: string, requestedAt: number): Promise<string | null> {
    const [startedAt, planId] = await this.redis.hmget(this.key(gateway), 'lastStartedAt', 'lastPlanId');
    return startedAt && planId && Number(startedAt) >= requestedAt ? planId : null;
  }

  /** A run in progress that started at or after `requestedAt` (its result will answer this request). */
  async runningFor(gateway: string, requestedAt: number): Promise<boolean> {
    const since = await this.redis.hget(this.key(gateway), 'runningSince');
    return since !== null && Number(since) >= requestedAt;
  }
}
