/**
 * The poll job (runbook step 7): one light exec on the gateway's warm session, folded into
 * its episode state in Redis, shown by the episode publisher; at `critical` a full check is
 * queued into the episode's thread by itself (its plan still waits for an approval).
 */
import type { Job } from 'bullmq';
import { findGateway, type Inventory } from '../config/inventory.js';
import { readPoll } from '../diagnostics/poll-script.js';
import type { SessionProvider } from '../gateway/session-provider.js';
import { logger } from '../infra/logger.js';
import { DEFAULT_EPISODE_RULES, type EpisodeEvent, type EpisodeRules, type Transition } from '../monitor/episodes.js';
import { failureOf, sampleOf } from '../monitor/poller.js';
import type { WatchList } from '../monitor/watch-list.js';
import type { WatchStore } from '../monitor/watch-store.js';
import { pollJobSchema, type CheckJob, type PollJob } from '../queue/jobs.js';
import type { SlackMessageRef } from '../store/plan-store.js';
import type { EpisodePublisher } from './ports.js';

export interface PollDeps {
  inventory: () => Inventory;
  /** Keeps a warm session to the gateway from now on (idempotent). */
  keepWarm: (gateway: string, config: ReturnType<typeof findGateway>) => Promise<void>;
  sessions: SessionProvider;
  store: WatchStore;
  watchList: WatchList;
  publisher: EpisodePublisher;
  /** Queue a full check (stable request id: the same escalation queues one check). */
  enqueueCheck: (job: CheckJob) => Promise<unknown>;
  pollTimeoutMs?: number;
  now?: () => Date;
  onPolled?: (gateway: string, ok: boolean, durationMs: number) => void;
}

/** Events that make the watch run a full check by itself. */
function wantsAutoCheck(ev: EpisodeEvent): boolean {
  return ev.level === 'critical' && (ev.event === 'opened' || ev.event === 'escalated' || ev.event === 'reopened');
}

export function rulesFor(config: ReturnType<typeof findGateway>): EpisodeRules {
  return { ...DEFAULT_EPISODE_RULES, warnPercent: config.thresholds.warnPercent, critPercent: config.thresholds.critPercent };
}

export function createPollProcessor(deps: PollDeps) {
  const now = deps.now ?? (() => new Date());
  return async (job: Job<PollJob>): Promise<Transition | null> => {
    const { gateway } = pollJobSchema.parse(job.data);
    const inventory = deps.inventory();
    if (!Object.hasOwn(inventory.gateways, gateway)) {
      logger.warn({ gateway }, 'poll of a gateway that is not in the inventory: skipped');
      return null;
    }
    const config = findGateway(inventory, gateway);
    const started = performance.now();
    const previous = await deps.store.state(gateway);
    let outcome;
    try {
      await deps.keepWarm(gateway, config);
      const lease = await deps.sessions(gateway, config);
      try {
        const reading = await readPoll(lease.session, deps.pollTimeoutMs ?? 10_000);
        outcome = { ok: true as const, sample: sampleOf(reading, previous, now()) };
      } finally {
        lease.release();
      }
    } catch (err) {
      outcome = failureOf(err, now());
    }
    deps.onPolled?.(gateway, outcome.ok, performance.now() - started);
    const transition = await deps.store.advance(gateway, outcome, rulesFor(config));
    const entry = await deps.watchList.get(gateway);
    let thread: SlackMessageRef | null = null;
    try {
      thread = await deps.publisher.publish({ gateway, events: transition.events, state: transition.state, entry });
    } catch (err) {
      // Showing the episode is best effort: the state is stored, the next poll shows it again.
      logger.warn({ gateway, err: (err as Error).message }, 'episode publish failed');
    }
    for (const ev of transition.events.filter(wantsAutoCheck)) {
      const episode = transition.state.episode;
      if (!episode) continue;
      await deps.enqueueCheck({
        gateway,
        requestedBy: 'watch',
        requestId: `${episode.id}-${ev.event}-${episode.flaps}`,
        origin: thread ? { kind: 'slack', channel: thread.channel, threadTs: thread.ts } : { kind: 'cli' },
      });
    }
    return transition;
  };
}
