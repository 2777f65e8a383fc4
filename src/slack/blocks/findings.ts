/**
 * The findings message: what the check saw, what it concluded, and the plan with
 * Approve / Reject. The same body is re-rendered after the decision or expiry with the
 * buttons replaced by who decided and when.
 *
 * Whatever the report holds (1,000 findings, 10,000-character strings), the message
 * stays within Slack's limits and our BUDGETS; what does not fit is cut with
 * "… and N more" and the full detail is returned as `overflow` for a thread reply.
 */
import type { CheckReport, Finding, PlanStep } from '../../core/model.js';
import { describeStep } from '../../apply/steps/registry.js';
import {
  actions,
  checkboxes,
  blockChars,
  button,
  code,
  codeBlockBody,
  confirmDialog,
  context,
  divider,
  esc,
  fields,
  header,
  int,
  oneLine,
  pct,
  section,
  severityEmoji,
  severityRank,
  slackDate,
  user,
  worstSeverity,
} from './kit.js';
import { BUDGETS, LIMITS, cutAtBoundary, fitLines, truncate, truncateMrkdwn } from './limits.js';
import type { Block, DecisionInput, ExpiredInput, FindingsOptions, OfflineInput, RenderedFindings, RenderedMessage } from './types.js';

export const ACTION_IDS = {
  approve: 'plan_approve',
  approveAll: 'plan_approve_all',
  reject: 'plan_reject',
  rollback: 'plan_rollback',
  /** The checkbox group choosing optional steps; Approve reads its state. */
  optionalSteps: 'plan_optional_steps',
} as const;

export const BLOCK_IDS = {
  header: 'findings_header',
  summary: 'findings_summary',
  numbers: 'findings_numbers',
  talkers: 'findings_talkers',
  states: 'findings_states',
  findingsMore: 'findings_more',
  planTitle: 'plan_title',
  planNotes: 'plan_notes',
  actions: 'plan_actions',
  optionalSteps: 'plan_optional',
  footer: 'plan_footer',
  offline: 'findings_offline',
} as const;

/** What a reader must know about a report read from a saved file (shown at its top and under its plan). */
export const OFFLINE_NOTE =
  'OFFLINE: from a saved file, not approvable. Nothing here was read from the gateway now; run `/conntrack check <gateway>` where the bot reaches it for an approvable plan, or apply the steps by hand.';

type Footer =
  | { kind: 'buttons'; opts: FindingsOptions }
  | { kind: 'decision'; input: DecisionInput }
  | { kind: 'expired'; input: ExpiredInput }
  | { kind: 'offline'; input: OfflineInput };

/** Records whether anything had to be left out, so the caller gets `overflow`. */
class Cuts {
  any = false;
  mark(did: boolean): void {
    if (did) this.any = true;
  }
}

function evidenceValue(v: number | string): string {
  if (typeof v === 'number') return Number.isInteger(v) ? int(v) : String(Math.round(v * 1000) / 1000);
  return v;
}

/**
 * One line of at most `max` units; looks only at a prefix of the input, so a
 * 10,000-character value costs as much as a short one. Marks `cuts` when shortened.
 */
function clip(s: string, max: number, cuts: Cuts, keepSpaces = false): string {
  const prefix = s.length > max * 4 + 16 ? cutAtBoundary(s, max * 4 + 16) : s;
  const line = keepSpaces ? prefix.replace(/[\r\n\t\v\f\u2028\u2029]+/g, ' ') : oneLine(prefix);
  const t = truncate(line, max);
  cuts.mark(prefix !== s || t !== line);
  return t;
}

/** A list rendered as a code block inside one field, capped in lines and characters. */
function listField(title: string, lines: readonly string[], cuts: Cuts, more: (n: number) => string, maxLines: number = BUDGETS.topListLines): string {
  if (lines.length === 0) return `*${title}*\n_none_`;
  const shown = lines.slice(0, maxLines).map((l) => codeBlockBody(clip(l, BUDGETS.listLine, cuts, true)));
  const head = `*${title}*\n\`\`\``;
  const fit = fitLines(shown, Math.min(BUDGETS.listField, LIMITS.sectionFieldText) - head.length - 4, more, { hidden: lines.length - shown.length });
  cuts.mark(fit.omitted > 0);
  return `${head}${fit.text}\n\`\`\``;
}

function countedLines(list: readonly { key: string; count: number }[]): string[] {
  const width = Math.max(0, ...list.slice(0, BUDGETS.topListLines).map((c) => int(c.count).length));
  return list.map((c) => `${int(c.count).padStart(width)}  ${c.key}`);
}

function sortedFindings(findings: readonly Finding[]): Finding[] {
  return findings
    .map((f, i) => ({ f, i }))
    .sort((a, b) => severityRank(a.f.severity) - severityRank(b.f.severity) || a.i - b.i)
    .map((x) => x.f);
}

function findingText(f: Finding, max: number, cuts: Cuts): string {
  const title = `${severityEmoji(f.severity)} *${esc(clip(f.title, max, cuts))}*`;
  const detailRaw = f.detail ? (f.detail.length > max * 2 ? cutAtBoundary(f.detail, max * 2) : f.detail).trim() : '';
  cuts.mark(f.detail !== undefined && detailRaw.length < f.detail.trim().length);
  const detail = esc(detailRaw);
  const entries = Object.entries(f.evidence);
  const evidence = entries.slice(0, BUDGETS.evidenceLines).map(([k, v]) => `• ${esc(clip(k, 120, cuts))}: ${esc(clip(evidenceValue(v), 240, cuts))}`);
  const ev = fitLines(evidence, Math.max(0, max - title.length - Math.min(detail.length, max / 2) - 2), (n) => `• … and ${n} more`, {
    hidden: entries.length - evidence.length,
  });
  cuts.mark(ev.omitted > 0);
  const full = [title, detail, ev.text].filter((s) => s !== '').join('\n');
  const text = truncateMrkdwn(full, max);
  cuts.mark(text !== full);
  return text;
}

function stepLine(step: PlanStep, index: number, cuts: Cuts): string {
  const v = (s: string): string => code(clip(s, BUDGETS.stepValue, cuts));
  let line = `${index + 1}. ${v(step.key)}: ${v(step.current)} → ${v(step.proposed)}`;
  if (step.optional) line += ' _(optional)_';
  if (!step.writable) {
    line += ` :no_entry: _not writable here${step.whereToChange ? ` — change it in ${esc(clip(step.whereToChange, BUDGETS.stepLine, cuts))}` : ''}_`;
  }
  if (step.why.trim() !== '') line += `\n      ${esc(clip(step.why, BUDGETS.stepLine, cuts))}`;
  const cut = truncateMrkdwn(line, BUDGETS.stepLine);
  cuts.mark(cut !== line);
  return cut;
}

/** Pack lines into sections of at most `max` characters each. */
function packSections(lines: readonly string[], max: number, blockIdPrefix: string): Block[] {
  const out: Block[] = [];
  let current = '';
  for (const line of lines) {
    if (current !== '' && current.length + 1 + line.length > max) {
      out.push(section(current, `${blockIdPrefix}_${out.length}`));
      current = '';
    }
    current = current === '' ? line : `${current}\n${line}`;
  }
  if (current !== '') out.push(section(current, `${blockIdPrefix}_${out.length}`));
  return out;
}

function headerText(report: CheckReport, offline: boolean): string {
  const worst = worstSeverity(report.findings.map((f) => f.severity));
  return offline ? `${severityEmoji(worst)} OFFLINE saved file: ${oneLine(report.gateway)}` : `${severityEmoji(worst)} conntrack check: ${oneLine(report.gateway)}`;
}

function numbersFields(report: CheckReport): string[] {
  const c = report.conntrack;
  const d = report.drops;
  const perBucket = c.buckets > 0 ? (c.count / c.buckets).toFixed(1) : '?';
  const last = d.lastTableFullAt ? `, last ${slackDate(d.lastTableFullAt)}` : d.tableFullMessages > 0 ? ', time unknown' : '';
  const t = report.table;
  return [
    `*Entries*\n${int(c.count)} / ${int(c.max)} (${pct(c.percent)})`,
    `*Hash buckets*\n${int(c.buckets)} (${perBucket} per bucket)`,
    `*Dropped* (\`drop\`)\n${int(d.drop)}`,
    `*Early drops*\n${int(d.earlyDrop)}`,
    `*Insert failed*\n${int(d.insertFailed)}`,
    `*"table full" in kernel log*\n${int(d.tableFullMessages)}${last}`,
    `*Assured / unreplied*\n${int(t.assured)} / ${int(t.unreplied)} of ${int(t.entries)}${t.approximate ? ' (approx.)' : ''}`,
    `*Kernel*\n${esc(truncate(oneLine(report.facts.kernelRelease), 100)) || '?'}`,
  ];
}

/** One checkbox per optional step: what it does, in at most 75 characters. */
export function optionalStepOption(step: PlanStep): { text: string; value: string; description: string } {
  const { text, description } = describeStep(step);
  return { text: oneLine(text), value: step.id, description: oneLine(description) };
}

function footerBlocks(report: CheckReport, footer: Footer, planId: string): { blocks: Block[]; status: string } {
  const steps = report.plan.steps;
  const byDefault = steps.filter((s) => !s.optional && s.writable).length;
  const optional = steps.filter((s) => s.optional).length;
  const gw = esc(oneLine(report.gateway));
  const planRef = `plan ${code(planId)}`;
  switch (footer.kind) {
    case 'buttons': {
      const o = footer.opts;
      const meta = `Requested by ${user(o.requestedBy)} · ${planRef} · expires ${slackDate(o.expiresAt)}`;
      if (o.approvable && steps.length > 0) {
        const approve = button({
          text: 'Approve',
          actionId: ACTION_IDS.approve,
          value: planId,
          style: 'primary',
          confirm: confirmDialog(
            `Apply this plan to ${oneLine(report.gateway)}?`,
            `${byDefault} step(s) will be changed on *${gw}*, read back and verified; a Roll back button follows the result.${optional > 0 ? ' Optional steps: only those ticked above.' : ''}`,
            'Apply',
            'Cancel',
            'primary',
          ),
        });
        const reject = button({ text: 'Reject', actionId: ACTION_IDS.reject, value: planId, style: 'danger' });
        const optionalSteps = steps.filter((s) => s.optional && s.writable);
        const optionalWritable = optionalSteps.length;
        const approveAll =
          optionalWritable > 0
            ? [
                button({
                  text: 'Approve + optional',
                  actionId: ACTION_IDS.approveAll,
                  value: planId,
                  confirm: confirmDialog(
                    `Apply this plan and its optional steps to ${oneLine(report.gateway)}?`,
                    `${byDefault} step(s) and ${optionalWritable} optional step(s) (NOTRACK exemptions, deleting idle entries) will be applied on *${gw}* and verified.`,
                    'Apply all',
                    'Cancel',
                    'primary',
                  ),
                }),
              ]
            : [];
        const scope = `On approval: ${byDefault} step(s) applied${optional > 0 ? `, plus the optional steps ticked above (Approve + optional: all ${optionalWritable})` : ''}.`;
        // Each optional step is approvable on its own: tick it, then Approve.
        const choose = optionalWritable > 0 ? [actions([checkboxes(ACTION_IDS.optionalSteps, optionalSteps.map(optionalStepOption))], BLOCK_IDS.optionalSteps)] : [];
        return { blocks: [...choose, actions([approve, ...approveAll, reject], BLOCK_IDS.actions), context([scope, meta], BLOCK_IDS.footer)], status: 'awaiting approval' };
      }
      const why =
        steps.length === 0
          ? ':white_check_mark: No changes proposed.'
          : steps.every((s) => !s.writable)
            ? ':no_entry: None of these changes can be made from this session; make them where each step says.'
            : ':information_source: This plan is for information; it cannot be approved from here.';
      return { blocks: [context([why, meta], BLOCK_IDS.footer)], status: steps.length === 0 ? 'no changes' : 'not approvable' };
    }
    case 'decision': {
      const i = footer.input;
      const verb = i.decision === 'approved' ? ':white_check_mark: *Approved*' : ':no_entry_sign: *Rejected*';
      const next = i.decision === 'approved' ? ' — applying now; this message will show the result.' : '.';
      const items = [`${verb} by ${user(i.by)} ${slackDate(i.at)}${next}`];
      if (i.reason && i.reason.trim() !== '') items.push(truncateMrkdwn(`Reason: ${esc(truncate(oneLine(i.reason), 500))}`, 600));
      items.push(`${i.requestedBy ? `Requested by ${user(i.requestedBy)} · ` : ''}${planRef}`);
      return { blocks: [context(items, BLOCK_IDS.footer)], status: i.decision };
    }
    case 'offline': {
      const i = footer.input;
      const items = [`:floppy_disk: ${OFFLINE_NOTE}`, `Shared by ${user(i.sharedBy)} · ${code(truncate(oneLine(i.fileName), 120))} · taken ${slackDate(i.collectedAt)}`];
      return { blocks: [context(items, BLOCK_IDS.footer)], status: 'offline, not approvable' };
    }
    case 'expired': {
      const i = footer.input;
      const items = [
        `:hourglass: *Expired* ${slackDate(i.expiresAt)} without a decision. The gateway may have changed: run \`/conntrack check ${gw}\` again.`,
        `${i.requestedBy ? `Requested by ${user(i.requestedBy)} · ` : ''}${planRef}`,
      ];
      return { blocks: [context(items, BLOCK_IDS.footer)], status: 'expired' };
    }
  }
}

/** Accumulates lines up to a character cap; everything past the cap is counted, not built. */
class CappedText {
  private readonly parts: string[] = [];
  private size = 0;
  private dropped = 0;
  constructor(private readonly cap: number) {}
  line(s: string): void {
    if (this.dropped > 0 || this.size + s.length + 1 > this.cap) {
      this.dropped += 1;
      return;
    }
    this.parts.push(s);
    this.size += s.length + 1;
  }
  toString(): string {
    const text = this.parts.join('\n');
    return this.dropped > 0 ? `${text}\n… ${this.dropped} more line(s) left out.` : text;
  }
}

/** One value of the plain-text report: single line, at most `max` units. */
function ov(s: string | number, max = 2000): string {
  const str = String(s);
  return truncate((str.length > max * 2 ? cutAtBoundary(str, max * 2) : str).replace(/\s+/g, ' ').trim(), max);
}

/**
 * The report as plain text for a thread reply or a file: every finding with all its
 * evidence and every plan step first, then the lists. Capped at BUDGETS.overflowChars;
 * single values at 2,000 characters.
 */
export function findingsOverflow(report: CheckReport, planId: string): string {
  const cap = BUDGETS.overflowChars - 400;
  // Each part gets its share, so 1,000 long findings cannot push the plan out.
  const head = new CappedText(Math.floor(cap * 0.02));
  const findings = new CappedText(Math.floor(cap * 0.55));
  const plan = new CappedText(Math.floor(cap * 0.3));
  const rest = new CappedText(Math.floor(cap * 0.13));
  const c = report.conntrack;
  const d = report.drops;
  head.line(`conntrack check: ${ov(report.gateway, 300)} (checked ${ov(report.checkedAt, 60)}), plan ${planId}`);
  head.line(`Entries: ${c.count}/${c.max} (${c.percent.toFixed(1)}%), buckets ${c.buckets}`);
  head.line(`Drops: drop=${d.drop} early_drop=${d.earlyDrop} insert_failed=${d.insertFailed} table_full_messages=${d.tableFullMessages} last=${ov(d.lastTableFullAt ?? 'n/a', 60)}`);
  findings.line(`Findings (${report.findings.length}):`);
  for (const f of sortedFindings(report.findings)) {
    findings.line(`[${f.severity}] ${ov(f.title)}`);
    if (f.detail) findings.line(`    ${ov(f.detail)}`);
    for (const [k, v] of Object.entries(f.evidence)) findings.line(`    ${ov(k, 300)}: ${ov(v, 1000)}`);
  }
  plan.line(`Plan (${report.plan.steps.length} steps):`);
  report.plan.steps.forEach((st, i) => {
    const marks = [st.optional ? 'optional' : '', st.writable ? '' : `not writable here${st.whereToChange ? `: change it in ${ov(st.whereToChange, 500)}` : ''}`].filter(Boolean);
    plan.line(` ${i + 1}. ${ov(st.key, 500)}: ${ov(st.current, 500)} -> ${ov(st.proposed, 500)}${marks.length > 0 ? ` [${marks.join('; ')}]` : ''}`);
    if (st.why) plan.line(`    ${ov(st.why)}`);
  });
  if (report.plan.notes.length > 0) {
    plan.line('Notes:');
    for (const n of report.plan.notes) plan.line(`  - ${ov(n)}`);
  }
  const list = (title: string, items: readonly { key: string; count: number }[]): void => {
    rest.line(`${title} (${items.length}${report.table.approximate ? ', approximate' : ''}):`);
    for (const i of items.slice(0, 100)) rest.line(`  ${String(i.count).padStart(8)}  ${ov(i.key, 200)}`);
    if (items.length > 100) rest.line(`  … and ${items.length - 100} more`);
  };
  list('Top sources', report.topSources);
  list('Top destinations', report.topDestinations);
  list('States', Object.entries(report.states).sort((x, y) => y[1] - x[1]).map(([key, count]) => ({ key, count })));
  rest.line('Timeouts (s):');
  for (const [k, v] of Object.entries(report.timeouts).slice(0, 100)) rest.line(`  ${ov(k, 200)} = ${v}`);
  return [head, findings, plan, rest].map(String).join('\n\n');
}

function countBySeverity(findings: readonly Finding[]): string[] {
  const sum = new Map<string, number>();
  for (const f of findings) sum.set(f.severity, (sum.get(f.severity) ?? 0) + 1);
  return [...sum.entries()].sort((x, y) => severityRank(x[0]) - severityRank(y[0])).map(([sev, n]) => `${n} ${esc(sev)}`);
}

/** The plan: key: current -> proposed, marking optional and not-writable steps. Computes only the lines it shows. */
function planBlocks(report: CheckReport, cuts: Cuts): Block[] {
  const steps = report.plan.steps;
  const optional = steps.filter((s) => s.optional).length;
  const notWritable = steps.filter((s) => !s.writable).length;
  const title = `*Change plan* — ${steps.length} step(s)${optional > 0 ? `, ${optional} optional` : ''}${notWritable > 0 ? `, ${notWritable} not writable here` : ''}`;
  if (steps.length === 0) return [section(`${title}\n_Nothing to change._`, BLOCK_IDS.planTitle)];
  const more = (n: number): string => `… and ${n} more step(s): the full plan is in the thread.`;
  const budget = BUDGETS.planChars - title.length - 1;
  const lines: string[] = [];
  let used = 0;
  for (const [i, step] of steps.entries()) {
    const line = stepLine(step, i, cuts);
    if (lines.length > 0 && used + 1 + line.length + 1 + more(steps.length).length > budget) break;
    lines.push(line);
    used += line.length + 1;
  }
  const fit = fitLines(lines, budget, more, { hidden: steps.length - lines.length });
  cuts.mark(fit.omitted > 0);
  return packSections([title, ...fit.text.split('\n')], LIMITS.sectionText, 'plan_steps');
}

function notesBlocks(report: CheckReport, cuts: Cuts): Block[] {
  const all = report.plan.notes;
  if (all.length === 0) return [];
  const shown = all.slice(0, BUDGETS.notes).map((n) => truncateMrkdwn(`:memo: ${esc(clip(n, BUDGETS.noteChars, cuts))}`, BUDGETS.noteChars + 8));
  if (all.length > shown.length) {
    cuts.mark(true);
    shown.push(`… and ${all.length - shown.length} more note(s) in the thread.`);
  }
  return [context(shown, BLOCK_IDS.planNotes)];
}

/** Findings, worst first, each with its evidence: as many as fit in `budget` characters and BUDGETS.findingsShown. */
function findingBlocks(report: CheckReport, budget: number, cuts: Cuts): Block[] {
  const sorted = sortedFindings(report.findings);
  if (sorted.length === 0) return [section(':white_check_mark: No findings.', 'finding_0')];
  const moreReserve = 160;
  const room = Math.max(0, budget - moreReserve);
  const shownMax = Math.min(sorted.length, BUDGETS.findingsShown);
  const perFinding = Math.min(LIMITS.sectionText, BUDGETS.findingChars, Math.max(BUDGETS.findingMinChars, Math.floor(room / shownMax)));
  const out: Block[] = [];
  let used = 0;
  for (const f of sorted.slice(0, shownMax)) {
    const left = room - used;
    if (left < 80) break;
    const text = findingText(f, Math.min(perFinding, left), cuts);
    out.push(section(text, `finding_${out.length}`));
    used += text.length;
  }
  const omitted = sorted.length - out.length;
  if (omitted > 0) {
    cuts.mark(true);
    out.push(context([`… and ${omitted} more finding(s) (${countBySeverity(sorted.slice(out.length)).join(', ')}): full detail in the thread.`], BLOCK_IDS.findingsMore));
  }
  return out;
}

function render(report: CheckReport, planId: string, footer: Footer): RenderedFindings {
  const cuts = new Cuts();
  const gwPlain = oneLine(report.gateway);

  const offline = footer.kind === 'offline' ? footer.input : null;
  const top: Block[] = [header(headerText(report, offline !== null), BLOCK_IDS.header)];
  const counts = countBySeverity(report.findings);
  const checkedIn = report.table.durationMs > 0 ? ` in ${(report.table.durationMs / 1000).toFixed(1)} s` : '';
  const found = `${report.findings.length} finding(s)${counts.length > 0 ? `: ${counts.join(', ')}` : ''}`;
  if (offline) {
    top.push(
      context(
        [
          `:floppy_disk: *OFFLINE*: from a saved file, taken at ${slackDate(offline.collectedAt)} (the gateway's clock), *not approvable*`,
          `${code(truncate(oneLine(offline.fileName), 120))} · ${int(offline.lines)} lines · ${int(offline.bytes)} bytes · ${found}`,
        ],
        BLOCK_IDS.offline,
      ),
    );
  } else {
    top.push(context([`Checked ${slackDate(report.checkedAt)}${checkedIn} · ${found}`], BLOCK_IDS.summary));
  }
  top.push(fields(numbersFields(report), BLOCK_IDS.numbers));
  const approx = report.table.approximate ? ' (approx.)' : '';
  const more = (n: number): string => `… and ${n} more`;
  top.push(
    fields(
      [listField(`Top sources${approx}`, countedLines(report.topSources), cuts, more), listField(`Top destinations${approx}`, countedLines(report.topDestinations), cuts, more)],
      BLOCK_IDS.talkers,
    ),
  );
  const states = Object.entries(report.states)
    .sort((x, y) => y[1] - x[1])
    .map(([key, count]) => ({ key, count }));
  const timeouts = Object.entries(report.timeouts).map(([k, v]) => `${k.replace(/^nf_conntrack_/, '')} ${int(v)}`);
  top.push(fields([listField('States', countedLines(states), cuts, more, BUDGETS.stateLines), listField('Timeouts (s)', timeouts, cuts, more)], BLOCK_IDS.states));
  top.push(divider());

  const plan: Block[] = [divider(), ...planBlocks(report, cuts), ...notesBlocks(report, cuts)];
  const foot = footerBlocks(report, footer, planId);

  // Findings get what the rest leaves of the message budget.
  const fixed = blockChars(top) + blockChars(plan) + blockChars(foot.blocks);
  const findings = findingBlocks(report, Math.min(BUDGETS.findingsChars, BUDGETS.messageChars - fixed), cuts);
  const blocks = [...top, ...findings, ...plan, ...foot.blocks];

  const worst = worstSeverity(report.findings.map((f) => f.severity));
  const c = report.conntrack;
  const planPart = offline ? `plan: ${report.plan.steps.length} step(s)` : `plan ${planId}: ${report.plan.steps.length} step(s)`;
  const text = truncate(
    `${offline ? 'OFFLINE (saved file) ' : ''}${severityEmoji(worst)} ${truncate(gwPlain, 100)}: conntrack table ${pct(c.percent)} full (${int(c.count)}/${int(c.max)}), ${report.findings.length} finding(s), worst ${worst}; ${planPart}, ${foot.status}.`,
    BUDGETS.fallbackText,
  );
  const result: RenderedFindings = { text, blocks };
  if (cuts.any) result.overflow = findingsOverflow(report, planId);
  return result;
}

function checkPlanId(planId: string): void {
  if (planId.length === 0 || planId.length > LIMITS.buttonValue) throw new Error(`plan id must be 1..${LIMITS.buttonValue} characters`);
}

/** The findings message with the plan and, when approvable, Approve / Reject (value: the plan id only). */
export function renderFindings(report: CheckReport, opts: FindingsOptions): RenderedFindings {
  checkPlanId(opts.planId);
  return render(report, opts.planId, { kind: 'buttons', opts });
}

/** The findings message after approval or rejection: buttons gone, who decided and when. */
export function renderDecision(input: DecisionInput): RenderedFindings {
  checkPlanId(input.planId);
  return render(input.report, input.planId, { kind: 'decision', input });
}

/** The findings message after the approval window closed without a decision. */
export function renderExpired(input: ExpiredInput): RenderedFindings {
  checkPlanId(input.planId);
  return render(input.report, input.planId, { kind: 'expired', input });
}

/**
 * The findings of a saved file (offline): the same body as a live check's, marked OFFLINE with
 * the time the file was taken, and never a button (no plan record: nothing to approve).
 */
export function renderOfflineFindings(report: CheckReport, input: OfflineInput): RenderedFindings {
  return render(report, 'offline', { kind: 'offline', input });
}

/** Convenience for callers that only need text + blocks. */
export function withoutOverflow(r: RenderedFindings): RenderedMessage {
  return { text: r.text, blocks: r.blocks };
}
