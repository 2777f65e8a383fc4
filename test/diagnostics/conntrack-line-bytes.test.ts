/**
 * The table dump is parsed where its bytes arrived (parseConntrackBytes on an ssh2 chunk)
 * with the addresses from a bounded cache (AddressCache): neither may change a result.
 * Every line must parse exactly as the same line on its own, whatever follows it in the
 * buffer, and an address evicted from the cache must come back as itself.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { ConntrackEntry } from '../../src/core/model.js';
import { AddressCache } from '../../src/diagnostics/parsers/address-cache.js';
import { parseConntrackBytes, parseConntrackLine, scratchEntry } from '../../src/diagnostics/parsers/conntrack-line.js';

const fixture = (name: string): string[] =>
  readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8')
    .split('\n')
    .filter((l) => l.length > 0);

const ENTRY = 'tcp      6 431999 ESTABLISHED src=198.18.9.1 dst=198.18.9.2 sport=40000 dport=443 src=198.18.9.2 dst=198.18.9.1 sport=443 dport=40000 [ASSURED] mark=0 use=1';

/** Lines whose last token is a key cut short: on its own the line ends there; in a buffer the next line follows. */
const CUT_LINES = [
  'tcp      6 431999 ESTABLISHED src=198.18.9.1 dst=198.18.9.2 sport=40000 dport=443 src=198.18.9.2 dst=198.18.9.1 sport=443 dport=40000 sp',
  'tcp      6 431999 ESTABLISHED src=198.18.9.1 dst=198.18.9.2 sport=40000 dport=443 src=198.18.9.2 dst=198.18.9.1 sport=443 dport=40000 [ASSURED] dp',
  'tcp      6 431999 ESTABLISHED src=198.18.9.1 dst=198.18.9.2 sport=40000 dport=443 src=198.18.9.2 dst=198.18.9.1 sport=443 dport=40000 [ASSURED] ma',
  'tcp      6 431999 ESTABLISHED src=198.18.9.1 dst=198.18.9.2 sport=40000 dport=443 src=198.18.9.2 dst=198.18.9.1 sport=443 dport=40000 mark=0 zo',
  'tcp      6 431999 ESTABLISHED src=198.18.9.1 dst=198.18.9.2 sport=40000 dport=443 src=198.18.9.2 dst=198.18.9.1 sport=443 dport=40000 [ASSURED] src',
  'tcp      6 src',
  'udp      17 27',
  'tcp      6',
  'tcp      6 431999 ESTABLISHED src=198.18.9.1 dst=198.18.9.2 sport=40000 dport=443 src=198.18.9.2 dst=198.18.9.1 sport=443 dport=40000',
];
/** What may follow them: text that completes a key when read across the line's end. */
const FOLLOWERS = ['=1 src=198.18.9.3', 'xt=1 src=198.18.9.3', 'rt=5 dport=1', 'rk=7', 'ne=3 use=1', '=198.18.9.1 dst=198.18.9.2 [OFFLOAD]', ENTRY, ''];

/** Parse buf[start, end) with a fresh entry and cache, copied out (the scratch entry is reused). */
function inPlace(buf: Buffer, start: number, end: number, cache = new AddressCache()): ConntrackEntry | null {
  const e = parseConntrackBytes(buf, start, end, scratchEntry(), cache);
  return e === null ? null : (JSON.parse(JSON.stringify(e)) as ConntrackEntry);
}
/** The string API's entry in the same shape (absent optional fields dropped by the JSON round trip). */
const alone = (line: string): ConntrackEntry | null => {
  const e = parseConntrackLine(line);
  return e === null ? null : (JSON.parse(JSON.stringify(e)) as ConntrackEntry);
};

describe('parseConntrackBytes: a line read where it arrived', () => {
  it('gives what the line on its own gives, for every recorded and wild line, with one cache for all', () => {
    const lines = [...fixture('conntrack-L.txt'), ...fixture('proc-nf_conntrack.txt'), ...['proc-nf_conntrack-offload', 'proc-nf_conntrack-hw-offload', 'conntrack-L-offload-tcp', 'conntrack-L-offload-vyos'].flatMap((f) => fixture(`wild/${f}.txt`))];
    const buf = Buffer.from(`${lines.join('\n')}\n`);
    const cache = new AddressCache();
    let start = 0;
    let parsed = 0;
    for (const line of lines) {
      const end = buf.indexOf(10, start);
      const got = inPlace(buf, start, end, cache);
      expect(got, line).toEqual(alone(line));
      if (got !== null) parsed++;
      start = end + 1;
    }
    // each wild fixture opens with its source line; conntrack -L ends with its summary
    expect(parsed).toBe(lines.filter((l) => !l.startsWith('# source:') && !l.startsWith('conntrack v')).length);
  });

  it('never reads the next line: lines cut inside a key stay what they are alone', () => {
    for (const cut of CUT_LINES) {
      const expected = alone(cut);
      for (const next of FOLLOWERS) {
        for (const sep of ['\n', '\r\n']) {
          const buf = Buffer.from(`${cut}${sep}${next}`);
          expect(inPlace(buf, 0, cut.length + sep.length - 1), `${cut} | ${next}`).toEqual(expected);
          // and with no separator at all: the line is a prefix of the buffer
          expect(inPlace(Buffer.from(`${cut}${next}`), 0, cut.length), `${cut}${next}`).toEqual(expected);
        }
      }
    }
  });

  it('reads a line in the middle of a buffer (offsets) and non-ASCII bytes only as garbage', () => {
    const buf = Buffer.from(`garbage ä\n${ENTRY}\nmore`);
    const start = buf.indexOf(10) + 1;
    expect(inPlace(buf, start, buf.indexOf(10, start))).toEqual(alone(ENTRY));
    expect(alone(ENTRY.replace('ESTABLISHED', 'ESTÄBLISHED'))).toBeNull();
    expect(alone(ENTRY.replace('src=198.18.9.1 ', 'src=198.18.9.1ä '))).toBeNull();
  });
});

describe('the address cache', () => {
  it('gives every address back as itself, with more distinct addresses than it holds (evictions)', () => {
    // 200,000 distinct sources (the cache holds 16,384), each seen twice far apart
    const n = 200_000;
    const src = (i: number): string => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    const dst = (i: number): string => `198.18.${(i >> 8) & 255}.${i & 255}`;
    const line = (i: number): string =>
      `tcp      6 100 ESTABLISHED src=${src(i)} dst=${dst(i)} sport=1 dport=2 src=${dst(i)} dst=198.19.0.1 sport=2 dport=1 [ASSURED] mark=0 use=1`;
    const cache = new AddressCache();
    const into = scratchEntry();
    for (const round of [0, 1]) {
      for (let i = 0; i < n; i += round === 0 ? 1 : 7) {
        const buf = Buffer.from(line(i));
        const e = parseConntrackBytes(buf, 0, buf.length, into, cache);
        if (e === null || e.orig.src !== src(i) || e.orig.dst !== dst(i) || e.reply.src !== dst(i) || e.reply.dst !== '198.19.0.1') {
          expect.fail(`line ${i}: ${JSON.stringify(e)}`);
        }
      }
    }
  });

  it('returns the same string object for an address it holds, and validates every new text', () => {
    const cache = new AddressCache();
    const a = Buffer.from('x 198.18.9.1 y 198.18.9.1');
    cache.lookup(a, 2, 12);
    const first = cache.lastValue;
    cache.lookup(a, 15, 25);
    expect(cache.lastValue).toBe(first);
    expect(cache.lastFamily).toBe(4);
    for (const bad of ['198.18.9.1x', '198.18.9.256', '198.18.9', 'localhost', '::g', '1.2.3.4.5']) {
      cache.lookup(Buffer.from(bad), 0, bad.length);
      expect(cache.lastFamily, bad).toBe(0);
    }
    expect(parseConntrackLine(ENTRY.replace('dst=198.18.9.1 ', 'dst=198.18.9.256 '))).toBeNull();
  });

  it('gives IPv6 in its canonical text from both formats (the /proc full form is compressed)', () => {
    const full = '2001:0db8:0000:0000:0000:0000:0000:0001';
    const v6 = `udp      17 27 src=${full} dst=2001:db8::2 sport=1 dport=2 src=2001:db8::2 dst=${full} sport=2 dport=1 mark=0 use=1`;
    expect(parseConntrackLine(v6)?.orig.src).toBe('2001:db8::1');
    expect(parseConntrackLine(`ipv6     10 ${v6.replace(' use=1', ' zone=0 use=2')}`)).toMatchObject({
      family: 'ipv6',
      orig: { src: '2001:db8::1', dst: '2001:db8::2' },
      reply: { dst: '2001:db8::1' },
    });
    // an address of the other family in one tuple makes the line unparsed
    expect(parseConntrackLine(v6.replace('dst=2001:db8::2 sport=1', 'dst=198.18.0.1 sport=1'))).toBeNull();
  });
});
