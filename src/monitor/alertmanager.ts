/**
 * Alertmanager's webhook (payload version 4), validated, and each alert mapped to an
 * inventory gateway: the `gateway` label, else the `instance` label's host (or host:port)
 * matched against each gateway's `host` and `aliases`.
 */
import { z } from 'zod';
import type { Inventory } from '../config/inventory.js';

const labelsSchema = z.record(z.string(), z.string());

export const alertSchema = z.object({
  status: z.enum(['firing', 'resolved']),
  labels: labelsSchema,
  annotations: labelsSchema.default({}),
  startsAt: z.string(),
  endsAt: z.string(),
  generatorURL: z.string().default(''),
  fingerprint: z.string().min(1).max(64),
});
export type AlertmanagerAlert = z.infer<typeof alertSchema>;

export const webhookPayloadSchema = z.object({
  version: z.literal('4'),
  groupKey: z.string(),
  truncatedAlerts: z.number().int().nonnegative().default(0),
  status: z.enum(['firing', 'resolved']),
  receiver: z.string(),
  groupLabels: labelsSchema,
  commonLabels: labelsSchema,
  commonAnnotations: labelsSchema,
  externalURL: z.string(),
  alerts: z.array(alertSchema).max(1000),
});
export type WebhookPayload = z.infer<typeof webhookPayloadSchema>;

/** `host`, `host:port`, `[v6]:port` -> host. */
export function hostOfInstance(instance: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(instance);
  if (bracketed) return bracketed[1]!;
  const colons = instance.split(':').length - 1;
  if (colons === 1) return instance.slice(0, instance.indexOf(':'));
  return instance; // a bare host, or a bare IPv6 address
}

/** The inventory gateway an alert is about, or null (answered 200, counted and logged by the receiver). */
export function gatewayOfAlert(alert: AlertmanagerAlert, inventory: Inventory): string | null {
  const named = alert.labels['gateway'];
  if (named !== undefined) return Object.hasOwn(inventory.gateways, named) ? named : null;
  const instance = alert.labels['instance'];
  if (instance === undefined) return null;
  const host = hostOfInstance(instance).toLowerCase();
  for (const [name, gw] of Object.entries(inventory.gateways)) {
    const names = [gw.host, ...gw.aliases].map((h) => h.toLowerCase());
    if (names.includes(host) || names.includes(instance.toLowerCase())) return name;
  }
  return null;
}

/** One delivery of one alert state: Alertmanager retries and HA pairs send the same key again. */
export function deliveryKey(alert: AlertmanagerAlert): string {
  return `${alert.fingerprint}:${alert.status}:${alert.startsAt}`;
}
