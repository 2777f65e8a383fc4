/**
 * Streaming aggregation of a table dump: the dump is read chunk by chunk and split into
 * lines where the bytes arrived (ByteLines: never buffered whole, never decoded), and each
 * line goes to the TableAggregator.
 */
import type { TableSummary } from '../../core/model.js';
import { TableAggregator, type AggregatorContext } from './aggregator.js';
import { ByteLines } from '../../infra/byte-lines.js';

/** A "line" longer than this without a newline is garbage: counted once and dropped. */
export const MAX_LINE_BYTES = 64 * 1024;

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
  const lines = new ByteLines(
    MAX_LINE_BYTES,
    (buf, start, end) => agg.addLineBytes(buf, start, end),
    (head) => agg.addUnparsedBytes(head),
  );
  for await (const chunk of readable as AsyncIterable<string | Buffer>) lines.push(chunk);
  lines.end();
  return agg.finish();
}
