/**
 * Lines of a command's streamed stdout, read chunk by chunk with a bounded carry: memory
 * does not grow with the output. A "line" longer than `maxLineChars` without a newline is
 * not passed on: it is counted in `overlong` and skipped up to its newline.
 */
import { StringDecoder } from 'node:string_decoder';

export interface LineStats {
  bytes: number;
  overlong: number;
}

/**
 * Calls `onLine` for each line; `onLine` returns false to stop reading (the caller then
 * ends the command). Resolves with what was read.
 */
export async function forEachLine(
  readable: AsyncIterable<string | Buffer>,
  onLine: (line: string) => boolean,
  maxLineChars: number,
): Promise<LineStats & { stopped: boolean }> {
  const decoder = new StringDecoder('utf8');
  const stats = { bytes: 0, overlong: 0, stopped: false };
  let carry = '';
  let skipping = false;
  const emit = (line: string): boolean => {
    if (skipping) {
      skipping = false;
      return true;
    }
    return onLine(line);
  };
  for await (const chunk of readable) {
    stats.bytes += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
    const text = typeof chunk === 'string' ? chunk : decoder.write(chunk);
    let start = 0;
    let nl: number;
    while ((nl = text.indexOf('\n', start)) >= 0) {
      const line = carry.length > 0 ? carry + text.slice(start, nl) : text.slice(start, nl);
      carry = '';
      start = nl + 1;
      if (!emit(line)) {
        stats.stopped = true;
        return stats;
      }
    }
    if (!skipping) carry += text.slice(start);
    if (carry.length > maxLineChars) {
      stats.overlong += 1;
      skipping = true;
      carry = '';
    }
  }
  const rest = carry + decoder.end();
  if (rest.length > 0 && !skipping && !onLine(rest)) stats.stopped = true;
  return stats;
}
