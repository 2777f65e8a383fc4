/** Plan steps for the table size: nf_conntrack_max and the hash buckets. */
import type { GatewayFacts, PlanStepOf } from '../core/model.js';
import { HASHSIZE_PATH, MANAGED_FILES } from '../core/managed.js';
import { hostOnlyWhere } from '../analysis/findings/max-readonly.js';
import { fmtBytes, fmtInt, fmtPct, ratio } from '../analysis/format.js';
import { HEADROOM_FACTOR } from './compute-constants.js';
import { canWrite, canWriteHashsize } from './compute-signals.js';
import { tableBytes, type MaxSizing, type MemoryModel } from './compute-sizing.js';

export function maxStep(facts: GatewayFacts, sizing: MaxSizing, m: MemoryModel): PlanStepOf<'sysctl'> | null {
  if (sizing.proposed === null) return null;
  const proposed = sizing.proposed;
  const bytes = tableBytes(proposed, sizing.buckets, m);
  const memory =
    `${fmtInt(proposed)} x ${m.entryBytes} B + ${fmtInt(sizing.buckets)} buckets x ${m.bucketBytes} B = ${fmtBytes(bytes)} ` +
    `(${fmtPct(ratio(bytes, m.memTotalBytes))} of MemTotal ${fmtBytes(m.memTotalBytes)}; cap ${fmtBytes(m.budgetBytes)})`;
  const sizingText = sizing.capped
    ? `${HEADROOM_FACTOR}x headroom would be ${fmtInt(sizing.target)}, capped by memory to ${fmtInt(proposed)}`
    : `${HEADROOM_FACTOR}x headroom, rounded: ${fmtInt(proposed)}`;
  const writable = canWrite(facts, 'nf_conntrack_max');
  return {
    id: 'conntrack-max',
    kind: 'sysctl',
    key: 'nf_conntrack_max',
    current: String(facts.max),
    proposed: String(proposed),
    why: `Observed need ${fmtInt(sizing.observedNeed)}: ${sizing.needBasis}. ${sizingText}. Memory when full: ${memory}.`,
    writable,
    ...(writable ? {} : { whereToChange: hostOnlyWhere(proposed) }),
    optional: false,
    params: {
      value: proposed,
      current: facts.max,
      observedNeed: sizing.observedNeed,
      target: sizing.target,
      memoryCap: sizing.memoryCap,
      entryBytes: m.entryBytes,
      bucketBytes: m.bucketBytes,
      tableBytes: bytes,
      memoryBudgetBytes: m.budgetBytes,
    },
  };
}

/** Raise the buckets to `buckets` (never lower): max/4 for the max in force after the plan. */
export function hashsizeStep(facts: GatewayFacts, buckets: number, maxAfter: number): PlanStepOf<'hashsize'> | null {
  if (buckets <= facts.buckets) return null;
  const writable = canWriteHashsize(facts);
  const via = canWrite(facts, 'hashsize') || !canWrite(facts, 'nf_conntrack_buckets') ? HASHSIZE_PATH : 'net.netfilter.nf_conntrack_buckets';
  const perBucketNow = Math.round(ratio(maxAfter, facts.buckets) * 10) / 10;
  return {
    id: 'hashsize',
    kind: 'hashsize',
    key: 'hashsize',
    current: String(facts.buckets),
    proposed: String(buckets),
    why:
      `Buckets should be at least max/4: ${fmtInt(maxAfter)} / 4 -> ${fmtInt(buckets)} (today ${fmtInt(facts.buckets)}, ` +
      `${perBucketNow} entries per bucket, chains of ${Math.round(perBucketNow * 2 * 10) / 10} when full). ` +
      `Resizing rehashes the table online (a short CPU spike); the buckets cost ${fmtBytes((buckets - facts.buckets) * 8)} more.`,
    writable,
    ...(writable
      ? {}
      : {
          whereToChange:
            `the host (initial network namespace): \`echo ${buckets} > ${HASHSIZE_PATH}\` and ` +
            `\`options nf_conntrack hashsize=${buckets}\` in the host's ${MANAGED_FILES.modprobe}`,
        }),
    optional: false,
    params: { value: buckets, current: facts.buckets, via },
  };
}
