/**
 * The Block Kit subset the renderers produce, and the inputs of the renderers that do
 * not take the shared model (apply results, status, history). The block types are a
 * subset of @slack/types' KnownBlock: the message writer converts them in one place
 * (toSlackBlocks in src/slack/publish/message-writer.ts, checked by the compiler), and
 * respond() / ack() take them as they are.
 */
import type { CheckReport } from '../../core/model.js';

export interface PlainText {
  type: 'plain_text';
  text: string;
  emoji?: boolean;
}

export interface Mrkdwn {
  type: 'mrkdwn';
  text: string;
  verbatim?: boolean;
}

export type TextObject = PlainText | Mrkdwn;

export interface ConfirmDialog {
  title: PlainText;
  text: TextObject;
  confirm: PlainText;
  deny: PlainText;
  style?: 'primary' | 'danger';
}

export interface ButtonElement {
  type: 'button';
  text: PlainText;
  action_id: string;
  value?: string;
  style?: 'primary' | 'danger';
  confirm?: ConfirmDialog;
  accessibility_label?: string;
}

export interface OptionObject {
  text: PlainText;
  value: string;
  description?: PlainText;
}

export interface CheckboxesElement {
  type: 'checkboxes';
  action_id: string;
  options: OptionObject[];
}

export interface SectionBlock {
  type: 'section';
  block_id?: string;
  text?: TextObject;
  fields?: TextObject[];
  expand?: boolean;
}

export interface HeaderBlock {
  type: 'header';
  block_id?: string;
  text: PlainText;
}

export interface DividerBlock {
  type: 'divider';
  block_id?: string;
}

export interface ContextBlock {
  type: 'context';
  block_id?: string;
  elements: TextObject[];
}

export interface ActionsBlock {
  type: 'actions';
  block_id?: string;
  elements: (ButtonElement | CheckboxesElement)[];
}

export type Block = SectionBlock | HeaderBlock | DividerBlock | ContextBlock | ActionsBlock;

/** What every renderer returns: fallback text plus blocks, ready for chat.postMessage / chat.update / respond(). */
export interface RenderedMessage {
  text: string;
  blocks: Block[];
}

/** renderFindings' result: `overflow` is the full plain-text detail when anything had to be cut. */
export interface RenderedFindings extends RenderedMessage {
  overflow?: string;
}

// ---- renderer inputs ---------------------------------------------------------

/** `skipped`: finished without being done (an apply step refused by the pre-flight, not chosen, not reached). */
export type ProgressStatus = 'pending' | 'running' | 'done' | 'skipped' | 'failed';

export interface ProgressStep {
  name: string;
  status: ProgressStatus;
  detail?: string;
}

export interface FindingsOptions {
  planId: string;
  /** Slack user id of the requester. */
  requestedBy: string;
  /** ISO time after which the plan can no longer be approved. */
  expiresAt: string;
  /** Show Approve / Reject. */
  approvable: boolean;
}

/** A report read from a saved file (offline): never approvable, no plan record behind it. */
export interface OfflineInput {
  /** The file's name as shared in Slack. */
  fileName: string;
  /** When the gateway ran the collect script (its clock, ISO). */
  collectedAt: string;
  lines: number;
  bytes: number;
  /** Slack user id of who shared the file. */
  sharedBy: string;
}

export interface DecisionInput {
  report: CheckReport;
  planId: string;
  decision: 'approved' | 'rejected';
  /** Slack user id of the approver / rejecter. */
  by: string;
  /** ISO time of the decision. */
  at: string;
  requestedBy?: string;
  /** Optional free text (e.g. why it was rejected). */
  reason?: string;
}

export interface ExpiredInput {
  report: CheckReport;
  planId: string;
  expiresAt: string;
  requestedBy?: string;
}

/**
 * One step of an apply or roll back, as the apply feature reports it. Kept loose on
 * purpose (that feature is built in parallel): unknown statuses are shown as text.
 */
export interface ApplyStepView {
  key: string;
  stepId?: string;
  kind?: string;
  status: 'applied' | 'unchanged' | 'skipped' | 'failed' | 'rolled-back' | 'not-run' | (string & {});
  before?: string | number | null;
  after?: string | number | null;
  /** What the step wanted (shown when `after` differs, e.g. a read-only key). */
  expected?: string | number | null;
  detail?: string;
}

export interface ApplyCheckView {
  name: string;
  ok: boolean;
  detail?: string;
}

export interface ApplyResultView {
  planId: string;
  gateway: string;
  action?: 'apply' | 'rollback';
  outcome: 'applied' | 'partial' | 'failed' | 'rolled-back' | 'rollback-failed' | (string & {});
  /** Slack user id who approved / asked for the roll back. */
  by?: string;
  /** ISO time the run finished. */
  at?: string;
  durationMs?: number;
  steps: ApplyStepView[];
  verify?: ApplyCheckView[];
  notes?: string[];
  /** Show the Roll back button. Default: an apply that changed at least one step. */
  canRollBack?: boolean;
}

/** Structural twin of the history store's LastCheck. */
export interface LastCheckView {
  at: string;
  planId: string;
  worst: string;
  count: number;
  max: number;
  percent: number;
  findings: string[];
}

export interface RunningJobView {
  id: string;
  gateway: string;
  name: string;
}

export interface StatusInput {
  /** The gateway asked about, or null for all. */
  gateway: string | null;
  lastChecks: Record<string, LastCheckView>;
  running: RunningJobView[];
  /** What the watch polls: interval, last poll, open episode. */
  watched?: WatchedView[];
}

export interface WatchedView {
  gateway: string;
  intervalSeconds: number;
  lastPollAt: string | null;
  lastPercent: number | null;
  pollError: string | null;
  openEpisode: { level: string; kind: string; openedAt: string; peakPercent: number } | null;
}

/** Structural twin of the history store's HistoryRecord. */
export interface HistoryRecordView {
  at: string;
  gateway: string;
  event: string;
  actor: string;
  planId: string | null;
  summary: string;
}

export interface CommandHelp {
  usage: string;
  description: string;
}
