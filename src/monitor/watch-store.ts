/**
 * The watch's memory in Redis, shared by every worker and surviving restarts:
 *  - per gateway, the episode state machine's state (src/monitor/episodes.ts), advanced with
 *    optimistic concurrency (read, then one Lua script that writes only if the state is still
 *    what was read) so two workers polling one gateway never both open an episode. Not
 *    WATCH / MULTI: WATCH is per connection, and on a Redis Cluster ioredis does not keep a
 *    WATCH and its MULTI on one node connection (redis/ioredis#999, wontfix); a script over
 *    keys of one hash slot (QUEUE_PREFIX's tag) is atomic on one Redis, Sentinel and Cluster;
 *  - per gateway, the poll samples for trends and charts: 7 days, at most MAX_SAMPLES;
 *  - per episode, its events in order (the incident timeline) and its Slack message.
 */
import type { RedisConnection } from '../infra/redis.js';
import { z } from 'zod';
import {
  advance,
  alertArrived,
  closeByHand,
  openByCheck,
  type AlertSignal,
  DEFAULT_EPISODE_RULES,
  initialWatchState,
  pollSampleSchema,
  watchStateSchema,
  type EpisodeEvent,
  type EpisodeRules,
  type PollOutcome,
  type PollSample,
  type Transition,
  type WatchState,
} from './episodes.js';

export const SAMPLE_RETENTION_MS = 7 * 24 * 3600_000;
/** 7 days at the default 30 s interval; faster polls keep the newest MAX_SAMPLES. */
export const MAX_SAMPLES = 20_160;
const EPISODE_RETENTION_SECONDS = 30 * 24 * 3600;
const MAX_EPISODE_EVENTS = 1_000;
/** Events kept per gateway in its stream (approximately: MAXLEN ~). */
const MAX_STREAM_EVENTS = 1_000;

export const messageRefSchema = z.object({ channel: z.string(), ts: z.string() });
export type MessageRef = z.infer<typeof messageRefSchema>;

/**
 * Compare-and-set of a gateway's watch state with everything that goes with the transition.
 * KEYS: state, samples, stream, then one episode-events key per event that has an episode.
 * ARGV: expected state ('' = none yet) and whether one is expected ('1'/'0'), new state,
 * sample score and JSON ('' = no sample), oldest score kept, samples kept, stream length,
 * episode events kept, episode retention s, event count, then per event: JSON and the KEYS
 * index of its episode list (0 = none). Returns 0 when the state changed since it was read.
 */
const ADVANCE = `
local cur = redis.call('GET', KEYS[1])
if ARGV[2] == '1' then
  if cur ~= ARGV[1] then return 0 end
elseif cur then
  return 0
end
redis.call('SET', KEYS[1], ARGV[3])
if ARGV[4] ~= '' then
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5])
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[6])
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(tonumber(ARGV[7]) + 1))
end
local n = tonumber(ARGV[11])
for i = 1, n do
  local ev = ARGV[11 + 2 * i - 1]
  local k = tonumber(ARGV[11 + 2 * i])
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[8], '*', 'e', ev)
  if k > 0 then
    redis.call('RPUSH', KEYS[k], ev)
    redis.call('LTRIM', KEYS[k], -tonumber(ARGV[9]), -1)
    redis.call('EXPIRE', KEYS[k], ARGV[10])
  end
end
return 1
`;

export class WatchStore {
  /** Transitions of this process run one at a time (each retries on its own when another process won). */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly redis: RedisConnection,
    private readonly prefix: string,
  ) {}

  async close(): Promise<void> {
    await this.queue.catch(() => undefined);
  }

  private stateKey(gateway: string): string {
    return `${this.prefix}:watch-state:${gateway}`;
  }

  private samplesKey(gateway: string): string {
    return `${this.prefix}:samples:${gateway}`;
  }

  private streamKey(gateway: string): string {
    return `${this.prefix}:watch-events:${gateway}`;
  }

  /** Where the gateway's event stream ends now: follow from here to see only new events. */
  async eventsTail(gateway: string): Promise<string> {
    const last = await this.redis.xrevrange(this.streamKey(gateway), '+', '-', 'COUNT', 1);
    return last[0]?.[0] ?? '0-0';
  }

  /** The gateway's events after stream id `after`, oldest first, with the id to continue from. */
  async eventsAfter(gateway: string, after: string, count = 100): Promise<{ events: EpisodeEvent[]; next: string }> {
    const rows = await this.redis.xrange(this.streamKey(gateway), `(${after}`, '+', 'COUNT', count);
    const events = rows.flatMap(([, fields]) => {
      const i = fields.indexOf('e');
      const raw = i >= 0 ? fields[i + 1] : undefined;
      return raw ? [JSON.parse(raw) as EpisodeEvent] : [];
    });
    return { events, next: rows.at(-1)?.[0] ?? after };
  }

  private eventsKey(episodeId: string): string {
    return `${this.prefix}:episode-events:${episodeId}`;
  }

  async state(gateway: string): Promise<WatchState> {
    const raw = await this.redis.get(this.stateKey(gateway));
    return raw ? watchStateSchema.parse(JSON.parse(raw)) : initialWatchState(gateway);
  }

  /**
   * Folds one poll outcome into the gateway's state, stores the sample and the events, and
   * returns the transition. Retries when another process changed the state in between.
   */
  advance(gateway: string, outcome: PollOutcome, rules: EpisodeRules = DEFAULT_EPISODE_RULES): Promise<Transition> {
    return this.serialised(() => this.transact(gateway, (before) => advance(before, outcome, rules), outcome.ok ? outcome.sample : null));
  }

  /** Folds an Alertmanager alert into the gateway's state (opens or joins its episode), the same way. */
  applyAlert(gateway: string, alert: AlertSignal): Promise<Transition> {
    return this.serialised(() => this.transact(gateway, (before) => alertArrived(before, alert), null));
  }

  /**
   * Resolves the gateway's open episode by hand (`/conntrack incident <gw> close`): the
   * episode's timeline gets a `resolved` event naming who closed it. No events when none is open.
   */
  closeEpisode(gateway: string, by: string, at: string): Promise<Transition> {
    return this.serialised(() => this.transact(gateway, (before) => closeByHand(before, by, at), null));
  }

  /** Opens a critical episode from a full check's reading when none is open (see openByCheck). */
  openFromCheck(gateway: string, check: Parameters<typeof openByCheck>[1]): Promise<Transition> {
    return this.serialised(() => this.transact(gateway, (before) => openByCheck(before, check), null));
  }

  private serialised(work: () => Promise<Transition>): Promise<Transition> {
    const run = this.queue.then(work);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async transact(gateway: string, step: (before: WatchState) => Transition, sample: PollSample | null): Promise<Transition> {
    const key = this.stateKey(gateway);
    for (let attempt = 0; attempt < 20; attempt++) {
      const raw = await this.redis.get(key);
      const before = raw ? watchStateSchema.parse(JSON.parse(raw)) : initialWatchState(gateway);
      const transition = step(before);
      if (transition.state === before && transition.events.length === 0) return transition;
      const keys = [key, this.samplesKey(gateway), this.streamKey(gateway)];
      const eventArgs: string[] = [];
      for (const ev of transition.events) {
        let index = 0;
        if (ev.episodeId) {
          keys.push(this.eventsKey(ev.episodeId));
          index = keys.length;
        }
        // every event, in order, for whoever follows the gateway (the terminal watch on a shared Redis)
        eventArgs.push(JSON.stringify(ev), String(index));
      }
      const atMs = sample ? Date.parse(sample.at) : 0;
      const written = await this.redis.eval(
        ADVANCE,
        keys.length,
        ...keys,
        raw ?? '',
        raw === null ? '0' : '1',
        JSON.stringify(transition.state),
        sample ? String(atMs) : '',
        sample ? JSON.stringify(sample) : '',
        String(atMs - SAMPLE_RETENTION_MS),
        String(MAX_SAMPLES),
        String(MAX_STREAM_EVENTS),
        String(MAX_EPISODE_EVENTS),
        String(EPISODE_RETENTION_SECONDS),
        String(transition.events.length),
        ...eventArgs,
      );
      if (written === 1) return transition;
    }
    throw new Error(`watch state of ${gateway} kept changing under 20 attempts`);
  }

  /** Samples between two times (ms), oldest first. */
  async samples(gateway: string, fromMs = 0, toMs = Number.MAX_SAFE_INTEGER): Promise<PollSample[]> {
    const raw = await this.redis.zrangebyscore(this.samplesKey(gateway), fromMs, toMs);
    return raw.map((r) => pollSampleSchema.parse(JSON.parse(r)));
  }

  async episodeEvents(episodeId: string): Promise<EpisodeEvent[]> {
    const raw = await this.redis.lrange(this.eventsKey(episodeId), 0, -1);
    return raw.map((r) => JSON.parse(r) as EpisodeEvent);
  }

  /**
   * The Slack message of an episode. Only the process whose transition committed `opened`
   * posts it (the WATCH above makes that one process), so a plain set is enough.
   */
  async setEpisodeMessage(episodeId: string, ref: MessageRef): Promise<void> {
    await this.redis.set(`${this.prefix}:episode-message:${episodeId}`, JSON.stringify(ref), 'EX', EPISODE_RETENTION_SECONDS);
  }

  async episodeMessage(episodeId: string): Promise<MessageRef | null> {
    const raw = await this.redis.get(`${this.prefix}:episode-message:${episodeId}`);
    return raw ? messageRefSchema.parse(JSON.parse(raw)) : null;
  }
}
