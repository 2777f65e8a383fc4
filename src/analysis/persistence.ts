/**
 * What survives a reboot: the sysctl.d files in the order systemd-sysctl /
 * `sysctl --system` apply them, modprobe.d hashsize, and the kernel defaults.
 * A runtime value that differs from the boot value is lost at the next boot.
 */
import { TIMEOUT_KEYS, type GatewayFacts } from '../core/model.js';
import {
  BUCKETS_PER_PAGE,
  DEFAULT_TIMEOUTS,
  basename,
  defaultSizing,
  matchesDefault,
  persistedModprobeHashsize,
} from './kernel-defaults.js';

export interface SysctlSetting {
  /** Short name (nf_conntrack_max). */
  key: string;
  value: string;
  path: string;
}

/** Same file name in several directories: the first directory wins (sysctl.d(5)). */
const DIR_PRIORITY = ['/etc/sysctl.d/', '/run/sysctl.d/', '/usr/local/lib/sysctl.d/', '/usr/lib/sysctl.d/', '/lib/sysctl.d/'];
const SYSCTL_CONF = '/etc/sysctl.conf';

/** "net.netfilter.nf_conntrack_max", "net/netfilter/nf_conntrack_max", "net.nf_conntrack_max" -> "nf_conntrack_max". */
export function shortSysctlKey(key: string): string {
  const parts = key.trim().split(/[./]/);
  return parts[parts.length - 1] ?? key;
}

/** The full dotted name written to sysctl.d files. */
export function fullSysctlKey(shortKey: string): string {
  return `net.netfilter.${shortKey}`;
}

function dirRank(path: string): number {
  const i = DIR_PRIORITY.findIndex((d) => path.startsWith(d));
  return i === -1 ? DIR_PRIORITY.length : i;
}

/**
 * Files in application order (later overrides earlier): sorted by file name
 * whatever the directory, a name shadowed by a higher-priority directory is
 * skipped, /etc/sysctl.conf last.
 */
export function sysctlFilesInOrder<T extends { path: string }>(files: readonly T[]): T[] {
  const byName = new Map<string, T>();
  const conf: T[] = [];
  for (const file of files) {
    if (file.path === SYSCTL_CONF) {
      conf.push(file);
      continue;
    }
    const name = basename(file.path);
    const seen = byName.get(name);
    if (!seen || dirRank(file.path) < dirRank(seen.path)) byName.set(name, file);
  }
  const ordered = [...byName.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, f]) => f);
  return [...ordered, ...conf];
}

/** Every setting of every file, in application order. */
export function sysctlSettingsInOrder(facts: GatewayFacts): SysctlSetting[] {
  return sysctlFilesInOrder(facts.persistence.sysctlFiles).flatMap((file) =>
    Object.entries(file.keys).map(([key, value]) => ({ key: shortSysctlKey(key), value: value.trim(), path: file.path })),
  );
}

/** The value each key gets at boot from sysctl.d (last setting wins). */
export function effectiveSysctl(facts: GatewayFacts): Map<string, SysctlSetting> {
  const out = new Map<string, SysctlSetting>();
  for (const s of sysctlSettingsInOrder(facts)) out.set(s.key, s);
  return out;
}

/**
 * Settings of `key` applied after a file at `path` (so they win over it), e.g. a
 * runbook's 99-conntrack.conf overriding our 90-conntrack-ops.conf.
 */
export function settingsOverriding(facts: GatewayFacts, path: string, key: string): SysctlSetting[] {
  const withOurs = sysctlFilesInOrder([...facts.persistence.sysctlFiles.filter((f) => f.path !== path), { path, keys: {} }]);
  const ourIndex = withOurs.findIndex((f) => f.path === path);
  return withOurs
    .slice(ourIndex + 1)
    .flatMap((file) =>
      Object.entries(file.keys)
        .filter(([k]) => shortSysctlKey(k) === key)
        .map(([k, value]) => ({ key: shortSysctlKey(k), value: value.trim(), path: file.path })),
    );
}

export interface PersistenceGap {
  /** Short sysctl name, or 'hashsize'. */
  key: string;
  runtime: number;
  /** The value after a reboot. */
  boot: number;
  /** Where the boot value comes from: a file path, or "kernel default". */
  bootSource: string;
}

function numeric(value: string): number | null {
  const n = Number(value);
  return Number.isFinite(n) ? n : null;
}

function sysctlGap(key: string, runtime: number, eff: Map<string, SysctlSetting>, defaults: readonly number[] | null): PersistenceGap | null {
  const persisted = eff.get(key);
  if (persisted) {
    const boot = numeric(persisted.value);
    if (boot === null || boot === runtime) return null;
    return { key, runtime, boot, bootSource: persisted.path };
  }
  const first = defaults?.[0];
  if (!defaults || first === undefined || defaults.includes(runtime)) return null;
  return { key, runtime, boot: first, bootSource: 'kernel default' };
}

/**
 * Runtime values that a reboot would lose. Table size (max, buckets) is only
 * checked where this session owns it: in a network namespace it belongs to the host.
 */
export function persistenceGaps(facts: GatewayFacts): PersistenceGap[] {
  const eff = effectiveSysctl(facts);
  const gaps: PersistenceGap[] = [];

  if (facts.writable['nf_conntrack_max'] === true) {
    const modprobe = persistedModprobeHashsize(facts);
    const sizing = defaultSizing(facts.memTotalKb, facts.kernelRelease, modprobe?.hashsize ?? null);
    const persistedMax = eff.get('nf_conntrack_max');
    if (persistedMax) {
      const gap = sysctlGap('nf_conntrack_max', facts.max, eff, null);
      if (gap) gaps.push(gap);
    } else if (sizing && !matchesDefault(facts.max, sizing.max, sizing.proportional)) {
      gaps.push({ key: 'nf_conntrack_max', runtime: facts.max, boot: sizing.max, bootSource: modprobe ? modprobe.path : 'kernel default' });
    }

    const persistedBuckets = eff.get('nf_conntrack_buckets');
    const bucketsBoot = persistedBuckets
      ? { value: numeric(persistedBuckets.value), source: persistedBuckets.path, proportional: false }
      : modprobe
        ? { value: Math.ceil(modprobe.hashsize / BUCKETS_PER_PAGE) * BUCKETS_PER_PAGE, source: modprobe.path, proportional: false }
        : sizing
          ? { value: sizing.buckets, source: 'kernel default', proportional: sizing.proportional }
          : null;
    if (bucketsBoot && bucketsBoot.value !== null && !matchesDefault(facts.buckets, bucketsBoot.value, bucketsBoot.proportional)) {
      gaps.push({ key: 'hashsize', runtime: facts.buckets, boot: bucketsBoot.value, bootSource: bucketsBoot.source });
    }
  }

  for (const key of TIMEOUT_KEYS) {
    const runtime = facts.timeouts[key];
    if (runtime === undefined) continue;
    const gap = sysctlGap(key, runtime, eff, DEFAULT_TIMEOUTS[key] ?? null);
    if (gap) gaps.push(gap);
  }
  return gaps;
}
