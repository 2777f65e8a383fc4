/**
 * The NOTRACK rule model: one raw-table rule, and the rules a management-SSH or a
 * heavy-flow exemption consists of. The plan shows them, the apply adds / checks /
 * removes them and the sudo helper accepts only their shapes, all rendered by the templates in
 * gateway/commands.ts from these values.
 */
import { z } from 'zod';
import { NOTRACK_TAG, NOTRACK_TAGS } from './managed.js';

export const portSchema = z.number().int().min(1).max(65535);
export const addressFamilySchema = z.enum(['ipv4', 'ipv6']);
export type AddressFamily = z.infer<typeof addressFamilySchema>;
export const firewallBackendSchema = z.enum(['iptables', 'nft']);
export type FirewallBackend = z.infer<typeof firewallBackendSchema>;
export const notrackTagSchema = z.enum(NOTRACK_TAGS);

const IPV4_PREFIX = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}(\/([12]?\d|3[0-2]))?$/;
const IPV6_PREFIX = /^[0-9a-fA-F:]*:[0-9a-fA-F:.]*(\/(\d{1,2}|1[01]\d|12[0-8]))?$/;

/** The family of an address or prefix, or null when it is neither. */
export function addressFamily(address: string): AddressFamily | null {
  if (IPV4_PREFIX.test(address)) return 'ipv4';
  if (IPV6_PREFIX.test(address)) return 'ipv6';
  return null;
}

/** One raw-table NOTRACK rule (iptables chain names; nft chains are the lower-case twins). */
export const notrackRuleSchema = z
  .object({
    family: addressFamilySchema,
    chain: z.enum(['PREROUTING', 'OUTPUT']),
    saddr: z.string().optional(),
    daddr: z.string().optional(),
    proto: z.literal('tcp').optional(),
    sport: portSchema.optional(),
    dport: portSchema.optional(),
    tag: notrackTagSchema,
  })
  .superRefine((r, ctx) => {
    for (const k of ['saddr', 'daddr'] as const) {
      const v = r[k];
      if (v !== undefined && addressFamily(v) !== r.family) ctx.addIssue({ code: 'custom', path: [k], message: `${v} is not an ${r.family} address or prefix` });
    }
    if ((r.sport !== undefined || r.dport !== undefined) && r.proto === undefined) {
      ctx.addIssue({ code: 'custom', path: ['proto'], message: 'ports need proto tcp' });
    }
  });
export type NotrackRule = z.infer<typeof notrackRuleSchema>;

export interface ManagementExemption {
  family: AddressFamily;
  /** Where the operators' SSH comes from. */
  source: string;
  /** The gateway's sshd port. */
  port: number;
}

/** Management SSH: arriving from the source to the sshd port, and the replies. */
export function managementRules(e: ManagementExemption): NotrackRule[] {
  const tag = NOTRACK_TAG.management;
  return [
    notrackRuleSchema.parse({ family: e.family, chain: 'PREROUTING', saddr: e.source, proto: 'tcp', dport: e.port, tag }),
    notrackRuleSchema.parse({ family: e.family, chain: 'OUTPUT', daddr: e.source, proto: 'tcp', sport: e.port, tag }),
  ];
}

export interface FlowExemption {
  family: AddressFamily;
  source: string;
  destination: string;
}

/** A heavy flow that is not NATed: both directions, arriving and locally generated packets. */
export function flowRules(e: FlowExemption): NotrackRule[] {
  const tag = NOTRACK_TAG.flow;
  return (['PREROUTING', 'OUTPUT'] as const).flatMap((chain) => [
    notrackRuleSchema.parse({ family: e.family, chain, saddr: e.source, daddr: e.destination, tag }),
    notrackRuleSchema.parse({ family: e.family, chain, saddr: e.destination, daddr: e.source, tag }),
  ]);
}
