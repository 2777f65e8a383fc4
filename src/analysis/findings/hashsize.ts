/**
 * hashsize-ratio: fewer buckets than max/4. Each entry is hashed twice
 * (original and reply), so a full table has 2 x max / buckets entries per
 * chain. Kernels >= 5.15 default to buckets = max (chains of 2): that is fine.
 */
import type { Finding } from '../../core/model.js';
import type { AnalysisContext } from '../context.js';
import { fmtInt, ratio } from '../format.js';

/** The minimum bucket count: max / 4 (chains of 8 when full). */
export const MIN_BUCKET_RATIO = 4;

export function hashsizeFindings(ctx: AnalysisContext): Finding[] {
  const { facts } = ctx;
  if (facts.buckets * MIN_BUCKET_RATIO >= facts.max) return [];
  const chainNow = Math.round(ratio(2 * facts.count, facts.buckets) * 10) / 10;
  const chainFull = Math.round(ratio(2 * facts.max, facts.buckets) * 10) / 10;
  const entriesPerBucket = Math.round(ratio(facts.max, facts.buckets) * 10) / 10;
  const chaintoolong = facts.stats.chaintoolong;
  return [
    {
      id: 'hashsize-ratio',
      severity: chainNow > 2 * MIN_BUCKET_RATIO || chaintoolong > 0 ? 'warning' : 'info',
      title: `Hash table small: ${fmtInt(facts.buckets)} buckets for max ${fmtInt(facts.max)} (1 per ${entriesPerBucket} entries), ${chainFull} entries per chain when full`,
      evidence: {
        buckets: facts.buckets,
        max: facts.max,
        entriesPerBucket,
        avgChainNow: chainNow,
        avgChainWhenFull: chainFull,
        chaintoolong,
      },
      detail: `Long chains cost CPU on every packet${chaintoolong > 0 ? ` and the kernel already refused ${fmtInt(chaintoolong)} inserts for chain length` : ''}; buckets should be at least max/4.`,
    },
  ];
}
