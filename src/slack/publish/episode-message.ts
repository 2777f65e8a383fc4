/**
 * Episodes in Slack: one message per episode in INCIDENT_CHANNEL (or the channel that asked
 * to watch), edited in place; each transition a thread reply; an escalation also shown in the
 * channel; while open, the numbers refreshed at most every `refreshMs`.
 */
import { growth } from '../../monitor/episodes.js';
import type { WatchStore } from '../../monitor/watch-store.js';
import type { SlackMessageRef } from '../../store/plan-store.js';
import type { EpisodePublisher, EpisodeUpdate } from '../../worker/ports.js';
import { renderEpisodeEvent, renderEpisodeMessage } from '../blocks/episode.js';
import type { SlackMessageWriter } from './message-writer.js';

export class SlackEpisodePublisher implements EpisodePublisher {
  private readonly refreshedAt = new Map<string, number>();

  constructor(
    private readonly writer: SlackMessageWriter,
    private readonly store: WatchStore,
    private readonly incidentChannel: string | null,
    private readonly refreshMs = 60_000,
  ) {}

  async publish(update: EpisodeUpdate): Promise<SlackMessageRef | null> {
    const channel = this.incidentChannel ?? update.entry?.channel ?? null;
    const episode = update.state.episode;
    if (!channel) return null;
    if (!episode) {
      // outside an episode only poll failures and recoveries are worth a line
      for (const ev of update.events) await this.writer.post({ channel }, renderEpisodeEvent(ev));
      return null;
    }
    const view = {
      episode,
      growth: growth(update.state),
      lastPollAt: update.state.lastSample?.at ?? null,
      pollError: update.state.pollFailing ? update.state.lastError : null,
    };
    let ref = await this.store.episodeMessage(episode.id);
    const nowMs = Date.now();
    if (!ref) {
      if (episode.status !== 'open') return null;
      ref = await this.writer.post({ channel }, renderEpisodeMessage(view));
      await this.store.setEpisodeMessage(episode.id, ref);
      this.refreshedAt.set(episode.id, nowMs);
    } else if (update.events.length > 0 || (episode.status === 'open' && nowMs - (this.refreshedAt.get(episode.id) ?? 0) >= this.refreshMs)) {
      await this.writer.update(ref, renderEpisodeMessage(view));
      this.refreshedAt.set(episode.id, nowMs);
    }
    for (const ev of update.events) {
      if (ev.event === 'opened') continue; // the message itself says it
      await this.writer.reply(ref, renderEpisodeEvent(ev), { broadcast: ev.event === 'escalated' || ev.event === 'reopened' });
    }
    if (episode.status === 'resolved') this.refreshedAt.delete(episode.id);
    return ref;
  }
}
