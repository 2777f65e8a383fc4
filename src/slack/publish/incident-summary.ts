/**
 * The incident summary in Slack: one message per episode in INCIDENT_CHANNEL (or the channel
 * that asked to watch, or where the check that found it was asked), posted when the episode
 * opens, pinned, and edited in place after every poll that changed the episode and every
 * history record of its gateway (checks, decisions, applies, roll backs, follow-ups, a close
 * by hand). At resolution the chart goes into its thread once; on request again.
 *
 * Best effort throughout: a Slack failure is logged, never thrown at the job that recorded.
 * Refreshes of one gateway are coalesced (at most one per `debounceMs`) and run one at a time;
 * the summary's ref lives in Redis, so restarts and other processes edit the same message.
 */
import { createHash } from 'node:crypto';
import type { Inventory } from '../../config/inventory.js';
import { chartInputOf, type ChartRenderer } from '../../incident/chart-port.js';
import { collectIncident, type IncidentStores } from '../../incident/collect.js';
import type { IncidentMessageStore } from '../../incident/message-store.js';
import type { IncidentSummary } from '../../incident/summary.js';
import { logger } from '../../infra/logger.js';
import { DEFAULT_EPISODE_RULES, type Episode } from '../../monitor/episodes.js';
import type { WatchList } from '../../monitor/watch-list.js';
import type { HistoryRecord } from '../../store/history-store.js';
import type { SlackMessageRef } from '../../store/plan-store.js';
import type { EpisodeUpdate } from '../../worker/ports.js';
import { renderIncidentSummary } from '../blocks/incident.js';
import type { MessagePlace, SlackMessageWriter, UploadedFileRef } from './message-writer.js';

export interface IncidentSummaryDeps {
  writer: SlackMessageWriter;
  stores: IncidentStores;
  messages: IncidentMessageStore;
  watchList: WatchList;
  inventory: () => Inventory;
  incidentChannel: string | null;
  /** Draws the episode's chart (src/incident/chart.ts); without one no chart is posted. */
  chart?: ChartRenderer;
  /** Refreshes of one gateway within this window are one refresh. */
  debounceMs?: number;
  /** A poll without events refreshes the numbers at most this often. */
  refreshMs?: number;
  now?: () => Date;
}

/** Which check findings say what kind of trouble a check-opened episode is. */
function kindOfCheck(summary: string): Episode['kind'] {
  if (/table-saturated|drops-observed/.test(summary)) return 'drops';
  if (/port-exhaustion-risk/.test(summary) && !/table-high/.test(summary)) return 'port-exhaustion';
  return 'utilisation';
}

export class SlackIncidentSummary {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly chains = new Map<string, Promise<unknown>>();
  private readonly refreshedAt = new Map<string, number>();
  /** Where the check that opened an episode was asked (the fallback channel). */
  private readonly checkChannels = new Map<string, string>();
  private readonly debounceMs: number;
  private readonly refreshMs: number;
  private readonly now: () => Date;

  constructor(private readonly deps: IncidentSummaryDeps) {
    this.debounceMs = deps.debounceMs ?? 1_000;
    this.refreshMs = deps.refreshMs ?? 60_000;
    this.now = deps.now ?? (() => new Date());
  }

  /** After a poll's episode publish: refresh when the episode changed, or its numbers are old. */
  afterPoll(update: EpisodeUpdate): void {
    const episode = update.state.episode;
    if (!episode) return;
    const stale = Date.now() - (this.refreshedAt.get(update.gateway) ?? 0) >= this.refreshMs;
    if (update.events.some((e) => e.episodeId === episode.id) || (episode.status === 'open' && stale)) this.schedule(update.gateway);
  }

  /** After a history record of a gateway; a critical check with no open episode opens one. */
  afterRecord(record: HistoryRecord): void {
    if (record.event === 'check' && record.summary.startsWith('critical')) {
      this.serial(record.gateway, () => this.openFromCheck(record));
    }
    this.schedule(record.gateway);
  }

  /** Refresh the gateway's summary soon (coalesced). */
  schedule(gateway: string): void {
    if (this.timers.has(gateway)) return;
    const timer = setTimeout(() => {
      this.timers.delete(gateway);
      void this.refresh(gateway);
    }, this.debounceMs);
    timer.unref();
    this.timers.set(gateway, timer);
  }

  /** Post or edit the gateway's summary now; null when it has no episode to show (or Slack failed). */
  refresh(gateway: string): Promise<SlackMessageRef | null> {
    return this.serial(gateway, () => this.refreshNow(gateway));
  }

  /** The summary's message of the gateway's open or latest episode, if it was posted. */
  async summaryRef(gateway: string): Promise<SlackMessageRef | null> {
    const episode = (await this.deps.stores.watchStore.state(gateway)).episode;
    return episode ? this.deps.messages.ref(episode.id) : null;
  }

  /** The chart of the gateway's open or latest episode, in its summary's thread (else at `fallback`). */
  async postChart(gateway: string, fallback: MessagePlace | null): Promise<UploadedFileRef | null> {
    const found = await this.incidentOf(gateway);
    if (!found || !this.deps.chart) return null;
    const ref = await this.deps.messages.ref(found.incident.episodeId);
    const place = ref ? { channel: ref.channel, threadTs: ref.ts } : fallback;
    return place ? this.uploadChart(found.incident, found.episode, place) : null;
  }

  close(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }

  private serial<T>(gateway: string, work: () => Promise<T>): Promise<T | null> {
    const run = (this.chains.get(gateway) ?? Promise.resolve())
      .then(work)
      .catch((err: unknown) => {
        logger.warn({ gateway, err: (err as Error).message }, 'incident summary failed');
        return null;
      });
    this.chains.set(gateway, run);
    void run.finally(() => {
      if (this.chains.get(gateway) === run) this.chains.delete(gateway);
    });
    return run;
  }

  private async openFromCheck(record: HistoryRecord): Promise<void> {
    const state = await this.deps.stores.watchStore.state(record.gateway);
    if (state.episode?.status === 'open' || !record.planId) return;
    // A watched gateway gets its episode from its own polls, by the watch's rules.
    if (await this.deps.watchList.get(record.gateway)) return;
    const plan = await this.deps.stores.plans.get(record.planId);
    if (!plan) return;
    if (plan.origin.kind === 'slack') this.checkChannels.set(record.gateway, plan.origin.channel);
    const { count, max } = plan.report.conntrack;
    await this.deps.stores.watchStore.openFromCheck(record.gateway, { at: record.at, count, max, kind: kindOfCheck(record.summary), by: record.actor });
  }

  private async incidentOf(gateway: string): Promise<{ incident: IncidentSummary; episode: Episode } | null> {
    const [incident, state] = await Promise.all([collectIncident(this.deps.stores, gateway, this.now()), this.deps.stores.watchStore.state(gateway)]);
    const episode = state.episode;
    if (!incident || !episode || episode.id !== incident.episodeId) return null;
    return { incident, episode };
  }

  private async refreshNow(gateway: string): Promise<SlackMessageRef | null> {
    const found = await this.incidentOf(gateway);
    if (!found) return null;
    const { incident, episode } = found;
    const { messages, writer } = this.deps;
    this.refreshedAt.set(gateway, Date.now());
    const rendered = renderIncidentSummary(incident, this.now());
    const fingerprint = createHash('sha256').update(JSON.stringify(rendered)).digest('hex');
    let ref = await messages.ref(episode.id);
    if (!ref) {
      // Posted while the episode is open: a history record long after an old episode must not post it.
      if (episode.status !== 'open') return null;
      const entry = await this.deps.watchList.get(gateway);
      const channel = this.deps.incidentChannel ?? entry?.channel ?? this.checkChannels.get(gateway) ?? null;
      if (!channel || !(await messages.claimPost(episode.id))) return null;
      ref = await writer.post({ channel }, rendered);
      await messages.setRef(episode.id, ref);
      await messages.setRendered(episode.id, fingerprint);
      await writer.pin(ref).catch((err: unknown) => logger.warn({ gateway, err: (err as Error).message }, 'pinning the incident summary failed'));
    } else if ((await messages.lastRendered(episode.id)) !== fingerprint) {
      await writer.update(ref, rendered);
      await messages.setRendered(episode.id, fingerprint);
    }
    if (incident.status === 'resolved' && this.deps.chart && (await messages.claimChart(episode.id))) {
      await this.uploadChart(incident, episode, { channel: ref.channel, threadTs: ref.ts }).catch(async (err: unknown) => {
        await messages.releaseChart(episode.id);
        throw err;
      });
    }
    return ref;
  }

  private async uploadChart(incident: IncidentSummary, episode: Episode, place: MessagePlace): Promise<UploadedFileRef | null> {
    if (!this.deps.chart) return null;
    const gw = this.deps.inventory().gateways[incident.gateway];
    const thresholds = gw ? gw.thresholds : { warnPercent: DEFAULT_EPISODE_RULES.warnPercent, critPercent: DEFAULT_EPISODE_RULES.critPercent };
    const input = await chartInputOf(this.deps.stores.watchStore, incident, episode, { warnPercent: thresholds.warnPercent, critPercent: thresholds.critPercent }, this.now());
    if (input.samples.length === 0) return null; // an episode opened by a check, never polled: nothing to draw
    const chart = await this.deps.chart(input);
    const safe = incident.gateway.replace(/[^A-Za-z0-9._-]+/g, '-').slice(0, 60);
    const title = `${incident.gateway}: conntrack utilisation and drops, episode ${incident.status === 'resolved' ? 'resolved' : 'so far'}`;
    return this.deps.writer.upload(
      { filename: `conntrack-${safe}-${episode.id.replace(/[^A-Za-z0-9._-]+/g, '-')}.png`, bytes: chart.png, title, altText: chart.altText },
      { channel: place.channel, ...(place.threadTs ? { threadTs: place.threadTs } : {}), comment: `:chart_with_upwards_trend: ${title}` },
    );
  }
}
