/**
 * What the bot does with Alertmanager's alerts (the HTTP side is src/http/alertmanager-route.ts).
 *
 * An alert is another source of the same episodes as the watch's polls: a firing alert opens
 * the gateway's episode, or joins the open one (src/monitor/episodes.ts `alertArrived`, stored
 * through the watch store like a poll, so the alert is in the episode's timeline); the episode
 * publisher shows it (the episode's message, the alert as a thread reply) and a full check is
 * queued into the episode's thread (INCIDENT_CHANNEL, or the watching channel, while there is
 * no message). A resolved alert is a reply in the same thread; only polls resolve an episode.
 *
 * Alertmanager retries a delivery it thinks failed and both members of an HA pair send the
 * same alert: each alert state (deliveryKey) is handled once, claimed with SET NX (released
 * again when handling it fails, so that Alertmanager's retry does the work), and the check's
 * request id is derived from the alert, so even a second claim could not queue a second check.
 */
import type { RedisConnection } from '../infra/redis.js';
import type { Inventory } from '../config/inventory.js';
import { logger } from '../infra/logger.js';
import { metrics } from '../metrics/registry.js';
import type { CheckJob, Origin } from '../queue/jobs.js';
import type { SlackMessageRef } from '../store/plan-store.js';
import type { EpisodePublisher } from '../worker/ports.js';
import { deliveryKey, gatewayOfAlert, type AlertmanagerAlert, type WebhookPayload } from './alertmanager.js';
import { episodeKindSchema, type AlertSignal, type EpisodeLevel } from './episodes.js';
import type { WatchList } from './watch-list.js';
import type { WatchStore } from './watch-store.js';

/** How long a delivery is remembered: longer than Alertmanager's retries and repeat_interval (4h). */
export const DELIVERY_TTL_SECONDS = 24 * 3600;

export interface AlertReceiverDeps {
  inventory: () => Inventory;
  redis: RedisConnection;
  prefix: string;
  watchStore: Pick<WatchStore, 'applyAlert' | 'episodeMessage'>;
  watchList: Pick<WatchList, 'get'>;
  publisher: EpisodePublisher;
  enqueueCheck: (job: CheckJob) => Promise<unknown>;
  /** Where checks go while the episode has no message (null: the watching channel, else nowhere in Slack). */
  incidentChannel: string | null;
}

export type AlertOutcome = 'accepted' | 'duplicate' | 'unknown_gateway';

export interface ReceivedAlert {
  fingerprint: string;
  alertname: string;
  status: AlertmanagerAlert['status'];
  outcome: AlertOutcome;
  gateway: string | null;
  /** The check queued for a firing alert (its BullMQ job id comes from this request id). */
  checkRequestId?: string;
}

/** The alert as an episode source: level from `severity`, kind from `kind` (the rule pack's labels). */
export function signalOf(alert: AlertmanagerAlert): AlertSignal {
  const level: EpisodeLevel = alert.labels['severity'] === 'critical' ? 'critical' : 'warning';
  const kind = episodeKindSchema.safeParse(alert.labels['kind']);
  return {
    name: alert.labels['alertname'] ?? 'alert',
    status: alert.status,
    at: alert.status === 'resolved' && !alert.endsAt.startsWith('0001-') ? alert.endsAt : alert.startsAt,
    level,
    kind: kind.success ? kind.data : 'utilisation',
    summary: alert.annotations['summary'] ?? alert.annotations['description'] ?? '',
  };
}

/** Stable per alert occurrence: the same alert delivered again is the same BullMQ job. */
export function checkRequestIdOf(alert: AlertmanagerAlert): string {
  const started = Date.parse(alert.startsAt);
  return `alert-${alert.fingerprint.replace(/[^A-Za-z0-9._-]/g, '_')}-${Number.isNaN(started) ? 0 : started}`;
}

export class AlertmanagerReceiver {
  constructor(private readonly deps: AlertReceiverDeps) {}

  /** Handles every alert of one delivery, in order. Throws when an alert could not be handled (answered 500: Alertmanager retries). */
  async receive(payload: WebhookPayload): Promise<ReceivedAlert[]> {
    const out: ReceivedAlert[] = [];
    for (const alert of payload.alerts) out.push(await this.receiveOne(alert));
    return out;
  }

  private async receiveOne(alert: AlertmanagerAlert): Promise<ReceivedAlert> {
    const alertname = alert.labels['alertname'] ?? 'alert';
    const base = { fingerprint: alert.fingerprint, alertname, status: alert.status };
    const gateway = gatewayOfAlert(alert, this.deps.inventory());
    if (!gateway) {
      metrics.alerts.inc({ status: alert.status, outcome: 'unknown_gateway' });
      logger.warn({ alertname, labels: alert.labels }, 'alert about no inventory gateway (no matching gateway label, host or alias): ignored');
      return { ...base, outcome: 'unknown_gateway', gateway: null };
    }
    const claim = `${this.deps.prefix}:alert-delivery:${deliveryKey(alert)}`;
    const claimed = await this.deps.redis.set(claim, new Date().toISOString(), 'EX', DELIVERY_TTL_SECONDS, 'NX');
    if (claimed === null) {
      metrics.alerts.inc({ status: alert.status, outcome: 'duplicate' });
      logger.info({ alertname, gateway, fingerprint: alert.fingerprint }, 'alert delivered again: already handled');
      return { ...base, outcome: 'duplicate', gateway };
    }
    try {
      const checkRequestId = await this.handle(gateway, alert);
      metrics.alerts.inc({ status: alert.status, outcome: 'accepted' });
      return { ...base, outcome: 'accepted', gateway, ...(checkRequestId ? { checkRequestId } : {}) };
    } catch (err) {
      await this.deps.redis.del(claim).catch(() => undefined);
      throw err;
    }
  }

  private async handle(gateway: string, alert: AlertmanagerAlert): Promise<string | null> {
    const transition = await this.deps.watchStore.applyAlert(gateway, signalOf(alert));
    const entry = await this.deps.watchList.get(gateway);
    let thread: SlackMessageRef | null = null;
    try {
      thread = await this.deps.publisher.publish({ gateway, events: transition.events, state: transition.state, entry });
    } catch (err) {
      // Showing it is best effort (as for polls): the episode and the alert are stored.
      logger.warn({ gateway, err: (err as Error).message }, 'episode publish of an alert failed');
    }
    if (alert.status !== 'firing') return null;
    const episodeId = transition.state.episode?.id;
    thread ??= episodeId ? await this.deps.watchStore.episodeMessage(episodeId) : null;
    const requestId = checkRequestIdOf(alert);
    await this.deps.enqueueCheck({ gateway, requestedBy: 'alertmanager', requestId, origin: this.originFor(thread, entry?.channel ?? null) });
    return requestId;
  }

  private originFor(thread: SlackMessageRef | null, watchingChannel: string | null): Origin {
    if (thread) return { kind: 'slack', channel: thread.channel, threadTs: thread.ts };
    const channel = this.deps.incidentChannel ?? watchingChannel;
    return channel ? { kind: 'slack', channel } : { kind: 'cli' };
  }
}
