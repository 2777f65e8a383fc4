/**
 * Who may decide on a plan (src/approvals/rules.ts), with a fake user-group lookup passed
 * in the way Slack's usergroups.users.list is: requester vs approver, ALLOW_SELF_APPROVAL,
 * group membership and its cache, non-approvers.
 */
import { describe, expect, it } from 'vitest';
import { ApprovalRules, type ApprovalPolicy } from '../../src/approvals/rules.js';

const ALICE = 'U0ALICE01';
const BOB = 'U0BOB0001';
const CAROL = 'U0CAROL01';
const MALLORY = 'U0MALLOR1';

/** A usergroups lookup that answers from a table and remembers what it was asked. */
function fakeGroups(groups: Record<string, string[]>): { lookup: (group: string) => Promise<string[]>; asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    lookup: async (group) => {
      asked.push(group);
      const members = groups[group];
      if (!members) throw new Error(`no_such_subteam: ${group}`);
      return [...members];
    },
  };
}

const policy = (over: Partial<ApprovalPolicy> = {}): ApprovalPolicy => ({ approvers: [ALICE, BOB], approverGroups: [], allowSelfApproval: false, ...over });

describe('canApprove', () => {
  it('an approver approves someone else\'s plan', async () => {
    const rules = new ApprovalRules(policy());
    expect(await rules.canApprove(BOB, ALICE)).toEqual({ allowed: true });
    expect(await rules.canApprove(ALICE, BOB)).toEqual({ allowed: true });
  });

  it('the requester cannot approve their own plan, approver or not (four-eyes rule)', async () => {
    const rules = new ApprovalRules(policy());
    const d = await rules.canApprove(ALICE, ALICE);
    expect(d).toEqual({ allowed: false, reason: expect.stringMatching(/someone else has to approve its plan \(four-eyes rule\)/) });
  });

  it('ALLOW_SELF_APPROVAL lets an approver approve their own plan, and only an approver', async () => {
    const rules = new ApprovalRules(policy({ allowSelfApproval: true }));
    expect(await rules.canApprove(ALICE, ALICE)).toEqual({ allowed: true });
    expect(await rules.canApprove(MALLORY, MALLORY)).toMatchObject({ allowed: false, reason: expect.stringMatching(/Only configured approvers/) });
  });

  it('a non-approver is refused, whoever asked for the plan', async () => {
    const rules = new ApprovalRules(policy());
    for (const requester of [ALICE, MALLORY]) {
      expect(await rules.canApprove(MALLORY, requester)).toEqual({ allowed: false, reason: 'Only configured approvers can approve or reject a plan. Ask someone on the approvers list.' });
    }
  });

  it('a member of an approver group approves; the four-eyes rule holds for members too', async () => {
    const groups = fakeGroups({ S0NETOPS1: [CAROL], S0ONCALL1: [MALLORY] });
    const rules = new ApprovalRules(policy({ approverGroups: ['S0NETOPS1'] }), groups.lookup);
    expect(await rules.canApprove(CAROL, ALICE)).toEqual({ allowed: true });
    expect(await rules.canApprove(CAROL, CAROL)).toMatchObject({ allowed: false, reason: expect.stringMatching(/four-eyes/) });
    // A member of a group that is not an approver group is not an approver.
    expect(await rules.canApprove(MALLORY, ALICE)).toMatchObject({ allowed: false });
    expect(groups.asked.every((g) => g === 'S0NETOPS1')).toBe(true);
  });

  it('members of every configured group count', async () => {
    const groups = fakeGroups({ S0NETOPS1: [CAROL], S0ONCALL1: [MALLORY] });
    const rules = new ApprovalRules(policy({ approvers: [], approverGroups: ['S0NETOPS1', 'S0ONCALL1'] }), groups.lookup);
    expect(await rules.isApprover(CAROL)).toBe(true);
    expect(await rules.isApprover(MALLORY)).toBe(true);
    expect(await rules.isApprover(ALICE)).toBe(false);
    expect(groups.asked).toEqual(['S0NETOPS1', 'S0ONCALL1']);
  });
});

describe('the group lookup', () => {
  it('is not called without approver groups, nor for a listed approver', async () => {
    const groups = fakeGroups({});
    expect(await new ApprovalRules(policy(), groups.lookup).isApprover(MALLORY)).toBe(false);
    expect(await new ApprovalRules(policy({ approverGroups: ['S0BROKEN1'] }), groups.lookup).isApprover(BOB)).toBe(true);
    expect(groups.asked).toEqual([]);
  });

  it('is cached for cacheMs: a member removed from the group keeps approving until the cache ends', async () => {
    const table = { S0NETOPS1: [CAROL] };
    const groups = fakeGroups(table);
    const cached = new ApprovalRules(policy({ approverGroups: ['S0NETOPS1'] }), groups.lookup, 60_000);
    expect(await cached.isApprover(CAROL)).toBe(true);
    table.S0NETOPS1 = [];
    expect(await cached.isApprover(CAROL)).toBe(true);
    expect(groups.asked).toEqual(['S0NETOPS1']);

    const uncached = new ApprovalRules(policy({ approverGroups: ['S0NETOPS1'] }), groups.lookup, 0);
    expect(await uncached.isApprover(CAROL)).toBe(false);
    table.S0NETOPS1 = [CAROL];
    expect(await uncached.isApprover(CAROL)).toBe(true);
  });

  it('a failing lookup is not taken for "not a member": the error reaches the caller', async () => {
    const rules = new ApprovalRules(policy({ approverGroups: ['S0GONE001'] }), fakeGroups({}).lookup);
    await expect(rules.canApprove(CAROL, ALICE)).rejects.toThrow(/no_such_subteam/);
  });
});
