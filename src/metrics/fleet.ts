/**
 * The watched gateways and the queues, read from Redis when Prometheus scrapes: polls run in
 * worker processes, so the state in Redis (src/monitor/watch-store.ts), not this process's
 * memory, is the truth. One Redis read per gateway per scrape, shared by every series.
 *
 * The drop / early_drop / insert_failed series are the gateway's cumulative kernel counters
 * (summed over CPUs) as read by the last poll, exported as GAUGES, like node_exporter does:
 * a Prometheus counter must only go up for the life of the process exposing it, and these
 * go down whenever the gateway reboots, while this process keeps running. rate() and
 * increase() take any decrease for a reset, so they work on these gauges as on counters
 * (the rule pack does exactly that with node_exporter's). Without a `_total` suffix, as
 * Prometheus' naming conventions want for anything not typed counter.
 */
import { Gauge, Registry } from 'prom-client';
import type { WatchState } from '../monitor/episodes.js';
import type { WatchList } from '../monitor/watch-list.js';
import type { WatchStore } from '../monitor/watch-store.js';
import type { Queues } from '../queue/producer.js';

export interface FleetSource {
  watchList: Pick<WatchList, 'all'>;
  watchStore: Pick<WatchStore, 'state'>;
  queues: Pick<Queues, 'check' | 'apply' | 'poll'>;
}

const JOB_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'failed'] as const;

type GatewayValue = (s: WatchState) => number | null;

/** A per-gateway gauge, set at scrape time from each watched gateway's state. */
interface GatewaySeries {
  name: string;
  help: string;
  value: GatewayValue;
}

const GATEWAY_SERIES: GatewaySeries[] = [
  { name: 'conntrack_ops_nf_conntrack_entries', help: 'Conntrack entries at the last successful poll', value: (s) => s.lastSample?.count ?? null },
  { name: 'conntrack_ops_nf_conntrack_entries_limit', help: 'nf_conntrack_max at the last successful poll', value: (s) => s.lastSample?.max ?? null },
  { name: 'conntrack_ops_nf_conntrack_stat_drop', help: 'Cumulative conntrack drop counter (sum over CPUs) at the last successful poll; resets when the gateway reboots', value: (s) => s.lastSample?.stats.drop ?? null },
  { name: 'conntrack_ops_nf_conntrack_stat_early_drop', help: 'Cumulative conntrack early_drop counter (sum over CPUs) at the last successful poll; resets when the gateway reboots', value: (s) => s.lastSample?.stats.earlyDrop ?? null },
  { name: 'conntrack_ops_nf_conntrack_stat_insert_failed', help: 'Cumulative conntrack insert_failed counter (sum over CPUs) at the last successful poll; resets when the gateway reboots', value: (s) => s.lastSample?.stats.insertFailed ?? null },
  { name: 'conntrack_ops_last_poll_timestamp_seconds', help: 'Unix time of the last poll of the gateway, successful or not', value: (s) => lastPollSeconds(s) },
  { name: 'conntrack_ops_last_poll_success', help: '1 when the last poll of the gateway succeeded, 0 when it failed', value: (s) => (lastPollSeconds(s) === null ? null : s.pollFailing ? 0 : 1) },
];

function lastPollSeconds(s: WatchState): number | null {
  const at = s.lastPollAt ?? s.lastSample?.at ?? null;
  return at === null ? null : Date.parse(at) / 1000;
}

/** Reads each watched gateway's state once per scrape, whichever series asks first. */
function sharedRead(source: FleetSource): () => Promise<WatchState[]> {
  let pending: Promise<WatchState[]> | null = null;
  return () => {
    if (!pending) {
      pending = (async () => Promise.all((await source.watchList.all()).map((e) => source.watchStore.state(e.gateway))))();
      // every series of one scrape is collected in the same turn; the next scrape reads again
      const clear = () => {
        pending = null;
      };
      pending.then(clear, clear);
    }
    return pending;
  };
}

/** A registry of the fleet's series, collected from Redis at scrape time. */
export function fleetRegistry(source: FleetSource): Registry {
  const registry = new Registry();
  const states = sharedRead(source);
  for (const series of GATEWAY_SERIES) {
    new Gauge({
      name: series.name,
      help: series.help,
      labelNames: ['gateway'],
      registers: [registry],
      async collect() {
        this.reset();
        for (const s of await states()) {
          const v = series.value(s);
          if (v !== null) this.set({ gateway: s.gateway }, v);
        }
      },
    });
  }
  new Gauge({
    name: 'conntrack_ops_open_episodes',
    help: 'Open episodes per gateway, by level and kind (1 while open)',
    labelNames: ['gateway', 'level', 'kind'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const s of await states()) {
        const e = s.episode;
        if (e?.status === 'open') this.set({ gateway: s.gateway, level: e.level, kind: e.kind }, 1);
      }
    },
  });
  new Gauge({
    name: 'conntrack_ops_queue_jobs',
    help: 'Jobs in each queue by state (BullMQ getJobCounts at scrape time)',
    labelNames: ['queue', 'state'],
    registers: [registry],
    async collect() {
      this.reset();
      const queues = { check: source.queues.check, apply: source.queues.apply, poll: source.queues.poll };
      for (const [name, queue] of Object.entries(queues)) {
        const counts = await queue.getJobCounts(...JOB_STATES);
        for (const state of JOB_STATES) this.set({ queue: name, state }, counts[state] ?? 0);
      }
    },
  });
  return registry;
}
