/**
 * Persistence: every sysctl the plan changes (and every runtime-only value)
 * goes to one managed sysctl.d file; the hash size to modprobe.d, which the
 * runbook forgets.
 */
import { TIMEOUT_KEYS, type GatewayFacts, type PlanStepOf } from '../core/model.js';
import { MANAGED_FILES, MODULES_LOAD_FILE } from '../core/managed.js';
import { basename } from '../analysis/kernel-defaults.js';
import { fullSysctlKey, persistenceGaps, settingsOverriding, shortSysctlKey } from '../analysis/persistence.js';
import { canWrite, canWriteHashsize } from './compute-signals.js';

const KEY_ORDER: readonly string[] = ['nf_conntrack_max', 'nf_conntrack_buckets', 'nf_conntrack_expect_max', ...TIMEOUT_KEYS];

function orderKeys(keys: Iterable<string>): string[] {
  const rank = (k: string): number => {
    const i = KEY_ORDER.indexOf(k);
    return i === -1 ? KEY_ORDER.length : i;
  };
  return [...keys].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
}

export function sysctlFileContent(values: ReadonlyMap<string, number>): string {
  const lines = orderKeys(values.keys()).map((k) => `${fullSysctlKey(k)} = ${values.get(k)}`);
  return ['# Managed by conntrack-ops: changes approved in chat. Edit through the bot.', ...lines, ''].join('\n');
}

export interface PersistInput {
  /** Sysctl steps of this plan (short key -> proposed value). */
  changed: ReadonlyMap<string, number>;
  /** The max in force after the plan (written too when the hash size is persisted). */
  maxAfter: number;
  /** Hash size to persist, or null. */
  hashsize: number | null;
}

function ourSysctlFile(facts: GatewayFacts): Map<string, number> {
  const file = facts.persistence.sysctlFiles.find((f) => f.path === MANAGED_FILES.sysctl);
  const out = new Map<string, number>();
  if (!file) return out;
  for (const [k, v] of Object.entries(file.keys)) {
    const n = Number(v);
    if (Number.isFinite(n)) out.set(shortSysctlKey(k), n);
  }
  return out;
}

function sameValues(a: ReadonlyMap<string, number>, b: ReadonlyMap<string, number>): boolean {
  return a.size === b.size && [...a].every(([k, v]) => b.get(k) === v);
}

export function persistSysctlStep(facts: GatewayFacts, input: PersistInput): PlanStepOf<'persist-sysctl'> | null {
  const existing = ourSysctlFile(facts);
  const values = new Map(existing);
  const reasons: string[] = [];
  const inNetns = facts.writable['nf_conntrack_max'] === false;

  for (const gap of persistenceGaps(facts)) {
    if (gap.key === 'hashsize' || input.changed.has(gap.key) || !canWrite(facts, gap.key)) continue;
    values.set(gap.key, gap.runtime);
    reasons.push(`${gap.key} ${gap.runtime} is runtime-only (boot value ${gap.boot} from ${gap.bootSource})`);
  }
  for (const [key, value] of input.changed) {
    if (!canWrite(facts, key)) continue;
    values.set(key, value);
    reasons.push(`${key} ${value} (this plan)`);
  }
  if (input.hashsize !== null && canWriteHashsize(facts) && !values.has('nf_conntrack_max')) {
    values.set('nf_conntrack_max', input.maxAfter);
    reasons.push(`nf_conntrack_max ${input.maxAfter}: with hashsize set at module load the kernel would otherwise boot with max = 8 x hashsize`);
  }
  if (values.size === 0 || (sameValues(values, existing) && reasons.length === 0)) return null;

  const conflicts = orderKeys(values.keys()).flatMap((key) =>
    settingsOverriding(facts, MANAGED_FILES.sysctl, key)
      .filter((s) => Number(s.value) !== values.get(key))
      .map((s) => `${s.path} sets ${key} = ${s.value}`),
  );
  const content = sysctlFileContent(values);
  const why = [
    `Runtime changes are lost at reboot. Persisting: ${reasons.join('; ')}.`,
    conflicts.length
      ? `Applied after this file and so winning at boot: ${conflicts.join('; ')}: remove those lines.`
      : '',
    `If nf_conntrack is loaded after systemd-sysctl runs, these keys do not exist yet at boot: load it early via ${MODULES_LOAD_FILE} (nf_conntrack).`,
  ]
    .filter(Boolean)
    .join(' ');
  const step: PlanStepOf<'persist-sysctl'> = {
    id: 'persist-sysctl',
    kind: 'persist-sysctl',
    key: MANAGED_FILES.sysctl,
    current: existing.size ? sysctlFileContent(existing) : '(absent)',
    proposed: content,
    why,
    writable: !inNetns,
    ...(inNetns
      ? {
          whereToChange:
            "the tooling that creates this network namespace or container: /etc/sysctl.d configures the host's own namespace at boot, " +
            'a namespace starts from kernel defaults (`ip netns exec <ns> sysctl -p <file>` after creating it, `docker run --sysctl ...`, or a Kubernetes pod securityContext.sysctls)',
        }
      : {}),
    optional: false,
    params: {
      path: MANAGED_FILES.sysctl,
      values: Object.fromEntries(orderKeys(values.keys()).map((k) => [k, values.get(k) ?? 0])),
      content,
      keys: orderKeys(values.keys()).join(','),
      conflicts: conflicts.join('; '),
    },
  };
  return step;
}

export function persistModprobeStep(facts: GatewayFacts, hashsize: number | null): PlanStepOf<'persist-modprobe'> | null {
  const gap = persistenceGaps(facts).find((g) => g.key === 'hashsize');
  const value = hashsize ?? (gap ? gap.runtime : null);
  if (value === null || !canWriteHashsize(facts)) return null;
  const ours = facts.persistence.modprobeFiles.find((f) => f.path === MANAGED_FILES.modprobe);
  const others = facts.persistence.modprobeFiles.filter((f) => f.path !== MANAGED_FILES.modprobe && f.hashsize !== null && f.hashsize !== value);
  if (ours?.hashsize === value && others.length === 0) return null;
  const content = `options nf_conntrack hashsize=${value}\n`;
  const winning = others.filter((f) => basename(f.path) > basename(MANAGED_FILES.modprobe));
  const step: PlanStepOf<'persist-modprobe'> = {
    id: 'persist-modprobe',
    kind: 'persist-modprobe',
    key: MANAGED_FILES.modprobe,
    current: ours ? `options nf_conntrack hashsize=${ours.hashsize ?? '(none)'}` : '(absent)',
    proposed: content,
    why:
      `The hash size is a module parameter: ${hashsize !== null ? 'the new' : 'the runtime'} value ${value} is lost at reboot unless modprobe.d sets it. ` +
      'If nf_conntrack is built into the kernel, use nf_conntrack.hashsize= on the kernel command line instead. ' +
      (others.length ? `Also set in: ${others.map((f) => `${f.path} (hashsize=${f.hashsize})`).join(', ')}${winning.length ? ', read after this file so it wins' : ''}: remove it.` : ''),
    writable: true,
    optional: false,
    params: { path: MANAGED_FILES.modprobe, content, hashsize: value },
  };
  return step;
}
