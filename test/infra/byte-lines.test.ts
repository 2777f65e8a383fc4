/**
 * ByteLines splits a dump where its bytes arrive: whatever the chunking (ssh2 packets,
 * file reads), the lines are the text's lines, a line over the limit is reported once
 * and skipped, and only lines that span chunks are copied.
 */
import { describe, expect, it } from 'vitest';
import { ByteLines } from '../../src/infra/byte-lines.js';

function split(text: string, chunkSizes: number[], maxLineBytes = 64): { lines: string[]; overlong: string[] } {
  const lines: string[] = [];
  const overlong: string[] = [];
  const splitter = new ByteLines(maxLineBytes, (buf, start, end) => lines.push(buf.toString('utf8', start, end)), (head) => overlong.push(head.toString('utf8')));
  const bytes = Buffer.from(text);
  let at = 0;
  for (let k = 0; at < bytes.length; k++) {
    const size = chunkSizes[k % chunkSizes.length] as number;
    splitter.push(bytes.subarray(at, at + size));
    at += size;
  }
  splitter.end();
  return { lines, overlong };
}

describe('ByteLines', () => {
  const text = 'first line\nsecond\n\nfourth, after a blank one\r\nlast without newline';
  const expected = text.split('\n');

  it('gives the same lines for every chunk size from 1 byte to the whole text', () => {
    for (let size = 1; size <= text.length; size++) expect(split(text, [size]).lines, `chunks of ${size}`).toEqual(expected);
    expect(split(text, [3, 17, 1, 40]).lines).toEqual(expected);
  });

  it('keeps multi-byte characters split between chunks whole', () => {
    const utf8 = 'größe ä\nüber ü\n';
    for (let size = 1; size <= 8; size++) expect(split(utf8, [size]).lines).toEqual(['größe ä', 'über ü']);
  });

  it('reports a line over the limit once, by its first bytes, skips it to its newline and goes on', () => {
    const long = 'x'.repeat(200);
    for (const size of [1, 7, 64, 1000]) {
      const { lines, overlong } = split(`a\n${long}\nb\n${long}`, [size], 64);
      expect(lines, `chunks of ${size}`).toEqual(['a', 'b']);
      expect(overlong).toEqual(['x'.repeat(64), 'x'.repeat(64)]);
    }
  });

  it('uses a new limit from the next line on (a saved file allows longer lines before its dump)', () => {
    const lines: string[] = [];
    const overlong: number[] = [];
    const splitter = new ByteLines(1000, (buf, s, e) => lines.push(buf.toString('latin1', s, e)), (head) => overlong.push(head.length));
    splitter.push(Buffer.from(`${'f'.repeat(500)}\n`));
    splitter.maxLineBytes = 100;
    splitter.push(Buffer.from('g'.repeat(150)));
    splitter.push(Buffer.from('g\nh\n'));
    splitter.end();
    expect(lines.map((l) => l.length)).toEqual([500, 1]);
    expect(overlong).toEqual([100]);
  });
});
