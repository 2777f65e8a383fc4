/**
 * Lines of a command's streamed stdout as text, read chunk by chunk with a bounded carry
 * (ByteLines): memory does not grow with the output. A "line" longer than `maxLineBytes`
 * is not passed on: it is counted in `overlong` and skipped up to its newline.
 */
import type { Readable } from 'node:stream';
import { ByteLines } from '../infra/byte-lines.js';

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
export function forEachLine(readable: Readable, onLine: (line: string) => boolean, maxLineBytes: number): Promise<LineStats> {
  return new Promise<LineStats>((resolve, reject) => {
    const stats: LineStats = { bytes: 0, overlong: 0, stopped: false };
    const lines = new ByteLines(
      maxLineBytes,
      (buf, start, end) => {
        if (!stats.stopped && !onLine(buf.toString('utf8', start, end))) stats.stopped = true;
      },
      () => {
        stats.overlong += 1;
      },
    );
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
    const onData = (chunk: Buffer | string): void => {
      if (settled) return;
      stats.bytes += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
      try {
        lines.push(chunk);
      } catch (err) {
        finish(err);
        return;
      }
      if (stats.stopped) finish();
    };
    const onEnd = (): void => {
      if (settled) return;
      try {
        lines.end();
      } catch (err) {
        finish(err);
        return;
      }
      finish();
    };
    readable.on('data', onData);
    readable.once('end', onEnd);
    readable.once('close', onEnd);
    readable.once('error', finish);
  });
}
