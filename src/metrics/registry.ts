/**
 * Prometheus metrics of the bot itself (/metrics). Gateway metrics follow node_exporter's
 * names (node_nf_conntrack_entries, node_nf_conntrack_entries_limit) so dashboards match.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export const registry = new Registry();
collectDefaultMetrics({ register: registry });

export const metrics = {
  commands: new Counter({ name: 'conntrack_ops_slack_commands_total', help: 'Slash commands received', labelNames: ['subcommand', 'outcome'], registers: [registry] }),
  ackSeconds: new Histogram({ name: 'conntrack_ops_slack_ack_seconds', help: 'Time from request to ack', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 3], registers: [registry] }),
  decisions: new Counter({ name: 'conntrack_ops_plan_decisions_total', help: 'Plan decisions', labelNames: ['decision', 'outcome'], registers: [registry] }),
  entries: new Gauge({ name: 'node_nf_conntrack_entries', help: 'Conntrack entries at the last check', labelNames: ['gateway'], registers: [registry] }),
  limit: new Gauge({ name: 'node_nf_conntrack_entries_limit', help: 'nf_conntrack_max at the last check', labelNames: ['gateway'], registers: [registry] }),
};
