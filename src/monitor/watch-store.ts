/**
 * The watch's memory in Redis, shared by every worker and surviving restarts:
 *  - per gateway, the episode state machine's state (src/monitor/episodes.ts), advanced with
 *    optimistic concurrency (WATCH / MULTI) so two workers polling one gateway never both
 *    open an episode;
 *  - per gateway, the poll samples for trends and charts: 7 days, at most MAX_SAMPLES;
 *  - per episode, its events in order (the incident timeline) and its Slack message.
 */
import type { Redis } from 'ioredis';
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

export class WatchStore {
  /** WATCH is per connection: transitions use their own connection, one at a time per process. */
  private readonly txConn: Redis;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {
    this.txConn = redis.duplicate();
    this.txConn.on('error', () => undefined); // the command's rejection reports it
  }

  async close(): Promise<void> {
    await this.queue.catch(() => undefined);
    this.txConn.disconnect();
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
      await this.txConn.watch(key);
      const raw = await this.txConn.get(key);
      const before = raw ? watchStateSchema.parse(JSON.parse(raw)) : initialWatchState(gateway);
      const transition = step(before);
      if (transition.state === before && transition.events.length === 0) {
        await this.txConn.unwatch();
        return transition;
      }
      const tx = this.txConn.multi().set(key, JSON.stringify(transition.state));
      if (sample) {
        const atMs = Date.parse(sample.at);
        const skey = this.samplesKey(gateway);
        tx.zadd(skey, atMs, JSON.stringify(sample))
          .zremrangebyscore(skey, '-inf', `(${atMs - SAMPLE_RETENTION_MS}`)
          .zremrangebyrank(skey, 0, -(MAX_SAMPLES + 1));
      }
      for (const ev of transition.events) {
        // every event, in order, for whoever follows the gateway (the terminal watch on a shared Redis)
        tx.xadd(this.streamKey(gateway), 'MAXLEN', '~', String(MAX_STREAM_EVENTS), '*', 'e', JSON.stringify(ev));
        if (!ev.episodeId) continue;
        const ekey = this.eventsKey(ev.episodeId);
        tx.rpush(ekey, JSON.stringify(ev)).ltrim(ekey, -MAX_EPISODE_EVENTS, -1).expire(ekey, EPISODE_RETENTION_SECONDS);
      }
      const result = await tx.exec();
      if (result !== null) return transition;
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
