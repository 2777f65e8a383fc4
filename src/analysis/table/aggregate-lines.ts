/**
 * Streaming aggregation of a table dump: the dump is read chunk by chunk and split into
 * lines here (never buffered whole), with a bounded carry, and each line goes to the
 * TableAggregator.
 */
import { StringDecoder } from 'node:string_decoder';
import type { TableSummary } from '../../core/model.js';
import { TableAggregator, type AggregatorContext } from './aggregator.js';

/** A "line" longer than this without a newline is garbage: counted once and dropped. */
export const MAX_LINE_CHARS = 64 * 1024;

/**
 * Aggregate a table dump from a stream (an ssh2 channel, a child's stdout, a file
 * stream, or any async iterable of chunks). Lines are split here with a bounded carry,
 * so memory does not grow with the dump.
 */
export async function aggregateLines(
  readable: NodeJS.ReadableStream | AsyncIterable<string | Buffer>,
  ctx: AggregatorContext,
): Promise<TableSummary> {
  const agg = new TableAggregator(ctx);
  const decoder = new StringDecoder('utf8');
  let carry = '';
  /** Inside a line that already overflowed MAX_LINE_CHARS: skip to its newline. */
  let skipping = false;
  for await (const chunk of readable as AsyncIterable<string | Buffer>) {
    const text = typeof chunk === 'string' ? chunk : decoder.write(chunk);
    if (text.length === 0) continue;
    let nl = text.indexOf('\n');
    if (nl < 0) {
      // no newline: the whole chunk belongs to the pending line
      if (!skipping) carry += text;
    } else {
      // the pending line ends here (lines are sliced from the chunk, never the chunk copied)
      if (skipping) skipping = false;
      else agg.addLine(carry.length > 0 ? carry + text.slice(0, nl) : text.slice(0, nl));
      carry = '';
      let start = nl + 1;
      while ((nl = text.indexOf('\n', start)) >= 0) {
        agg.addLine(text.slice(start, nl));
        start = nl + 1;
      }
      if (start < text.length) carry = text.slice(start);
    }
    if (carry.length > MAX_LINE_CHARS) {
      if (!skipping) agg.addUnparsed(carry);
      skipping = true;
      carry = '';
    }
  }
  const rest = carry + decoder.end();
  if (rest.length > 0 && !skipping) agg.addLine(rest);
  return agg.finish();
}
