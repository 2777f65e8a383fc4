/**
 * Block Kit renderers: pure functions from data to `{ text, blocks }`, within Slack's
 * limits whatever the data. Limits and truncation helpers live in limits.ts.
 */
export { ACTION_IDS, BLOCK_IDS, OFFLINE_NOTE, findingsOverflow, renderDecision, renderExpired, renderFindings, renderOfflineFindings, withoutOverflow } from './findings.js';
export { renderApplyResult } from './apply-result.js';
export { renderProgress, type ProgressOf } from './step-progress.js';
export { renderFollowUp } from './follow-up-verdict.js';
export { COMMANDS, renderHelp, renderHistory, renderStatus, renderUsage } from './command-replies.js';
export { renderOverflowReplies, type OverflowReplies } from './overflow.js';
export { BUDGETS, LIMITS, chunkText, cutAtBoundary, fitLines, truncate, truncateMrkdwn, type LinesFit } from './limits.js';
export { blockChars, code, esc, oneLine, severityEmoji, slackDate, worstSeverity } from './kit.js';
export type * from './types.js';
