/**
 * Pre-flight, right before anything changes: re-read the gateway and refuse
 *   - keys that are read-only here (the kernel's own `test -w`, as root), saying where
 *     they must change instead;
 *   - a max the gateway's memory cannot hold;
 *   - a plan whose `current` values drifted (someone changed them, or the table count
 *     moved a lot): ask for a re-check.
 */
import type { PlanStep } from '../core/model.js';
import type { PlanRecord } from '../store/plan-store.js';
import { ASSUMED_ENTRY_BYTES, MEMORY_BUDGET_FRACTION } from '../plan/compute-constants.js';
import { BUCKET_BYTES } from '../analysis/kernel-defaults.js';
import type { GatewaySession } from '../gateway/ssh-session.js';
import { isWritable, readCount, type LiveState } from './gateway-io.js';
import { persistedSysctlValues } from './persist.js';

const ESTABLISHED = 'nf_conntrack_tcp_timeout_established';

/** Count drift beyond this share of max makes the plan stale. */
export const COUNT_DRIFT_SHARE = 0.2;

export interface StepVerdict {
  step: PlanStep;
  /** null: go ahead. Otherwise why the step cannot run here, and where to change it. */
  refusal: string | null;
}

export interface PreflightResult {
  /** Problems that stop the whole apply (nothing will be changed). */
  problems: string[];
  verdicts: StepVerdict[];
  count: number;
}

function where(step: PlanStep, fallback: string): string {
  return step.whereToChange ? `change it at: ${step.whereToChange}` : fallback;
}

export function sysctlKeysOfStep(step: PlanStep): string[] {
  if (step.kind === 'sysctl') return [step.key];
  if (step.kind === 'persist-sysctl') return [...persistedSysctlValues(step).keys()];
  if (step.kind === 'delete-idle-entries') return [ESTABLISHED];
  return [];
}

export async function preflight(
  session: GatewaySession,
  plan: PlanRecord,
  selected: PlanStep[],
  live: LiveState,
): Promise<PreflightResult> {
  const problems: string[] = [];
  const verdicts: StepVerdict[] = [];
  const writableCache = new Map<string, boolean>();
  const writable = async (key: string): Promise<boolean> => {
    let v = writableCache.get(key);
    if (v === undefined) {
      v = await isWritable(session, key);
      writableCache.set(key, v);
    }
    return v;
  };
  const report = plan.report;
  const count = await readCount(session);

  const maxWritable = await writable('nf_conntrack_max');
  const hashsizeWritable = maxWritable && (await writable('hashsize'));
  const rootHere = await writable(ESTABLISHED);

  // The table moved a lot since the check: sizes and delete counts were computed for another table.
  const countDrift = Math.abs(count - report.conntrack.count);
  if (countDrift > COUNT_DRIFT_SHARE * Math.max(report.conntrack.max, 1)) {
    problems.push(
      `The table count moved from ${report.conntrack.count} (at the check, ${report.checkedAt}) to ${count} now: ` +
        'the plan was computed for another table. Run a new check.',
    );
  }

  for (const step of selected) {
    let refusal: string | null = null;
    switch (step.kind) {
      case 'sysctl': {
        const liveValue = live.sysctl[step.key];
        if (liveValue === undefined) {
          refusal = `net.netfilter.${step.key} does not exist on this gateway (is nf_conntrack loaded?)`;
          break;
        }
        if (!(await writable(step.key))) {
          refusal = `net.netfilter.${step.key} is read-only here (in a network namespace nf_conntrack_max, nf_conntrack_buckets and nf_conntrack_expect_max belong to the host); ${where(step, 'change it on the host (initial network namespace)')}`;
          break;
        }
        const proposed = Number(step.proposed);
        if (liveValue !== Number(step.current) && liveValue !== proposed) {
          problems.push(`${step.key} is ${liveValue} now, the plan was computed with ${step.current}: someone changed it. Run a new check.`);
        }
        if (step.key === 'nf_conntrack_max' && proposed > liveValue) {
          const entryBytes = live.slabBytes ?? ASSUMED_ENTRY_BYTES;
          const hashStep = selected.find((s) => s.kind === 'hashsize');
          const buckets = Math.max(live.hashsize ?? 0, hashStep ? Number(hashStep.proposed) : 0, live.sysctl['nf_conntrack_buckets'] ?? 0);
          const bytes = proposed * entryBytes + buckets * BUCKET_BYTES;
          const budget = Math.floor(live.memTotalKb * 1024 * MEMORY_BUDGET_FRACTION);
          const growth = (proposed - count) * entryBytes;
          if (bytes > budget) {
            refusal =
              `nf_conntrack_max ${proposed} needs ${Math.round(bytes / 2 ** 20)} MiB when full (${entryBytes} B/entry + ${buckets} buckets x ${BUCKET_BYTES} B), ` +
              `more than ${MEMORY_BUDGET_FRACTION * 100}% of this gateway's ${Math.round(live.memTotalKb / 1024)} MiB: refused. Add memory or free entries (timeouts) instead.`;
          } else if (growth > (live.memAvailableKb * 1024) / 2) {
            refusal =
              `nf_conntrack_max ${proposed}: filling it would take ${Math.round(growth / 2 ** 20)} MiB, more than half of the ${Math.round(live.memAvailableKb / 1024)} MiB available now: refused.`;
          }
        }
        break;
      }
      case 'hashsize': {
        if (!hashsizeWritable) {
          refusal = `the hash size can only be changed in the initial network namespace (here nf_conntrack_max is read-only and ${'/sys/module/nf_conntrack/parameters/hashsize'} refuses writes); ${where(step, 'change it on the host')}`;
          break;
        }
        const liveValue = live.hashsize ?? live.sysctl['nf_conntrack_buckets'];
        if (liveValue !== undefined && liveValue !== Number(step.current) && liveValue !== Number(step.proposed)) {
          problems.push(`The hash size is ${liveValue} now, the plan was computed with ${step.current}: someone changed it. Run a new check.`);
        }
        break;
      }
      case 'persist-sysctl': {
        const keys = sysctlKeysOfStep(step);
        const readOnly: string[] = [];
        for (const k of keys) if (!(await writable(k))) readOnly.push(k);
        // Whether /etc/sysctl.d is the right place (host vs namespace) is the plan's call (its
        // writable flag); here: every key in the file must be writable, or `sysctl -p` fails.
        if (readOnly.length > 0) {
          refusal =
            `the file sets ${readOnly.join(', ')}, read-only here (a network namespace: they belong to the host); ` +
            where(step, 'set these values where the namespace is created, and the host values on the host');
        }
        break;
      }
      case 'persist-modprobe':
        if (!hashsizeWritable) refusal = `the hash size belongs to the host (initial network namespace); ${where(step, "persist it in the host's /etc/modprobe.d")}`;
        break;
      case 'notrack-management':
      case 'notrack-flow': {
        if (!rootHere) {
          refusal = `raw table rules need root (CAP_NET_ADMIN) in the gateway's network namespace; ${where(step, 'add the rule as root')}`;
          break;
        }
        const backend = step.params['backend'];
        if (backend === 'nft' && !live.hasNft) refusal = 'the plan uses nft but nft is not installed on the gateway';
        if (backend === 'iptables' && !live.hasIptables) refusal = 'the plan uses iptables but iptables is not installed on the gateway';
        break;
      }
      case 'delete-idle-entries': {
        if (!live.hasConntrack) {
          refusal = 'conntrack-tools is not installed on the gateway (entries are deleted over netlink with conntrack -D): install it';
          break;
        }
        if (!rootHere) {
          refusal = `deleting entries needs root (CAP_NET_ADMIN) in the gateway's network namespace; ${where(step, 'run conntrack -D as root')}`;
          break;
        }
        const used = Number(step.params['timeoutUsed']);
        const liveEst = live.sysctl[ESTABLISHED];
        const newTimeout = Number(step.params['idleAtLeastSeconds']);
        if (liveEst !== undefined && liveEst !== used && liveEst !== newTimeout) {
          problems.push(`${ESTABLISHED} is ${liveEst} now; idle times were computed with ${used}: run a new check.`);
        }
        const lowers = selected.some((s) => s.kind === 'sysctl' && s.key === ESTABLISHED && Number(s.proposed) <= newTimeout);
        if (!lowers && (liveEst ?? Infinity) > newTimeout) {
          refusal = `deleting entries idle > ${newTimeout} s only makes sense with the ESTABLISHED timeout lowered to ${newTimeout} s, and that step is not part of this apply`;
        }
        break;
      }
    }
    verdicts.push({ step, refusal });
  }
  return { problems, verdicts, count };
}
