import { describe, expect, it } from 'vitest';
import { parseInventory } from '../../src/config/inventory.js';
import { deliveryKey, gatewayOfAlert, hostOfInstance, webhookPayloadSchema } from '../../src/monitor/alertmanager.js';

const KEY = 'SHA256:ic9+NvPvYbG8dlJBJUBOAsNcui4WkSOOwedwmWRpo6g';
const inventory = parseInventory(`
gateways:
  gw-3: { host: 198.19.1.2, user: root, identityFile: /k, hostKey: "${KEY}", aliases: [gw3.example.net] }
  gw-4: { host: gw4.example.net, user: root, identityFile: /k, hostKey: "${KEY}" }
`);

/** As Alertmanager 0.25 sends it (recorded shape: no notification_reason, endsAt zero while firing). */
function payload(alerts: object[]): unknown {
  return {
    version: '4',
    groupKey: '{}/{alertname=~"Conntrack.*"}:{alertname="ConntrackTableSaturated", instance="198.19.1.2:9100"}',
    truncatedAlerts: 0,
    status: 'firing',
    receiver: 'conntrack-ops',
    groupLabels: { alertname: 'ConntrackTableSaturated', instance: '198.19.1.2:9100' },
    commonLabels: { alertname: 'ConntrackTableSaturated', severity: 'critical' },
    commonAnnotations: {},
    externalURL: 'http://127.0.0.1:9093',
    alerts,
  };
}

function alert(labels: Record<string, string>, status: 'firing' | 'resolved' = 'firing') {
  return {
    status,
    labels: { alertname: 'ConntrackTableSaturated', severity: 'critical', ...labels },
    annotations: { summary: 'conntrack table at 97%' },
    startsAt: '2026-12-04T10:00:00.000Z',
    endsAt: '0001-01-01T00:00:00Z',
    generatorURL: 'http://prometheus/graph',
    fingerprint: 'c3a4b5d6e7f80912',
  };
}

describe('Alertmanager webhook payload', () => {
  it('accepts a v4 payload and rejects another version or a missing fingerprint', () => {
    expect(webhookPayloadSchema.safeParse(payload([alert({ instance: '198.19.1.2:9100' })])).success).toBe(true);
    expect(webhookPayloadSchema.safeParse({ ...(payload([]) as object), version: '3' }).success).toBe(false);
    const { fingerprint: _f, ...noFp } = alert({});
    expect(webhookPayloadSchema.safeParse(payload([noFp])).success).toBe(false);
  });

  it('maps an alert to a gateway by the gateway label, else by instance host or host:port against host and aliases', () => {
    const parse = (labels: Record<string, string>) => webhookPayloadSchema.parse(payload([alert(labels)])).alerts[0]!;
    expect(gatewayOfAlert(parse({ gateway: 'gw-4', instance: '198.19.1.2:9100' }), inventory)).toBe('gw-4');
    expect(gatewayOfAlert(parse({ instance: '198.19.1.2:9100' }), inventory)).toBe('gw-3');
    expect(gatewayOfAlert(parse({ instance: 'GW3.example.net:9100' }), inventory)).toBe('gw-3');
    expect(gatewayOfAlert(parse({ instance: 'gw4.example.net' }), inventory)).toBe('gw-4');
    expect(gatewayOfAlert(parse({ instance: '203.0.113.9:9100' }), inventory)).toBeNull();
    expect(gatewayOfAlert(parse({ gateway: 'gw-99' }), inventory)).toBeNull();
    expect(gatewayOfAlert(parse({}), inventory)).toBeNull();
  });

  it('reads hosts out of instance labels', () => {
    expect(hostOfInstance('198.19.1.2:9100')).toBe('198.19.1.2');
    expect(hostOfInstance('[2001:db8::1]:9100')).toBe('2001:db8::1');
    expect(hostOfInstance('2001:db8::1')).toBe('2001:db8::1');
    expect(hostOfInstance('gw-3')).toBe('gw-3');
  });

  it('the same alert delivered twice has one delivery key; its resolution another', () => {
    const a = webhookPayloadSchema.parse(payload([alert({ instance: 'x' })])).alerts[0]!;
    const b = webhookPayloadSchema.parse(payload([alert({ instance: 'x' })])).alerts[0]!;
    const r = webhookPayloadSchema.parse(payload([alert({ instance: 'x' }, 'resolved')])).alerts[0]!;
    expect(deliveryKey(a)).toBe(deliveryKey(b));
    expect(deliveryKey(r)).not.toBe(deliveryKey(a));
  });
});
