/**
 * The domain model shared by every stage of the data path:
 *   gateway facts (collected over SSH) -> table summary (streamed aggregate)
 *   -> findings -> plan -> check report.
 * Everything that crosses a process boundary (Redis, JSON output, Slack button
 * payloads) is a zod schema so it is validated when it is read back.
 */
import { z } from 'zod';
import { MANAGED_FILES, NOTRACK_TAG } from './managed.js';
import { addressFamily, addressFamilySchema, firewallBackendSchema, portSchema } from './notrack.js';

/** One conntrack entry, parsed from a `conntrack -L` or `/proc/net/nf_conntrack` line. */
export interface Tuple {
  src: string;
  dst: string;
  /** TCP/UDP/SCTP/DCCP ports; undefined for ICMP and other port-less protocols. */
  sport?: number;
  dport?: number;
}

export interface ConntrackEntry {
  /** 'ipv4' | 'ipv6' when known (the /proc format says so; conntrack -L infers from addresses). */
  family: 'ipv4' | 'ipv6';
  proto: string;
  protoNum: number;
  /** Seconds left before the entry expires. */
  timeout: number;
  /** Protocol state (TCP: ESTABLISHED, TIME_WAIT...; SCTP/DCCP also have one; UDP/ICMP have none). */
  state?: string;
  orig: Tuple;
  reply: Tuple;
  unreplied: boolean;
  assured: boolean;
  /**
   * Owned by a flowtable (`[OFFLOAD]` software, `[HW_OFFLOAD]` hardware): the kernel prints no
   * timeout (timeout is 0 here, meaningless) and no state, and keeps the entry alive itself.
   */
  offload?: 'software' | 'hardware' | undefined;
  mark?: number;
  zone?: number;
}

/** Sysctl keys read from the gateway (subset; values kept as integers). */
export const TIMEOUT_KEYS = [
  'nf_conntrack_tcp_timeout_established',
  'nf_conntrack_tcp_timeout_time_wait',
  'nf_conntrack_tcp_timeout_close_wait',
  'nf_conntrack_tcp_timeout_fin_wait',
  'nf_conntrack_tcp_timeout_syn_sent',
  'nf_conntrack_tcp_timeout_syn_recv',
  'nf_conntrack_tcp_timeout_last_ack',
  'nf_conntrack_tcp_timeout_close',
  'nf_conntrack_tcp_timeout_unacknowledged',
  'nf_conntrack_udp_timeout',
  'nf_conntrack_udp_timeout_stream',
  'nf_conntrack_icmp_timeout',
  'nf_conntrack_generic_timeout',
] as const;
export type TimeoutKey = (typeof TIMEOUT_KEYS)[number];
/** The timeout idle ESTABLISHED entries live by (the one the plan lowers, and deletes against). */
export const ESTABLISHED_TIMEOUT_KEY = 'nf_conntrack_tcp_timeout_established' satisfies TimeoutKey;

/** sysctl keys conntrack-ops may read or write (net.netfilter.<key>). */
export const netfilterKeySchema = z.string().regex(/^nf_conntrack_[a-z0-9_]{1,60}$/, 'not a nf_conntrack sysctl key');

export const conntrackStatsSchema = z.object({
  found: z.number(),
  invalid: z.number(),
  insert: z.number(),
  insert_failed: z.number(),
  drop: z.number(),
  early_drop: z.number(),
  error: z.number(),
  search_restart: z.number(),
  clash_resolve: z.number(),
  chaintoolong: z.number(),
});
export type ConntrackStats = z.infer<typeof conntrackStatsSchema>;

export const kernelLogEventSchema = z.object({
  /** ISO timestamp (from `dmesg --time-format iso`), or null when the log has no wall clock. */
  at: z.string().nullable(),
  /** 'expect-full': "nf_conntrack: expectation table full" (nf_conntrack_expect_max), not the conntrack table. */
  kind: z.enum(['table-full', 'expect-full', 'suppressed', 'other']),
  /** Network namespace inode when the kernel names it ("table full in netns 4026532177"). */
  netns: z.number().nullable(),
  /** For "net_ratelimit: N callbacks suppressed". */
  suppressed: z.number().nullable(),
  line: z.string(),
});
export type KernelLogEvent = z.infer<typeof kernelLogEventSchema>;

export const natRuleSchema = z.object({
  backend: z.enum(['iptables', 'nft']),
  /** Address family the rule applies to (iptables vs ip6tables, nft table family); absent when unknown (nft inet). */
  family: z.enum(['ipv4', 'ipv6']).optional(),
  /** Source NAT (masquerade, snat) or destination NAT (dnat: read from nft only). */
  kind: z.enum(['masquerade', 'snat', 'dnat']),
  /** Outgoing interface, when the rule names one. */
  outInterface: z.string().nullable(),
  /** SNAT / DNAT target addresses (a pool may be a range "a-b"); empty for MASQUERADE. */
  toAddresses: z.array(z.string()),
  rule: z.string(),
});
export type NatRule = z.infer<typeof natRuleSchema>;

/** Everything the read-only collectors learn about a gateway, except the table itself. */
export const gatewayFactsSchema = z.object({
  collectedAt: z.string(),
  kernelRelease: z.string(),
  /** This shell's network namespace inode, to filter the kernel log (shared by all namespaces). */
  netnsInode: z.number().nullable(),
  /**
   * When this (non-initial) network namespace was created, per its nsfs inode's ctime, which
   * is stable while the namespace is pinned by a bind mount (ip netns, container runtimes).
   * Null for the initial namespace or when unknown. Kernel-log lines older than this cannot
   * be about this namespace (its inode may have belonged to an earlier one).
   */
  netnsSince: z.string().nullable().default(null),
  count: z.number(),
  max: z.number(),
  buckets: z.number(),
  /** Value of /sys/module/nf_conntrack/parameters/hashsize (same as buckets on modern kernels). */
  hashsize: z.number().nullable(),
  expectMax: z.number().nullable(),
  timeouts: z.record(z.string(), z.number()),
  stats: conntrackStatsSchema,
  /** Keys (short sysctl names, and 'hashsize') and whether this session can write them. */
  writable: z.record(z.string(), z.boolean()),
  memTotalKb: z.number(),
  memAvailableKb: z.number(),
  /** Object size of one conntrack entry from /proc/slabinfo (nf_conntrack), when readable. */
  entrySlabBytes: z.number().nullable(),
  localPortRange: z.tuple([z.number(), z.number()]),
  natRules: z.array(natRuleSchema),
  /** Addresses on the interfaces MASQUERADE rules leave through (or all global addresses). */
  externalAddresses: z.array(z.string()),
  firewallBackend: z.enum(['iptables', 'nft', 'none']),
  kernelLog: z.array(kernelLogEventSchema),
  persistence: z.object({
    /** sysctl.d files that set a nf_conntrack key, with the keys they set. */
    sysctlFiles: z.array(z.object({ path: z.string(), keys: z.record(z.string(), z.string()) })),
    /** modprobe.d files with `options nf_conntrack hashsize=`. */
    modprobeFiles: z.array(z.object({ path: z.string(), hashsize: z.number().nullable() })),
  }),
  /** Whether the conntrack tool exists (else the table came from /proc/net/nf_conntrack). */
  hasConntrackTool: z.boolean(),
  /** Existing NOTRACK rules for management SSH (iptables raw / nft notrack) tagged by us. */
  managedNotrackRules: z.array(z.string()),
});
export type GatewayFacts = z.infer<typeof gatewayFactsSchema>;

const countedSchema = z.object({ key: z.string(), count: z.number() });
export type Counted = z.infer<typeof countedSchema>;

/** The streamed aggregate of one table dump. Memory is bounded whatever the table size. */
export const tableSummarySchema = z.object({
  entries: z.number(),
  /** Lines that could not be parsed (kept to a small sample). */
  unparsed: z.number(),
  unparsedSample: z.array(z.string()),
  byProto: z.record(z.string(), z.number()),
  /** "tcp ESTABLISHED" -> n, "udp" -> n (UDP/ICMP have no state). */
  states: z.record(z.string(), z.number()),
  assured: z.number(),
  unreplied: z.number(),
  /**
   * Entries offloaded to a flowtable ([OFFLOAD] / [HW_OFFLOAD]): counted like the others (their
   * NAT addresses and ports included) but with no timeout and no state to judge; `hardware` of them in hardware.
   */
  offloaded: z.object({ total: z.number(), hardware: z.number() }).optional(),
  topSources: z.array(countedSchema),
  topDestinations: z.array(countedSchema),
  /** Top (NAT source ip, destination ip, destination port, proto) keys: the tuples that share one port space. */
  topPortUse: z.array(
    z.object({
      natSource: z.string(),
      dst: z.string(),
      dport: z.number(),
      proto: z.string(),
      count: z.number(),
    }),
  ),
  /**
   * Optional per-source breakdown for the top sources (heavy-hitter detail and
   * the NOTRACK safety check). Aggregators that do not compute it leave it out.
   */
  sourceProfiles: z
    .array(
      z.object({
        /** Original-direction source address (same key as in topSources). */
        source: z.string(),
        count: z.number(),
        /** Same keys as `states`: "tcp ESTABLISHED" -> n, "udp" -> n. */
        states: z.record(z.string(), z.number()),
        /** Top destination addresses of this source (address only, no port). */
        topDestinations: z.array(countedSchema),
        /**
         * Entries of this source whose reply tuple shows address translation
         * (reply.dst != orig.src or reply.src != orig.dst): NATed traffic must never be NOTRACKed.
         */
        natted: z.number(),
      }),
    )
    .optional(),
  /** True when a top-k list is approximate because distinct keys exceeded the tracker's capacity. */
  approximate: z.boolean(),
  /**
   * For TCP ESTABLISHED entries: how many have been idle at least N seconds
   * (idle = established timeout - remaining timeout), for the thresholds analysed.
   */
  establishedIdle: z.object({
    timeoutUsed: z.number(),
    total: z.number(),
    idleAtLeast: z.record(z.string(), z.number()),
    /**
     * Per threshold t: entries idle >= t with more than t left, i.e. what deleting idle entries
     * after lowering the timeout to t removes now (the rest of idleAtLeast expires within t).
     */
    deletable: z.record(z.string(), z.number()).optional(),
    /**
     * ESTABLISHED entries whose remaining timeout exceeds timeoutUsed: created under a
     * longer timeout (e.g. before it was lowered) and idle at least since the change;
     * their idle time is unknown, so they are in no idleAtLeast bucket.
     */
    aboveTimeout: z.number().optional(),
    /**
     * ESTABLISHED entries with no more than `shortTimerSeconds` left: the kernel puts an entry
     * with unacknowledged data, too many retransmissions or a zero window on that short timer
     * (nf_conntrack_tcp_timeout_unacknowledged / _max_retrans), so these are likely active;
     * in no idleAtLeast bucket.
     */
    shortTimer: z.number().optional(),
    shortTimerSeconds: z.number().optional(),
  }),
  durationMs: z.number(),
});
export type TableSummary = z.infer<typeof tableSummarySchema>;

/** Severities, worst first: the one order every list of findings is sorted by. */
export const SEVERITIES = ['critical', 'warning', 'info', 'ok'] as const;
export const severitySchema = z.enum(SEVERITIES);
export type Severity = z.infer<typeof severitySchema>;

/** Critical or a warning: something to act on (info and ok are not). */
export function isSerious(severity: Severity): boolean {
  return severityRank(severity) <= severityRank('warning');
}

/** 0 for the worst severity; anything unknown ranks after 'ok'. */
export function severityRank(severity: string): number {
  const i = (SEVERITIES as readonly string[]).indexOf(severity);
  return i < 0 ? SEVERITIES.length : i;
}

export const FINDING_IDS = [
  'table-saturated',
  'table-high',
  'drops-observed',
  'heavy-hitter',
  'timewait-pile',
  'established-timeout-long',
  'hashsize-ratio',
  'port-exhaustion-risk',
  'not-persistent',
  'max-readonly',
  'management-ssh-tracked',
  'table-healthy',
] as const;
export const findingIdSchema = z.enum(FINDING_IDS);
export type FindingId = z.infer<typeof findingIdSchema>;

export const findingSchema = z.object({
  id: findingIdSchema,
  severity: severitySchema,
  title: z.string(),
  /** Numbers and facts behind the finding, label -> value. */
  evidence: z.record(z.string(), z.union([z.number(), z.string()])),
  /** One or two sentences of explanation / advice. */
  detail: z.string().optional(),
});
export type Finding = z.infer<typeof findingSchema>;

/** What a plan step does on the gateway; each kind has one module in src/apply/steps. */
export const PLAN_STEP_KINDS = [
  'sysctl',
  'hashsize',
  'persist-sysctl',
  'persist-modprobe',
  'notrack-management',
  'notrack-flow',
  'delete-idle-entries',
] as const;
export const planStepKindSchema = z.enum(PLAN_STEP_KINDS);
export type PlanStepKind = z.infer<typeof planStepKindSchema>;

/**
 * What every step has. key / current / proposed are display strings for people (the
 * `--json` output, Slack, the terminal); what the apply acts on is the kind's typed params.
 */
const stepCommon = {
  id: z.string(),
  /** sysctl short name (nf_conntrack_max), 'hashsize', a file path, or a rule description. */
  key: z.string(),
  current: z.string(),
  proposed: z.string(),
  why: z.string(),
  writable: z.boolean(),
  /** When not writable: where the change must be made instead. */
  whereToChange: z.string().optional(),
  /** Steps that are offered but not part of the default approval (e.g. NOTRACK, deletes). */
  optional: z.boolean(),
};

const sysctlValueSchema = z.number().int().min(0).max(2 ** 31 - 1);
const countSchema = z.number().int().min(0);
/** Hash sizes the kernel accepts and the bot proposes. */
export const hashsizeValueSchema = z.number().int().min(1024).max(2 ** 26);

/** One netfilter sysctl set to a value (key: its short name, which the command templates validate). */
export const sysctlStepSchema = z.object({
  ...stepCommon,
  kind: z.literal('sysctl'),
  params: z.strictObject({
    /** The value to set. */
    value: sysctlValueSchema,
    /** The value the plan was computed with (drift check before the apply). */
    current: sysctlValueSchema,
    // Numbers behind the proposal (nf_conntrack_max sizing, timeout effects), for people.
    observedNeed: countSchema.optional(),
    target: countSchema.optional(),
    memoryCap: countSchema.optional(),
    entryBytes: countSchema.optional(),
    bucketBytes: countSchema.optional(),
    tableBytes: countSchema.optional(),
    memoryBudgetBytes: countSchema.optional(),
    freedNow: countSchema.optional(),
    atRisk: countSchema.optional(),
    countAfter: countSchema.optional(),
    expectedAfter: countSchema.optional(),
    freed: z.number().int().optional(),
  }),
});

/** The number of hash buckets, raised through the module parameter. */
export const hashsizeStepSchema = z.object({
  ...stepCommon,
  kind: z.literal('hashsize'),
  params: z.strictObject({
    value: hashsizeValueSchema,
    /** Buckets when the plan was computed (drift check). */
    current: countSchema,
    /** Where the value is written: the module parameter, or the buckets sysctl. */
    via: z.string(),
  }),
});

/** The managed sysctl.d file: these values, loaded with `sysctl -p` of that file only. */
export const persistSysctlStepSchema = z.object({
  ...stepCommon,
  kind: z.literal('persist-sysctl'),
  params: z.strictObject({
    path: z.literal(MANAGED_FILES.sysctl),
    /** Short key -> value, the lines of the file. */
    values: z.record(netfilterKeySchema, sysctlValueSchema).refine((v) => Object.keys(v).length > 0, 'no value to persist'),
    /** The file as shown to people (the apply writes it from `values`, with the plan id). */
    content: z.string(),
    keys: z.string(),
    /** Other files that would override ours at boot. */
    conflicts: z.string().optional(),
  }),
});

/** The managed modprobe.d file: `options nf_conntrack hashsize=<n>`. */
export const persistModprobeStepSchema = z.object({
  ...stepCommon,
  kind: z.literal('persist-modprobe'),
  params: z.strictObject({
    path: z.literal(MANAGED_FILES.modprobe),
    hashsize: hashsizeValueSchema,
    content: z.string(),
  }),
});

/** Rendered rules and nft setup, for people reading the plan (the apply rebuilds them from the values). */
const notrackDisplay = {
  setup: z.string().optional(),
  table: z.string().optional(),
};

/** Addresses of a NOTRACK step must be of its family (the rule templates refuse anything else). */
function addressesOfFamily(family: 'ipv4' | 'ipv6', addresses: readonly string[], ctx: z.core.$RefinementCtx): void {
  for (const a of addresses) {
    if (addressFamily(a) !== family) ctx.addIssue({ code: 'custom', message: `${a} is not an ${family} address or prefix` });
  }
}

/** NOTRACK for management SSH (source -> the gateway's sshd port, and the replies). */
export const notrackManagementStepSchema = z.object({
  ...stepCommon,
  kind: z.literal('notrack-management'),
  params: z
    .strictObject({
      backend: firewallBackendSchema,
      family: addressFamilySchema,
      source: z.string(),
      port: portSchema,
      tag: z.literal(NOTRACK_TAG.management),
      ruleIn: z.string().optional(),
      ruleOut: z.string().optional(),
      ...notrackDisplay,
    })
    .superRefine((p, ctx) => addressesOfFamily(p.family, [p.source], ctx)),
});

/** NOTRACK for a heavy flow that is not NATed (both directions). */
export const notrackFlowStepSchema = z.object({
  ...stepCommon,
  kind: z.literal('notrack-flow'),
  params: z
    .strictObject({
      backend: firewallBackendSchema,
      family: addressFamilySchema,
      source: z.string(),
      destination: z.string(),
      tag: z.literal(NOTRACK_TAG.flow),
      rules: z.string().optional(),
      ...notrackDisplay,
    })
    .superRefine((p, ctx) => addressesOfFamily(p.family, [p.source, p.destination], ctx)),
});

/** Delete ESTABLISHED TCP entries idle longer than the new timeout, by exact tuple. */
export const deleteIdleStepSchema = z.object({
  ...stepCommon,
  kind: z.literal('delete-idle-entries'),
  params: z.strictObject({
    proto: z.literal('tcp'),
    state: z.literal('ESTABLISHED'),
    /** The new ESTABLISHED timeout: entries silent longer than this go. */
    idleAtLeastSeconds: z.number().int().min(1),
    /** The ESTABLISHED timeout idle times were computed with. */
    timeoutUsed: z.number().int().min(1),
    remainingAtMost: countSchema,
    /** Entries the check found (selected again at apply time). */
    expected: countSchema,
  }),
});

/**
 * Plans stored (up to 14 days, for a roll back) before params were typed per kind lack
 * a few params their display text carried: filled in here, once, when such a plan is
 * read back. Plans written now have them and pass through unchanged.
 */
const LEGACY_PARAMS: Partial<Record<PlanStepKind, (step: Record<string, unknown>, params: Record<string, unknown>) => Record<string, unknown>>> = {
  sysctl: (step, params) => ({ current: integerText(step['current']), ...params }),
  hashsize: (step, params) => ({ current: integerText(step['current']), ...params }),
  'persist-sysctl': (_step, params) => ({ values: sysctlLines(params['content']), ...params }),
};

function integerText(value: unknown): number | undefined {
  return typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : undefined;
}

/** `net.netfilter.<key> = <n>` lines of a sysctl.d text (anything else is left to the schema to refuse). */
function sysctlLines(content: unknown): Record<string, number> | undefined {
  if (typeof content !== 'string') return undefined;
  const values: Record<string, number> = {};
  for (const m of content.matchAll(/^net\.netfilter\.(nf_conntrack_[a-z0-9_]+)\s*=\s*(\d+)\s*$/gm)) values[m[1]!] = Number(m[2]);
  return values;
}

function upgradeStoredStep(raw: unknown): unknown {
  if (typeof raw !== 'object' || raw === null) return raw;
  const step = raw as Record<string, unknown>;
  const kind = planStepKindSchema.safeParse(step['kind']);
  const params = step['params'];
  const upgrade = kind.success ? LEGACY_PARAMS[kind.data] : undefined;
  if (!upgrade || typeof params !== 'object' || params === null) return raw;
  return { ...step, params: upgrade(step, params as Record<string, unknown>) };
}

const planStepUnion = z.discriminatedUnion('kind', [
  sysctlStepSchema,
  hashsizeStepSchema,
  persistSysctlStepSchema,
  persistModprobeStepSchema,
  notrackManagementStepSchema,
  notrackFlowStepSchema,
  deleteIdleStepSchema,
]);
export const planStepSchema = z.preprocess(upgradeStoredStep, planStepUnion);
export type PlanStep = z.infer<typeof planStepSchema>;
export type PlanStepOf<K extends PlanStepKind> = Extract<PlanStep, { kind: K }>;

// Every kind has a schema and every schema is a kind (a compile error otherwise).
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const kindsMatch: Same<PlanStep['kind'], PlanStepKind> = true;
void kindsMatch;

/** The optional steps an approver may choose (and nothing else may be chosen): optional and writable here. */
export function approvableOptionalSteps(steps: readonly PlanStep[]): PlanStep[] {
  return steps.filter((s) => s.optional && s.writable);
}

export const planSchema = z.object({
  steps: z.array(planStepSchema),
  /** Assumptions stated to the user (e.g. the per-entry memory cost used). */
  notes: z.array(z.string()),
});
export type Plan = z.infer<typeof planSchema>;

export const checkReportSchema = z.object({
  gateway: z.string(),
  checkedAt: z.string(),
  conntrack: z.object({ count: z.number(), max: z.number(), buckets: z.number(), percent: z.number() }),
  drops: z.object({
    drop: z.number(),
    earlyDrop: z.number(),
    insertFailed: z.number(),
    tableFullMessages: z.number(),
    lastTableFullAt: z.string().nullable(),
  }),
  topSources: z.array(countedSchema),
  topDestinations: z.array(countedSchema),
  states: z.record(z.string(), z.number()),
  timeouts: z.record(z.string(), z.number()),
  facts: gatewayFactsSchema,
  table: tableSummarySchema,
  findings: z.array(findingSchema),
  plan: planSchema,
  timings: z.record(z.string(), z.number()),
});
export type CheckReport = z.infer<typeof checkReportSchema>;
