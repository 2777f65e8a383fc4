/**
 * Approve / apply / roll back from a terminal, through the same decisions and queue as
 * Slack's buttons. Used by the demo: the requester is refused (four-eyes rule), a second
 * user approves, the apply job runs, then an optional roll back.
 */
import { QueueEvents } from 'bullmq';
import { approvePlan, requestRollback, type DecisionOutcome } from '../../src/approvals/decisions.js';
import { ApprovalRules } from '../../src/approvals/rules.js';
import { includedByDefault } from '../../src/apply/steps/registry.js';
import { approvableOptionalSteps } from '../../src/core/model.js';
import { QUEUES } from '../../src/queue/jobs.js';
import type { Runtime } from '../../src/runtime.js';
import { renderApplyOutcomeText } from './render-apply-text.js';

export interface TerminalIo {
  ask(question: string, fallback: string): Promise<string>;
  say(line: string): void;
}

async function waitForJob(rt: Runtime, jobId: string): Promise<unknown> {
  const events = new QueueEvents(QUEUES.apply, { connection: rt.redisHandle.connect(), prefix: rt.env.QUEUE_PREFIX });
  try {
    await events.waitUntilReady();
    const job = await rt.queues.apply.getJob(jobId);
    if (!job) throw new Error(`job ${jobId} is not in the queue`);
    try {
      return await job.waitUntilFinished(events);
    } catch (err) {
      return { failed: (err as Error).message };
    }
  } finally {
    await events.close();
  }
}

function explain(io: TerminalIo, outcome: DecisionOutcome): void {
  if (!outcome.ok) io.say(`   refused: ${outcome.message.replace(/\*/g, '')}`);
}

export async function runDecisionInTerminal(rt: Runtime, planId: string, io: TerminalIo): Promise<void> {
  const plan = await rt.plans.get(planId);
  if (!plan) throw new Error(`plan ${planId} not found`);
  const writable = plan.report.plan.steps.filter((s) => s.writable && !s.optional);
  if (writable.length === 0) {
    io.say('\n== nothing in this plan can be applied from here; see "change it at" above.');
    return;
  }
  const approver = process.env.CONNTRACK_OPS_DEMO_APPROVER ?? 'demo-approver';
  // The requester is an approver too: the four-eyes rule, not the list, is what stops it.
  const rules = new ApprovalRules({ approvers: [approver, plan.requestedBy], approverGroups: [], allowSelfApproval: false });

  io.say(`\n== approval (plan ${planId}, requested by ${plan.requestedBy}; approvers: ${approver}, ${plan.requestedBy})`);
  io.say(`   ${plan.requestedBy} tries to approve its own plan:`);
  explain(io, await approvePlan(rt, rules, planId, plan.requestedBy));
  const who = await io.ask(`   Approve as (a second user) [${approver}]:`, approver);
  // Each optional step is approved on its own; by default the one that frees entries now.
  const offered = approvableOptionalSteps(plan.report.plan.steps);
  let optionalSteps: string[] = [];
  if (offered.length > 0) {
    io.say(`   optional steps: ${offered.map((s) => `${s.id} (${s.key})`).join('; ')}`);
    const fallback = offered.filter(includedByDefault).map((s) => s.id).join(',') || 'none';
    const picked = await io.ask(`   Include which optional steps (comma-separated ids, or none) [${fallback}]:`, fallback);
    optionalSteps = picked.trim() === 'none' ? [] : picked.split(',').map((s) => s.trim()).filter(Boolean);
  }
  const approved = await approvePlan(rt, rules, planId, who, new Date(), { optionalSteps });
  if (!approved.ok || !approved.jobId) {
    explain(io, approved);
    return;
  }
  io.say(`   approved by ${who}; apply job ${approved.jobId} queued`);
  const again = await approvePlan(rt, rules, planId, who);
  io.say(`   a second click on Approve: ${again.ok ? 'queued AGAIN (bug!)' : again.message.replace(/\*/g, '')}`);

  io.say('\n== apply -> verify (runbook steps 4-6, 8)');
  io.say(renderApplyOutcomeText(await waitForJob(rt, approved.jobId)));

  const answer = await io.ask('\n   Roll back this change? [Y/n]:', 'y');
  if (!/^y/i.test(answer)) return;
  const rollback = await requestRollback(rt, rules, planId, who);
  if (!rollback.ok || !rollback.jobId) {
    explain(io, rollback);
    return;
  }
  io.say('\n== roll back');
  io.say(renderApplyOutcomeText(await waitForJob(rt, rollback.jobId)));
  const final = await rt.plans.get(planId);
  io.say(`   plan state: ${final?.status ?? 'unknown'}`);
}
