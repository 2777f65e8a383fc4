/**
 * Lines of a command's streamed stdout, read chunk by chunk with a bounded carry: memory
 * does not grow with the output. A "line" longer than `maxLineChars` without a newline is
 * not passed on: it is counted in `overlong` and skipped up to its newline.
 */
import { StringDecoder } from 'node:string_decoder';
import type { Readable } from 'node:stream';

export interface LineStats {
  bytes: number;
  overlong: number;
  /** `onLine` asked to stop: the rest of the output was not read (the caller ends the command). */
  stopped: boolean;
}

/**
 * Calls `onLine` for each line; `onLine` returns false to stop reading. The stream is not
 * destroyed on a stop (an ssh2 channel would then never report its end): it is left flowing,
 * what is still in flight is dropped, and the caller ends the command.
 */
export function forEachLine(readable: Readable, onLine: (line: string) => boolean, maxLineChars: number): Promise<LineStats> {
  return new Promise<LineStats>((resolve, reject) => {
    const decoder = new StringDecoder('utf8');
    const stats: LineStats = { bytes: 0, overlong: 0, stopped: false };
    let carry = '';
    let skipping = false;
    let settled = false;
    const finish = (err?: unknown): void => {
      if (settled) return;
      settled = true;
      readable.off('data', onData);
      readable.off('end', onEnd);
      readable.off('close', onEnd);
      readable.off('error', finish);
      readable.resume();
      if (err !== undefined) reject(err);
      else resolve(stats);
    };
    const emit = (line: string): boolean => {
      if (!skipping) return onLine(line);
      skipping = false;
      return true;
    };
    const onData = (chunk: Buffer | string): void => {
      if (settled) return;
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
          finish();
          return;
        }
      }
      if (!skipping) carry += text.slice(start);
      if (carry.length > maxLineChars) {
        stats.overlong += 1;
        skipping = true;
        carry = '';
      }
    };
    const onEnd = (): void => {
      if (settled) return;
      const rest = carry + decoder.end();
      if (rest.length > 0 && !skipping && !onLine(rest)) stats.stopped = true;
      finish();
    };
    readable.on('data', onData);
    readable.once('end', onEnd);
    readable.once('close', onEnd);
    readable.once('error', finish);
  });
}
