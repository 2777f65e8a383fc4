/** The follow-up verdict after an apply: did the drops stop? Posted in the plan's thread. */
import type { FollowUpVerdict } from '../../apply/follow-up.js';
import { code, context, esc, section } from './kit.js';
import type { RenderedMessage } from './types.js';

export function renderFollowUp(gateway: string, planId: string, v: FollowUpVerdict): RenderedMessage {
  const head = v.stopped
    ? `:white_check_mark: *Follow-up on ${esc(gateway)}: drops stopped.*`
    : `:warning: *Follow-up on ${esc(gateway)}: still dropping.* Run \`/conntrack check ${esc(gateway)}\` for a new plan.`;
  return {
    text: `Follow-up on ${gateway}: ${v.stopped ? 'drops stopped' : 'still dropping'}`,
    blocks: [section(`${head}\n${esc(v.summary)}`), context([`plan ${code(planId)}`])],
  };
}
