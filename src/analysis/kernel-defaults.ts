/**
 * What the kernel would use after a reboot when nothing is persisted: the
 * default conntrack timeouts and the default table size.
 *
 * Table size (nf_conntrack_init_start, kernel >= 5.15, "sanitize table size
 * default settings"): buckets = RAM / 16384 / 8 bytes, but 262,144 above 4 GiB
 * (64-bit) and 65,536 above 1 GiB, at least 1,024, rounded up to a page of
 * bucket heads (512); max = buckets ("max_factor 1"). When the hashsize module
 * parameter is given, max = 8 x hashsize instead.
 */
import type { GatewayFacts } from '../core/model.js';

/** Default timeouts in seconds; several values where the default changed between kernels. */
export const DEFAULT_TIMEOUTS: Readonly<Record<string, readonly number[]>> = {
  nf_conntrack_tcp_timeout_established: [432_000],
  nf_conntrack_tcp_timeout_time_wait: [120],
  nf_conntrack_tcp_timeout_close_wait: [60],
  nf_conntrack_tcp_timeout_fin_wait: [120],
  nf_conntrack_tcp_timeout_syn_sent: [120],
  nf_conntrack_tcp_timeout_syn_recv: [60],
  nf_conntrack_tcp_timeout_last_ack: [30],
  nf_conntrack_tcp_timeout_close: [10],
  nf_conntrack_tcp_timeout_unacknowledged: [300],
  nf_conntrack_udp_timeout: [30],
  nf_conntrack_udp_timeout_stream: [120, 180],
  nf_conntrack_icmp_timeout: [30],
  nf_conntrack_generic_timeout: [600],
};

export const DEFAULT_ESTABLISHED_TIMEOUT = 432_000;

/** Bucket heads per 4 KiB page: the kernel rounds the hash size up to a multiple of this. */
export const BUCKETS_PER_PAGE = 512;
/** Size of one hash bucket head (hlist_nulls_head, one pointer on 64-bit). */
export const BUCKET_BYTES = 8;

const KIB_PER_GIB = 1024 * 1024;

function roundUpTo(value: number, multiple: number): number {
  return Math.ceil(value / multiple) * multiple;
}

/** "6.18.0-1-amd64" -> [6, 18]; null when unreadable. */
export function kernelVersion(release: string): [number, number] | null {
  const m = /^(\d+)\.(\d+)/.exec(release);
  return m ? [Number(m[1]), Number(m[2])] : null;
}

export interface DefaultSizing {
  buckets: number;
  max: number;
  /** How the numbers were derived, for evidence. */
  basis: string;
  /** True when derived from MemTotal below 1 GiB, where a few MiB of difference change the result. */
  proportional: boolean;
}

/**
 * Boot-time table size, or null when the kernel predates the 5.15 formula.
 * `modprobeHashsize` is a persisted `options nf_conntrack hashsize=N`.
 */
export function defaultSizing(memTotalKb: number, kernelRelease: string, modprobeHashsize: number | null): DefaultSizing | null {
  if (modprobeHashsize !== null && modprobeHashsize > 0) {
    const buckets = roundUpTo(modprobeHashsize, BUCKETS_PER_PAGE);
    return { buckets, max: 8 * buckets, basis: `modprobe.d hashsize=${modprobeHashsize} (max = 8 x hashsize)`, proportional: false };
  }
  const version = kernelVersion(kernelRelease);
  if (!version) return null;
  const [major, minor] = version;
  if (major < 5 || (major === 5 && minor < 15)) return null;
  let buckets: number;
  let proportional = false;
  if (memTotalKb > 4 * KIB_PER_GIB) buckets = 262_144;
  else if (memTotalKb > KIB_PER_GIB) buckets = 65_536;
  else {
    buckets = Math.max(1024, Math.floor(memTotalKb / 128));
    proportional = true;
  }
  buckets = roundUpTo(buckets, BUCKETS_PER_PAGE);
  return { buckets, max: buckets, basis: 'kernel default (max = buckets, sized from RAM)', proportional };
}

/** Whether a runtime value matches a derived default (5 % slack where RAM-proportional). */
export function matchesDefault(runtime: number, derived: number, proportional: boolean): boolean {
  if (!proportional) return runtime === derived;
  return Math.abs(runtime - derived) <= derived * 0.05;
}

/** The persisted `options nf_conntrack hashsize=` (last file in name order wins), or null. */
export function persistedModprobeHashsize(facts: GatewayFacts): { hashsize: number; path: string } | null {
  const files = [...facts.persistence.modprobeFiles]
    .filter((f) => f.hashsize !== null)
    .sort((a, b) => basename(a.path).localeCompare(basename(b.path)));
  const last = files.at(-1);
  return last && last.hashsize !== null ? { hashsize: last.hashsize, path: last.path } : null;
}

export function basename(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}
