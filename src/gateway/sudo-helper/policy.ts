/**
 * What the root-owned helper (the only sudo entry of a non-root bot user) accepts, declared
 * once: its path, the keys it may write with their bounds, the managed files, the
 * snapshot directory and the plan id shape. The helper's text (script.ts) is rendered from
 * these values and the command templates (gateway/commands.ts) call it with them, so the
 * two cannot drift apart.
 */
import { z } from 'zod';
import { TIMEOUT_KEYS, ESTABLISHED_TIMEOUT_KEY } from '../../core/model.js';

/** Where the helper is installed (root:root 0755; the sudoers line names exactly this file). */
export const HELPER_PATH = '/usr/local/sbin/conntrack-ops-helper';

/** The gateway-side snapshot copies: one `<planId>.json` per applied plan, root-only (0700 / 0600). */
export const GATEWAY_SNAPSHOT_DIR = '/var/lib/conntrack-ops/snapshots';

/** A plan id as the queue and the buttons accept it (also the snapshot copy's file name). */
export const planIdSchema = z.string().regex(/^[A-Za-z0-9-]{8,64}$/, 'not a plan id');
export const PLAN_ID_PATTERN_SH = '[A-Za-z0-9-]';
export const PLAN_ID_MIN = 8;
export const PLAN_ID_MAX = 64;

/** A snapshot copy is one line of printable ASCII JSON, at most this many bytes. */
export const MAX_SNAPSHOT_BYTES = 262_144;
/** Snapshot copies kept at most (a write is refused beyond it); older than the retention are pruned. */
export const MAX_SNAPSHOT_FILES = 500;
/** Days a gateway copy is kept (the Redis record's retention: 14 days). */
export const SNAPSHOT_RETENTION_DAYS = 14;

/** Lines in one `conntrack-delete` batch (the slow path is capped far below: maxSlowDeletes). */
export const MAX_DELETE_LINES = 10_000;
/** Bytes of a managed file (sysctl.d / modprobe.d). */
export const MAX_MANAGED_FILE_BYTES = 16_384;
export const MAX_MANAGED_FILE_LINES = 200;

export interface Bounds {
  min: number;
  max: number;
}

const TIMEOUT_BOUNDS: Bounds = { min: 1, max: 1_209_600 };

/** Netfilter sysctls the helper writes, each within sane bounds (the kernel's own limits are wider). */
export const SYSCTL_BOUNDS: Readonly<Record<string, Bounds>> = {
  nf_conntrack_max: { min: 1024, max: 2 ** 26 },
  nf_conntrack_buckets: { min: 1024, max: 2 ** 26 },
  nf_conntrack_expect_max: { min: 1, max: 2 ** 24 },
  ...Object.fromEntries(TIMEOUT_KEYS.map((k) => [k, TIMEOUT_BOUNDS])),
  [ESTABLISHED_TIMEOUT_KEY]: { min: 60, max: 1_209_600 },
};

/** The hash size module parameter (the same bounds as the plan's hashsizeValueSchema). */
export const HASHSIZE_BOUNDS: Bounds = { min: 1024, max: 2 ** 26 };
/** nft rule handles. */
export const HANDLE_BOUNDS: Bounds = { min: 1, max: 2 ** 31 - 1 };

/** Whether the helper would accept this value for this key (the TypeScript twin of the helper's check). */
export function withinBounds(key: string, value: number): boolean {
  const b = key === 'hashsize' ? HASHSIZE_BOUNDS : SYSCTL_BOUNDS[key];
  return b !== undefined && Number.isInteger(value) && value >= b.min && value <= b.max;
}

/** The widest management-SSH source prefix the helper takes (a flow NOTRACK takes host addresses only). */
export const MIN_PREFIX = { ipv4: 16, ipv6: 48 } as const;

/** Firewall dumps the helper prints (`ruleset <name>`): name -> argv. */
export const RULESET_DUMPS: Readonly<Record<string, readonly string[]>> = {
  'iptables-nat': ['iptables-save', '-t', 'nat'],
  'iptables-raw': ['iptables-save', '-t', 'raw'],
  'ip6tables-nat': ['ip6tables-save', '-t', 'nat'],
  'ip6tables-raw': ['ip6tables-save', '-t', 'raw'],
  'iptables-legacy-nat': ['iptables-legacy-save', '-t', 'nat'],
  'iptables-legacy-raw': ['iptables-legacy-save', '-t', 'raw'],
  nft: ['nft', 'list', 'ruleset'],
  'nft-json': ['nft', '-j', 'list', 'ruleset'],
};

/** Kernel log lines the helper prints (the rest of the log is none of the bot's business). */
export const KERNEL_LOG_FILTER = 'conntrack|net_ratelimit';

/** Exit status of a refusal (EX_USAGE): nothing was done. */
export const REFUSED_EXIT = 64;
