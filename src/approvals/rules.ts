/**
 * Who may decide on a plan. Approvers are configured Slack user ids and/or user
 * groups; the requester cannot approve their own plan unless configured.
 * The same rules serve Slack buttons and the terminal.
 */

export interface ApprovalPolicy {
  approvers: string[];
  approverGroups: string[];
  allowSelfApproval: boolean;
}

export type ApprovalDecision = { allowed: true } | { allowed: false; reason: string };

/** The approver groups could not be read: never taken for "not a member"; the caller fails closed and says so. */
export class GroupLookupError extends Error {
  constructor(group: string, cause: unknown) {
    super(`could not read user group ${group}: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = 'GroupLookupError';
  }
}

export class ApprovalRules {
  private groupCache: { at: number; members: Set<string> } | null = null;

  constructor(
    private readonly policy: ApprovalPolicy,
    /** Members of a user group (Slack: usergroups.users.list). */
    private readonly listGroup: (group: string) => Promise<string[]> = async () => [],
    private readonly cacheMs = 60_000,
  ) {}

  private async groupMembers(): Promise<Set<string>> {
    if (this.policy.approverGroups.length === 0) return new Set();
    if (this.groupCache && Date.now() - this.groupCache.at < this.cacheMs) return this.groupCache.members;
    const members = new Set<string>();
    for (const usergroup of this.policy.approverGroups) {
      let users: string[];
      try {
        users = await this.listGroup(usergroup);
      } catch (err) {
        throw new GroupLookupError(usergroup, err);
      }
      for (const u of users) members.add(u);
    }
    this.groupCache = { at: Date.now(), members };
    return members;
  }

  async isApprover(userId: string): Promise<boolean> {
    return this.policy.approvers.includes(userId) || (await this.groupMembers()).has(userId);
  }

  /** May `userId` approve a plan requested by `requestedBy`? A failing group lookup throws a GroupLookupError. */
  async canApprove(userId: string, requestedBy: string): Promise<ApprovalDecision> {
    if (!(await this.isApprover(userId))) {
      return { allowed: false, reason: 'Only configured approvers can approve or reject a plan. Ask someone on the approvers list.' };
    }
    if (userId === requestedBy && !this.policy.allowSelfApproval) {
      return { allowed: false, reason: 'You requested this check, so someone else has to approve its plan (four-eyes rule).' };
    }
    return { allowed: true };
  }
}
