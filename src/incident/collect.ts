/**
 * The sources of a gateway's current (or latest) incident, read from Redis: the episode and
 * its events (watch store), the gateway's history, the plans it names and their apply / roll
 * back outcomes. Then built into a summary (summary.ts).
 */
import type { ApplyOutcome } from '../apply/model.js';
import type { ApplyRecordStore } from '../apply/store.js';
import type { WatchStore } from '../monitor/watch-store.js';
import type { HistoryStore } from '../store/history-store.js';
import type { PlanRecord, PlanStore } from '../store/plan-store.js';
import { buildIncident, type IncidentSummary } from './summary.js';

export interface IncidentStores {
  watchStore: WatchStore;
  history: HistoryStore;
  plans: PlanStore;
  applies: ApplyRecordStore;
}

/** History records read for one incident (the store keeps the newest 200 per gateway). */
const HISTORY_LIMIT = 200;

/** The gateway's open episode, else its last resolved one, as an incident; null when it never had one. */
export async function collectIncident(stores: IncidentStores, gateway: string, now: Date = new Date()): Promise<IncidentSummary | null> {
  const state = await stores.watchStore.state(gateway);
  const episode = state.episode;
  if (!episode) return null;
  const [episodeEvents, history] = await Promise.all([stores.watchStore.episodeEvents(episode.id), stores.history.list(gateway, HISTORY_LIMIT)]);
  const planIds = [...new Set(history.map((r) => r.planId).filter((id): id is string => id !== null))];
  const plans = new Map<string, PlanRecord>();
  const outcomes = new Map<string, { apply: ApplyOutcome | null; rollback: ApplyOutcome | null }>();
  await Promise.all(
    planIds.map(async (id) => {
      const [plan, apply, rollback] = await Promise.all([stores.plans.get(id), stores.applies.outcome(id, 'apply'), stores.applies.outcome(id, 'rollback')]);
      if (plan) plans.set(id, plan);
      if (apply || rollback) outcomes.set(id, { apply, rollback });
    }),
  );
  // oldest first: records of the same instant (a follow-up check and its verdict) stay in the order they were made
  return buildIncident({ episode, episodeEvents, history: [...history].reverse(), plans, outcomes, now });
}

/** The gateway to show when none is named: the newest open episode, else the newest episode; null when none had one. */
export async function latestIncidentGateway(watchStore: WatchStore, gateways: readonly string[]): Promise<string | null> {
  const episodes = (await Promise.all(gateways.map(async (g) => (await watchStore.state(g)).episode))).filter((e) => e !== null);
  const newest = (list: typeof episodes) => [...list].sort((a, b) => Date.parse(b.openedAt) - Date.parse(a.openedAt))[0] ?? null;
  return (newest(episodes.filter((e) => e.status === 'open')) ?? newest(episodes))?.gateway ?? null;
}
