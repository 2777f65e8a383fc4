/**
 * Prometheus metrics of the bot itself, observed where things happen (Slack commands,
 * decisions, jobs, Slack API errors, Alertmanager deliveries). The gateways' numbers are
 * read from Redis at scrape time instead (src/metrics/fleet.ts): polls run in workers,
 * possibly other processes than the one serving /metrics.
 *
 * Every name has the `conntrack_ops_` prefix, so that this endpoint and node_exporter's
 * (node_nf_conntrack_*) can be scraped side by side without two series of one name.
 */
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export const registry = new Registry();
collectDefaultMetrics({ register: registry });
// prom-client's defaults name three gauges `..._total`, which Prometheus reserves for counters
// (`promtool check metrics` flags them): not exported.
for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) registry.removeSingleMetric(name);

export const metrics = {
  commands: new Counter({ name: 'conntrack_ops_slack_commands_total', help: 'Slash commands received', labelNames: ['subcommand', 'outcome'], registers: [registry] }),
  ackSeconds: new Histogram({ name: 'conntrack_ops_slack_ack_seconds', help: 'Time from request to ack', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 3], registers: [registry] }),
  decisions: new Counter({ name: 'conntrack_ops_plan_decisions_total', help: 'Plan decisions', labelNames: ['decision', 'outcome'], registers: [registry] }),
  /** Observed by the worker that ran the job (completed or failed), per queue: check, apply, poll. */
  jobSeconds: new Histogram({
    name: 'conntrack_ops_job_duration_seconds',
    help: 'Time a job ran in a worker, from start to completion or failure',
    labelNames: ['queue', 'outcome'],
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
    registers: [registry],
  }),
  jobFailures: new Counter({ name: 'conntrack_ops_job_failures_total', help: 'Jobs that failed (each failed attempt)', labelNames: ['queue'], registers: [registry] }),
  /** Every Slack Web API call of the message writer that failed: the method and Slack's error code. */
  slackApiErrors: new Counter({ name: 'conntrack_ops_slack_api_errors_total', help: 'Slack Web API calls that failed', labelNames: ['method', 'error'], registers: [registry] }),
  /** Progress/result messages of an apply or roll back that could not be shown (best effort: the run goes on). */
  applyPublishFailures: new Counter({ name: 'conntrack_ops_apply_publish_failures_total', help: 'Apply / roll back messages that could not be published', labelNames: ['action', 'what'], registers: [registry] }),
  /** Alerts received on POST /alertmanager: accepted, duplicate (a retry or the HA peer) or unknown_gateway. */
  alerts: new Counter({ name: 'conntrack_ops_alertmanager_alerts_total', help: 'Alerts received from Alertmanager', labelNames: ['status', 'outcome'], registers: [registry] }),
  alertRequests: new Counter({ name: 'conntrack_ops_alertmanager_requests_total', help: 'Requests to POST /alertmanager by HTTP status', labelNames: ['code'], registers: [registry] }),
};
