/**
 * Lines of a byte stream, split where the bytes arrived: a complete line is passed on as
 * (buffer, start, end) of its chunk, never copied or decoded; only a line that spans chunks
 * is copied, into one carry buffer that is reused. Memory is bounded by `maxLineBytes`: a
 * longer "line" is passed once to `onOverlong` (its first bytes) and skipped up to its newline.
 */
export type OnLine = (buf: Buffer, start: number, end: number) => void;

const NEWLINE = 10;

export class ByteLines {
  private carry: Buffer;
  private carried = 0;
  /** Inside a line that already overflowed maxLineBytes: skip to its newline. */
  private skipping = false;

  constructor(
    /** May be changed between chunks (a saved file allows longer lines before its table dump). */
    public maxLineBytes: number,
    private readonly onLine: OnLine,
    private readonly onOverlong: (head: Buffer) => void,
  ) {
    this.carry = Buffer.allocUnsafe(Math.min(4096, maxLineBytes));
  }

  /** The next chunk; text (a test's Readable.from, a string stream) is taken as its UTF-8 bytes. */
  push(data: Buffer | string): void {
    const chunk = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    const n = chunk.length;
    let start = 0;
    let nl = chunk.indexOf(NEWLINE);
    if (nl >= 0 && (this.carried > 0 || this.skipping)) {
      // the pending line ends in this chunk (an overlong one is skipped up to here)
      if (!this.skipping && this.append(chunk, 0, nl)) this.onLine(this.carry, 0, this.carried);
      this.skipping = false;
      this.carried = 0;
      start = nl + 1;
      nl = chunk.indexOf(NEWLINE, start);
    }
    while (nl >= 0) {
      if (nl - start <= this.maxLineBytes) this.onLine(chunk, start, nl);
      else this.onOverlong(chunk.subarray(start, start + this.maxLineBytes));
      start = nl + 1;
      nl = chunk.indexOf(NEWLINE, start);
    }
    if (start < n && !this.skipping) this.append(chunk, start, n);
  }

  /** The last line when the stream does not end with a newline. */
  end(): void {
    if (this.carried > 0 && !this.skipping) this.onLine(this.carry, 0, this.carried);
    this.carried = 0;
    this.skipping = false;
  }

  /** Add bytes to the pending line; false (and skipping) once it is longer than maxLineBytes. */
  private append(chunk: Buffer, start: number, end: number): boolean {
    const total = this.carried + (end - start);
    if (total > this.maxLineBytes) {
      const head = Buffer.concat([this.carry.subarray(0, this.carried), chunk.subarray(start, Math.min(end, start + this.maxLineBytes))]);
      this.onOverlong(head.subarray(0, this.maxLineBytes));
      this.carried = 0;
      this.skipping = true;
      return false;
    }
    if (total > this.carry.length) {
      const bigger = Buffer.allocUnsafe(Math.min(this.maxLineBytes, Math.max(total, this.carry.length * 2)));
      this.carry.copy(bigger, 0, 0, this.carried);
      this.carry = bigger;
    }
    chunk.copy(this.carry, this.carried, start, end);
    this.carried = total;
    return true;
  }
}
