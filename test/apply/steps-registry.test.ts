/**
 * The step registry: every plan-step kind has its module, every kind's step survives the
 * JSON round trip through the schema (as plans do through Redis), and a step whose params
 * do not fit its kind is refused by the schema before any module sees it. The rules a
 * NOTRACK step shows in the plan are the very command lines the apply runs.
 */
import { describe, expect, it } from 'vitest';
import { STEP_MODULES, describeStep, inApplyOrder, inRestoreOrder, includedByDefault, stepModule } from '../../src/apply/steps/registry.js';
import { PLAN_STEP_KINDS, planSchema, planStepSchema, type PlanStep, type PlanStepKind } from '../../src/core/model.js';
import { flowRules, managementRules } from '../../src/core/notrack.js';
import { commands } from '../../src/gateway/commands.js';
import { saturatedFacts, saturatedTable } from '../support/facts-fixtures.js';
import { planFor, stepOf } from '../plan/plan-helpers.js';

const common = { current: 'now', proposed: 'then', why: 'test', writable: true, optional: false };

/** One step of every kind, as the plan writes them. */
const EXAMPLES: { readonly [K in PlanStepKind]: Extract<PlanStep, { kind: K }> } = {
  sysctl: { ...common, id: 'conntrack-max', kind: 'sysctl', key: 'nf_conntrack_max', params: { value: 524_288, current: 262_144, tableBytes: 169_869_312 } },
  hashsize: { ...common, id: 'hashsize', kind: 'hashsize', key: 'hashsize', params: { value: 131_072, current: 16_384, via: '/sys/module/nf_conntrack/parameters/hashsize' } },
  'persist-sysctl': {
    ...common,
    id: 'persist-sysctl',
    kind: 'persist-sysctl',
    key: '/etc/sysctl.d/90-conntrack-ops.conf',
    params: {
      path: '/etc/sysctl.d/90-conntrack-ops.conf',
      values: { nf_conntrack_max: 524_288 },
      content: 'net.netfilter.nf_conntrack_max = 524288\n',
      keys: 'nf_conntrack_max',
      conflicts: '',
    },
  },
  'persist-modprobe': {
    ...common,
    id: 'persist-modprobe',
    kind: 'persist-modprobe',
    key: '/etc/modprobe.d/conntrack-ops.conf',
    params: { path: '/etc/modprobe.d/conntrack-ops.conf', hashsize: 131_072, content: 'options nf_conntrack hashsize=131072\n' },
  },
  'notrack-management': {
    ...common,
    optional: true,
    id: 'notrack-management',
    kind: 'notrack-management',
    key: 'management SSH 192.0.2.10 -> :22/tcp (iptables)',
    params: { backend: 'iptables', family: 'ipv4', source: '192.0.2.10', port: 22, tag: 'conntrack-ops:mgmt-ssh' },
  },
  'notrack-flow': {
    ...common,
    optional: true,
    id: 'notrack-flow-1',
    kind: 'notrack-flow',
    key: 'flow 10.1.2.3 <-> 10.9.0.20 (nft)',
    params: { backend: 'nft', family: 'ipv4', source: '10.1.2.3', destination: '10.9.0.20', tag: 'conntrack-ops:flow' },
  },
  'delete-idle-entries': {
    ...common,
    optional: true,
    id: 'delete-idle-entries',
    kind: 'delete-idle-entries',
    key: 'tcp ESTABLISHED idle >= 7200 s',
    params: { proto: 'tcp', state: 'ESTABLISHED', idleAtLeastSeconds: 7200, timeoutUsed: 432_000, remainingAtMost: 424_800, expected: 130_000 },
  },
};

function roundTrip(step: PlanStep): PlanStep {
  return planStepSchema.parse(JSON.parse(JSON.stringify(step)));
}

describe('step registry', () => {
  it('has a module for every kind, registered under its own kind', () => {
    expect(Object.keys(STEP_MODULES).sort()).toEqual([...PLAN_STEP_KINDS].sort());
    for (const kind of PLAN_STEP_KINDS) expect(STEP_MODULES[kind].kind).toBe(kind);
    for (const kind of PLAN_STEP_KINDS) expect(stepModule(EXAMPLES[kind])).toBe(STEP_MODULES[kind]);
  });

  it('a step of each kind round-trips through the schema unchanged', () => {
    for (const kind of PLAN_STEP_KINDS) expect(roundTrip(EXAMPLES[kind])).toEqual(EXAMPLES[kind]);
  });

  it('a computed plan round-trips through the schema, as it does through Redis', () => {
    const plan = planFor(saturatedFacts({ firewallBackend: 'nft' }), saturatedTable(), { managementSource: '192.0.2.10' });
    expect(plan.steps.map((s) => s.kind)).toEqual(['sysctl', 'sysctl', 'delete-idle-entries', 'persist-sysctl', 'notrack-management']);
    expect(planSchema.parse(JSON.parse(JSON.stringify(plan)))).toEqual(plan);
  });

  it('applies values, then deletes, then files, then rules; restores in reverse', () => {
    const steps = [...PLAN_STEP_KINDS].reverse().map((k) => EXAMPLES[k]);
    const applied = inApplyOrder(steps).map((s) => s.kind);
    expect(applied.slice(0, 2).sort()).toEqual(['hashsize', 'sysctl']);
    expect(applied[2]).toBe('delete-idle-entries');
    expect(applied.slice(3, 5).sort()).toEqual(['persist-modprobe', 'persist-sysctl']);
    expect(applied.slice(5).sort()).toEqual(['notrack-flow', 'notrack-management']);
    expect(inRestoreOrder(steps).map((s) => stepModule(s).order)).toEqual([3, 3, 2, 2, 1, 0, 0]);
  });

  it('describes optional steps for the approver; only the delete is proposed as included', () => {
    expect(describeStep(EXAMPLES['notrack-management'])).toEqual({ text: 'Exempt management SSH from tracking (NOTRACK)', description: 'notrack-management' });
    expect(describeStep(EXAMPLES['delete-idle-entries'])).toEqual({ text: 'Delete 130000 idle entries now', description: 'tcp ESTABLISHED idle >= 7200 s' });
    expect(describeStep(EXAMPLES['notrack-flow']).text).toBe('NOTRACK flow 10.1.2.3 <-> 10.9.0.20 (nft)');
    expect(PLAN_STEP_KINDS.filter((k) => includedByDefault(EXAMPLES[k]))).toEqual(['delete-idle-entries']);
  });
});

describe('params are typed per kind', () => {
  const rejected = (step: unknown): boolean => !planStepSchema.safeParse(step).success;

  it("refuses another kind's params", () => {
    expect(rejected({ ...EXAMPLES.sysctl, params: EXAMPLES.hashsize.params })).toBe(true);
    expect(rejected({ ...EXAMPLES.sysctl, params: EXAMPLES['delete-idle-entries'].params })).toBe(true);
    expect(rejected({ ...EXAMPLES['notrack-management'], params: EXAMPLES['notrack-flow'].params })).toBe(true);
    expect(rejected({ ...EXAMPLES['notrack-flow'], params: EXAMPLES['notrack-management'].params })).toBe(true);
    expect(rejected({ ...EXAMPLES['delete-idle-entries'], params: EXAMPLES.sysctl.params })).toBe(true);
    expect(rejected({ ...EXAMPLES['persist-sysctl'], params: EXAMPLES['persist-modprobe'].params })).toBe(true);
    expect(rejected({ ...EXAMPLES.hashsize, params: EXAMPLES.sysctl.params })).toBe(true);
  });

  it('refuses values as strings, missing values, and values out of range', () => {
    expect(rejected({ ...EXAMPLES.sysctl, params: { value: '524288', current: 262_144 } })).toBe(true);
    expect(rejected({ ...EXAMPLES.sysctl, params: { value: 524_288 } })).toBe(true);
    expect(rejected({ ...EXAMPLES.sysctl, params: { value: -1, current: 0 } })).toBe(true);
    expect(rejected({ ...EXAMPLES.hashsize, params: { ...EXAMPLES.hashsize.params, value: 512 } })).toBe(true);
    expect(rejected({ ...EXAMPLES['delete-idle-entries'], params: { ...EXAMPLES['delete-idle-entries'].params, idleAtLeastSeconds: '7200' } })).toBe(true);
    expect(rejected({ ...EXAMPLES['delete-idle-entries'], params: { ...EXAMPLES['delete-idle-entries'].params, idleAtLeastSeconds: 0 } })).toBe(true);
    expect(rejected({ ...EXAMPLES['notrack-management'], params: { ...EXAMPLES['notrack-management'].params, port: 70_000 } })).toBe(true);
  });

  it('refuses files and tags that are not ours, and addresses of another family', () => {
    expect(rejected({ ...EXAMPLES['persist-sysctl'], params: { ...EXAMPLES['persist-sysctl'].params, path: '/etc/sysctl.d/99-other.conf' } })).toBe(true);
    expect(rejected({ ...EXAMPLES['persist-sysctl'], params: { ...EXAMPLES['persist-sysctl'].params, values: { 'kernel.panic': 1 } } })).toBe(true);
    expect(rejected({ ...EXAMPLES['persist-sysctl'], params: { ...EXAMPLES['persist-sysctl'].params, values: {} } })).toBe(true);
    expect(rejected({ ...EXAMPLES['persist-modprobe'], params: { ...EXAMPLES['persist-modprobe'].params, path: '/etc/modprobe.d/x.conf' } })).toBe(true);
    expect(rejected({ ...EXAMPLES['notrack-management'], params: { ...EXAMPLES['notrack-management'].params, tag: 'conntrack-ops:flow' } })).toBe(true);
    expect(rejected({ ...EXAMPLES['notrack-management'], params: { ...EXAMPLES['notrack-management'].params, source: '10.0.0.1; reboot' } })).toBe(true);
    expect(rejected({ ...EXAMPLES['notrack-flow'], params: { ...EXAMPLES['notrack-flow'].params, destination: '2001:db8::1' } })).toBe(true);
    expect(rejected({ ...EXAMPLES['notrack-flow'], params: { ...EXAMPLES['notrack-flow'].params, backend: 'pf' } })).toBe(true);
  });

  it('reads back plans stored before params were typed (kept 14 days for a roll back)', () => {
    const stored = [
      { ...common, id: 'tcp-timeout-established', kind: 'sysctl', key: 'nf_conntrack_tcp_timeout_established', current: '432000', proposed: '86400', params: { value: 86_400, freedNow: 1, atRisk: 0, countAfter: 2 } },
      { ...common, id: 'hashsize', kind: 'hashsize', key: 'hashsize', current: '16384', proposed: '131072', params: { value: 131_072, via: '/sys/module/nf_conntrack/parameters/hashsize' } },
      {
        ...common,
        id: 'persist-sysctl',
        kind: 'persist-sysctl',
        key: '/etc/sysctl.d/90-conntrack-ops.conf',
        params: {
          path: '/etc/sysctl.d/90-conntrack-ops.conf',
          content: '# Managed by conntrack-ops: changes approved in chat. Edit through the bot.\nnet.netfilter.nf_conntrack_max = 524288\nnet.netfilter.nf_conntrack_tcp_timeout_established = 86400\n',
          keys: 'nf_conntrack_max,nf_conntrack_tcp_timeout_established',
          conflicts: '',
        },
      },
    ];
    const [sysctl, hashsize, persist] = stored.map((s) => planStepSchema.parse(s));
    expect(sysctl?.params).toMatchObject({ value: 86_400, current: 432_000 });
    expect(hashsize?.params).toMatchObject({ value: 131_072, current: 16_384 });
    expect(persist?.params).toMatchObject({ values: { nf_conntrack_max: 524_288, nf_conntrack_tcp_timeout_established: 86_400 } });
    // Nothing to fill the value in from: still refused.
    expect(rejected({ ...stored[0], current: 'tracked' , params: { value: 86_400 } })).toBe(true);
  });

  it('refuses an unknown kind', () => {
    expect(rejected({ ...EXAMPLES.sysctl, kind: 'reboot' })).toBe(true);
  });
});

describe('one NOTRACK rule model', () => {
  it('the plan shows the iptables command lines the apply runs', () => {
    const plan = planFor(saturatedFacts(), saturatedTable(), { managementSource: '192.0.2.10', sshPort: 2222 });
    const s = stepOf(plan, 'notrack-management', 'notrack-management');
    const [ruleIn, ruleOut] = managementRules(s.params).map((r) => commands.iptablesNotrack('add', r).shell);
    expect([s.params.ruleIn, s.params.ruleOut]).toEqual([ruleIn, ruleOut]);
    expect(s.proposed).toBe(`${ruleIn}\n${ruleOut}`);
  });

  it('the plan shows the nft rules the apply adds (the body the template quotes)', () => {
    const rules = flowRules({ family: 'ipv4', source: '10.1.2.3', destination: '10.9.0.20' });
    for (const r of rules) {
      const added = commands.nftAddRule(r).shell;
      expect(added).toMatch(/^nft add rule inet conntrack_ops (prerouting|output) '.*conntrack-ops:flow"'$/);
    }
  });

  it('under sudo the helper gets the same rule (family, chain, tag, addresses, ports)', () => {
    for (const r of managementRules({ family: 'ipv4', source: '198.51.100.10', port: 22 })) {
      const words = (commands.iptablesNotrack('add', r).sudoShell ?? '').split(' ').slice(3);
      expect(words).toEqual(['iptables-notrack', 'add', 'ipv4', r.chain, r.tag, r.saddr ?? '-', r.daddr ?? '-', String(r.sport ?? '-'), String(r.dport ?? '-')]);
      expect(commands.nftAddRule(r).sudoShell?.split(' ').slice(3, 4)).toEqual(['nft-add-rule']);
    }
  });
});
