/**
 * The saved-file job: a file shared in Slack, read as the collect script's output and analysed
 * offline (src/check/analyze-saved.ts), like `conntrack-ops analyze`. The file is streamed from
 * its source into the analyzer with a byte cap (never held whole); the report goes to the
 * file's thread, marked offline and never approvable (no plan record is made).
 *
 * Which files get an answer: every saved file (its first line is the saved-file magic). A file
 * that is not one gets "not a saved file" only when it was meant for the bot (named `*.saved`,
 * as the collect script's instructions name it, or shared in a direct message with the bot);
 * any other file shared in the channel (a screenshot, a log) is left alone, silently.
 */
import { UnrecoverableError, type Job } from 'bullmq';
import { findGateway, gatewayNameSchema, thresholdsSchema, type GatewayConfig, type Inventory } from '../config/inventory.js';
import { analyzeSaved, SavedFileError, type SavedAnalysis } from '../check/analyze-saved.js';
import { savedFileJobSchema, type SavedFileJob } from '../queue/jobs.js';

/** A file as the bot sees it in the conversation it was shared in. */
export interface SharedFile {
  id: string;
  name: string;
  /** Bytes, as the source declares them. */
  size: number;
  mimetype: string;
  /** The conversation the answer goes to. */
  channel: string;
  /** The share's message, whose thread the answer goes to (null: none known, answer in the channel). */
  threadTs: string | null;
}

/** Why a file was not analysed, in words for its channel. */
export class SharedFileRefusal extends Error {
  override name = 'SharedFileRefusal';
}

export interface SavedFileSource {
  /** The file as shared in `channel`; null when the bot cannot see it there (not a member, deleted). */
  describe(fileId: string, channel: string): Promise<SharedFile | null>;
  /** Its bytes as a stream; more than `maxBytes` ends it with a SharedFileRefusal. Stopping the iteration cancels the download. */
  open(file: SharedFile, maxBytes: number): AsyncIterable<Buffer>;
}

export interface SavedFilePublisher {
  /** The offline report in the file's thread. */
  report(file: SharedFile, analysis: SavedAnalysis, meta: { bytes: number; sharedBy: string }): Promise<void>;
  /** A clear reply saying why the file was not analysed. */
  refuse(file: SharedFile, reason: string): Promise<void>;
}

export interface SavedFileDeps {
  source: SavedFileSource;
  publisher: SavedFilePublisher;
  inventory: () => Inventory;
  maxBytes: number;
}

export interface SavedFileResult {
  fileId: string;
  outcome: 'analysed' | 'refused' | 'ignored';
  gateway?: string;
  findings?: number;
  lines?: number;
  bytes?: number;
  /** From the Slack event to the posted report (ms). */
  eventToReportMs?: number;
  reason?: string;
}

type ReportConfig = Pick<GatewayConfig, 'thresholds' | 'managementSource' | 'port'>;

/** A file the user meant for the bot: named like the collect script's output, or sent to the bot directly. */
export function meantForTheBot(file: Pick<SharedFile, 'name' | 'channel'>): boolean {
  return /\.saved$/i.test(file.name) || file.channel.startsWith('D');
}

/** Media are never saved files: not downloaded unless meant for the bot. */
function plainlyNotText(mimetype: string): boolean {
  return /^(image|video|audio)\//.test(mimetype) || mimetype === 'application/pdf' || mimetype === 'application/zip';
}

/** "gw-3.saved" -> gw-3 (with the inventory's thresholds when it names a known gateway, as `analyze --gateway gw-3`); else the defaults. */
export function reportTarget(fileName: string, inventory: Inventory): { gatewayName: string; config: ReportConfig } {
  const parsed = gatewayNameSchema.safeParse(fileName.replace(/\.[^.]*$/, ''));
  const gatewayName = parsed.success ? parsed.data : 'saved';
  if (Object.hasOwn(inventory.gateways, gatewayName)) return { gatewayName, config: findGateway(inventory, gatewayName) };
  return { gatewayName, config: { thresholds: thresholdsSchema.parse({}), port: 22, managementSource: undefined } };
}

/** Counts the bytes that pass, for the report. */
async function* counted(source: AsyncIterable<Buffer>, seen: { bytes: number }): AsyncGenerator<Buffer> {
  for await (const chunk of source) {
    seen.bytes += chunk.length;
    yield chunk;
  }
}

export function createSavedFileProcessor(deps: SavedFileDeps) {
  return async (job: Job<SavedFileJob, SavedFileResult>): Promise<SavedFileResult> => {
    const data = savedFileJobSchema.parse(job.data);
    const file = await deps.source.describe(data.fileId, data.channel);
    if (!file) return { fileId: data.fileId, outcome: 'ignored', reason: 'not visible to the bot in that channel' };
    const addressed = meantForTheBot(file);
    if (!addressed && plainlyNotText(file.mimetype)) return { fileId: file.id, outcome: 'ignored', reason: `not text (${file.mimetype})` };
    const refuse = async (reason: string): Promise<SavedFileResult> => {
      await deps.publisher.refuse(file, reason);
      return { fileId: file.id, outcome: 'refused', reason };
    };
    if (file.size > deps.maxBytes) {
      if (!addressed) return { fileId: file.id, outcome: 'ignored', reason: 'too large, and not named *.saved' };
      return refuse(`${file.size.toLocaleString('en-US')} bytes is more than this bot reads (${deps.maxBytes.toLocaleString('en-US')} bytes, SAVED_FILE_MAX_BYTES).`);
    }
    const target = reportTarget(file.name, deps.inventory());
    const seen = { bytes: 0 };
    let analysis: SavedAnalysis;
    try {
      analysis = await analyzeSaved(counted(deps.source.open(file, deps.maxBytes), seen), target);
    } catch (err) {
      if (err instanceof SharedFileRefusal) {
        if (!addressed) return { fileId: file.id, outcome: 'ignored', reason: err.message };
        await refuse(err.message);
        throw new UnrecoverableError(err.message);
      }
      if (err instanceof SavedFileError) {
        // A file that does not even start like a saved file, not meant for the bot: none of our business.
        if (!addressed && /not a conntrack-ops saved file|is empty/.test(err.message)) return { fileId: file.id, outcome: 'ignored', reason: 'not a saved file' };
        return refuse(err.message);
      }
      // A download that broke off (network, Slack 5xx) is retried; the last attempt tells the channel.
      if (addressed && job.attemptsMade + 1 >= (job.opts.attempts ?? 1)) await deps.publisher.refuse(file, `the download failed: ${(err as Error).message.slice(0, 300)}`);
      throw err;
    }
    await deps.publisher.report(file, analysis, { bytes: seen.bytes, sharedBy: data.sharedBy });
    return {
      fileId: file.id,
      outcome: 'analysed',
      gateway: analysis.report.gateway,
      findings: analysis.report.findings.length,
      lines: analysis.lines,
      bytes: seen.bytes,
      eventToReportMs: Math.round(Date.now() - Number(data.eventTs) * 1000),
    };
  };
}
