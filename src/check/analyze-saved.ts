/**
 * A check without SSH: a saved file (the collect script's output, collect-script.ts) read
 * as a stream into the same parsers, aggregator, findings and plan as a live check
 * (parseFacts + withoutForeignTableFull, TableAggregator, buildReport).
 *
 * Streamed: the facts part (a few hundred KB at most) is kept until the table dump starts;
 * every dump line goes to the aggregator and is dropped, so memory does not grow with the
 * table (a saved file of millions of lines reads in bounded memory).
 */
import type { GatewayConfig } from '../config/inventory.js';
import type { CheckReport } from '../core/model.js';
import { TableAggregator } from '../analysis/table/aggregator.js';
import { MAX_LINE_BYTES } from '../analysis/table/aggregate-lines.js';
import { ByteLines } from '../infra/byte-lines.js';
import { DEFAULT_ESTABLISHED_TIMEOUT } from '../analysis/kernel-defaults.js';
import {
  SAVED_COLLECTED_AT_LINE,
  SAVED_FORMAT_VERSION,
  SAVED_MAGIC_LINE,
  SAVED_TABLE_DUMP_BEGIN,
  SAVED_TABLE_DUMP_END_LINE,
  SECTION_BEGIN,
  SECTION_END,
} from '../diagnostics/dump-format.js';
import { parseFacts } from '../diagnostics/facts-script.js';
import { IDLE_THRESHOLDS } from '../plan/compute.js';
import { buildReport, withoutForeignTableFull } from './run-check.js';

/** The facts part of a saved file is small; more than this before the table dump is not a saved file. */
export const MAX_SAVED_FACTS_CHARS = 16 * 1024 * 1024;

/** What an error message keeps of the dump's stderr. */
const MAX_DUMP_STDERR_CHARS = 300;

const AT = 64;

function tooMuchFacts(): SavedFileError {
  return new SavedFileError(`no table dump after ${MAX_SAVED_FACTS_CHARS} characters of facts: not a saved file, or a cut one`);
}

export class SavedFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SavedFileError';
  }
}

export interface SavedAnalysis {
  report: CheckReport;
  /** When the gateway ran the collect script (its own clock, UTC). */
  collectedAt: string;
  formatVersion: number;
  /** Lines read from the saved file. */
  lines: number;
}

/**
 * Analyse a saved file as the live check of that gateway at that moment would have:
 * the same report, findings and plan. `gatewayName` and `config` (thresholds, management
 * source, SSH port) come from the inventory when the gateway is in it.
 */
export async function analyzeSaved(
  readable: AsyncIterable<string | Buffer>,
  opts: { gatewayName: string; config: Pick<GatewayConfig, 'thresholds' | 'managementSource' | 'port'> },
): Promise<SavedAnalysis> {
  const started = performance.now();
  let lineCount = 0;
  let formatVersion: number | null = null;
  let collectedAt = '';
  const facts: string[] = [];
  let factsChars = 0;
  // where the reader is in the file (changed by the line callback)
  let phase = 'header' as 'header' | 'facts' | 'dump' | 'done';
  let dumpExit: number | null = null;
  let factsDoneAt = 0;
  let dumpStderr = '';
  const table = new TableAggregator({ establishedTimeout: DEFAULT_ESTABLISHED_TIMEOUT, idleThresholds: [...IDLE_THRESHOLDS] });

  const onLine = (line: string): void => {
    lineCount++;
    if (phase === 'header') {
      const magic = SAVED_MAGIC_LINE.exec(line);
      if (!magic) throw new SavedFileError('not a conntrack-ops saved file (its first line is not "@@conntrack-ops-saved N@@"): make it with `conntrack-ops collect-script`');
      formatVersion = Number(magic[1]);
      if (formatVersion > SAVED_FORMAT_VERSION) throw new SavedFileError(`saved format ${formatVersion} is newer than this conntrack-ops reads (${SAVED_FORMAT_VERSION})`);
      phase = 'facts';
      return;
    }
    if (phase === 'facts') {
      const at = SAVED_COLLECTED_AT_LINE.exec(line);
      if (at && facts.length === 0) {
        collectedAt = at[1] ?? '';
        return;
      }
      if (line === SAVED_TABLE_DUMP_BEGIN) {
        phase = 'dump';
        lines.maxLineBytes = MAX_LINE_BYTES;
        factsDoneAt = performance.now();
        return;
      }
      factsChars += line.length + 1;
      if (factsChars > MAX_SAVED_FACTS_CHARS) throw tooMuchFacts();
      facts.push(line);
      return;
    }
    if (phase === 'dump') {
      // only the end marker is not an entry
      const end = SAVED_TABLE_DUMP_END_LINE.exec(line);
      if (end) {
        dumpExit = Number(end[1]);
        phase = 'done';
      } else {
        table.addLine(line);
      }
      return;
    }
    // 'done': the dump's stderr section (kept short for the error message); nothing else is read
    if (line.startsWith(SECTION_BEGIN) || line.startsWith(SECTION_END) || dumpStderr.length >= MAX_DUMP_STDERR_CHARS) return;
    dumpStderr = `${dumpStderr}${dumpStderr ? ' ' : ''}${line}`.slice(0, MAX_DUMP_STDERR_CHARS);
  };
  // A facts line may be long (nft -j prints the whole ruleset on one line: MBs on a Kubernetes
  // node), bounded by the facts limit; a dump line longer than MAX_LINE_BYTES is garbage.
  const lines = new ByteLines(
    MAX_SAVED_FACTS_CHARS,
    (buf, start, end) => {
      // dump lines are read in place; the end marker starts with "@"
      if (phase === 'dump' && buf[start] !== AT) {
        lineCount++;
        table.addLineBytes(buf, start, end);
      } else {
        onLine(buf.toString('utf8', start, end));
      }
    },
    (head) => {
      lineCount++;
      if (phase !== 'dump') throw tooMuchFacts();
      table.addUnparsedBytes(head);
    },
  );
  for await (const chunk of readable) lines.push(chunk);
  lines.end();

  if (formatVersion === null) throw new SavedFileError('the saved file is empty');
  if (phase === 'facts') throw new SavedFileError('the saved file ends before the table dump (cut while collecting?)');
  if (phase === 'dump') throw new SavedFileError('the table dump in the saved file is cut (no end marker): collect it again');
  const summary = table.finish();
  if (dumpExit !== 0) {
    throw new SavedFileError(`the table dump failed on the gateway (exit ${dumpExit}): ${dumpStderr.trim() || summary.unparsedSample.join(' | ').slice(0, MAX_DUMP_STDERR_CHARS)}`);
  }
  const at = Date.parse(collectedAt);
  const collectedIso = Number.isFinite(at) ? new Date(at).toISOString() : new Date().toISOString();
  const gatewayFacts = withoutForeignTableFull(parseFacts(facts.join('\n'), collectedIso));
  const timings = {
    factsMs: Math.round(factsDoneAt - started),
    tableDumpMs: Math.round(performance.now() - factsDoneAt),
  };
  const report = buildReport(opts.gatewayName, opts.config, gatewayFacts, summary, timings);
  return { report, collectedAt: collectedIso, formatVersion, lines: lineCount };
}
