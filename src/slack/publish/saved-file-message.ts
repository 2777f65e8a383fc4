/**
 * The answer to a file shared in Slack (the saved-file worker's publisher): the offline report
 * in the file's thread (renderOfflineFindings: marked OFFLINE, taken-at time, no buttons), with
 * what did not fit in up to OVERFLOW_REPLIES thread replies; or one clear reply saying why the
 * file was not analysed. File names and reasons may carry user text: escaped.
 */
import type { SavedAnalysis } from '../../check/analyze-saved.js';
import type { SavedFilePublisher, SharedFile } from '../../worker/saved-file-processor.js';
import { renderOfflineFindings, renderOverflowReplies, withoutOverflow } from '../blocks/index.js';
import { code, esc, oneLine, section } from '../blocks/kit.js';
import { truncate } from '../blocks/limits.js';
import { OVERFLOW_REPLIES } from './check-message.js';
import type { MessagePlace, SlackMessageWriter } from './message-writer.js';

function placeOf(file: SharedFile): MessagePlace {
  return { channel: file.channel, ...(file.threadTs ? { threadTs: file.threadTs } : {}) };
}

export class SlackSavedFilePublisher implements SavedFilePublisher {
  constructor(private readonly writer: SlackMessageWriter) {}

  async report(file: SharedFile, analysis: SavedAnalysis, meta: { bytes: number; sharedBy: string }): Promise<void> {
    const rendered = renderOfflineFindings(analysis.report, {
      fileName: file.name,
      collectedAt: analysis.collectedAt,
      lines: analysis.lines,
      bytes: meta.bytes,
      sharedBy: meta.sharedBy,
    });
    const place = placeOf(file);
    const ref = await this.writer.post(place, withoutOverflow(rendered));
    if (!rendered.overflow) return;
    // Slack threads have one level: replies go under the file's message, or under the report.
    const thread = { channel: ref.channel, ts: file.threadTs ?? ref.ts };
    const replies = renderOverflowReplies(rendered.overflow, { title: `Full detail for ${analysis.report.gateway} (offline)`, maxMessages: OVERFLOW_REPLIES });
    for (const reply of replies.messages) await this.writer.reply(thread, reply);
  }

  async refuse(file: SharedFile, reason: string): Promise<void> {
    const name = code(truncate(oneLine(file.name), 120));
    const why = esc(truncate(oneLine(reason), 1500));
    const how = 'Make a saved file with `conntrack-ops collect-script > collect.sh` and `ssh root@GATEWAY sh -s < collect.sh > GATEWAY.saved`, then share GATEWAY.saved here.';
    await this.writer.post(placeOf(file), {
      text: truncate(`Not analysed: ${oneLine(file.name)}: ${oneLine(reason)}`, 300),
      blocks: [section(`:warning: *Not analysed:* ${name}: ${why}\n${how}`, 'saved_file_refused')],
    });
  }
}
