/**
 * A `check all` run in Redis: where its one summary message is, who asked, which
 * gateways, and each gateway's result as its check ends (written by whichever worker ran
 * it). One hash per run; kept a day.
 */
import type { RedisConnection } from '../../infra/redis.js';
import { z } from 'zod';
import { slackMessageRefSchema, type SlackMessageRef } from '../../store/plan-store.js';
import type { CheckAllResult, CheckAllView } from '../blocks/check-all.js';

const TTL_SECONDS = 24 * 3600;
const META = 'meta';
const RESULT = 'gw:';

export const checkAllRunIdSchema = z.string().regex(/^[A-Za-z0-9._-]{8,100}$/);

const metaSchema = z.object({
  message: slackMessageRefSchema,
  requestedBy: z.string().min(1).max(64),
  startedAt: z.string(),
  gateways: z.array(z.string()).min(1),
});
export type CheckAllMeta = z.infer<typeof metaSchema>;

const resultSchema: z.ZodType<CheckAllResult> = z.discriminatedUnion('state', [
  z.object({ state: z.literal('healthy'), worst: z.string(), percent: z.number() }),
  z.object({ state: z.literal('findings'), worst: z.string(), percent: z.number(), findings: z.number().int(), steps: z.number().int() }),
  z.object({ state: z.literal('failed'), error: z.string() }),
]);

export interface CheckAllRun {
  meta: CheckAllMeta;
  view: CheckAllView;
  /** Changes with every recorded result: equal fingerprints, same summary. */
  fingerprint: string;
}

export class CheckAllStore {
  constructor(
    private readonly redis: RedisConnection,
    private readonly prefix: string,
  ) {}

  private key(runId: string): string {
    return `${this.prefix}:check-all:${runId}`;
  }

  async create(runId: string, meta: CheckAllMeta): Promise<void> {
    const key = this.key(checkAllRunIdSchema.parse(runId));
    await this.redis.multi().hset(key, META, JSON.stringify(metaSchema.parse(meta))).expire(key, TTL_SECONDS).exec();
  }

  async record(runId: string, gateway: string, result: CheckAllResult): Promise<void> {
    await this.redis.hset(this.key(runId), `${RESULT}${gateway}`, JSON.stringify(result));
  }

  async load(runId: string): Promise<CheckAllRun | null> {
    const all = await this.redis.hgetall(this.key(runId));
    const rawMeta = all[META];
    if (!rawMeta) return null;
    const meta = metaSchema.safeParse(JSON.parse(rawMeta));
    if (!meta.success) return null;
    const results: Record<string, CheckAllResult> = {};
    for (const [field, raw] of Object.entries(all)) {
      if (!field.startsWith(RESULT)) continue;
      const parsed = resultSchema.safeParse(JSON.parse(raw));
      if (parsed.success) results[field.slice(RESULT.length)] = parsed.data;
    }
    const fingerprint = JSON.stringify(Object.entries(results).sort(([a], [b]) => a.localeCompare(b)));
    return {
      meta: meta.data,
      view: { requestedBy: meta.data.requestedBy, startedAt: meta.data.startedAt, gateways: meta.data.gateways, results },
      fingerprint,
    };
  }
}

export type { SlackMessageRef };
