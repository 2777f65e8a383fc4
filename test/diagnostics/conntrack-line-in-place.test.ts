/**
 * The table dump is parsed in place in each decoded chunk (parseConntrackLineAt) and its
 * addresses go through a bounded cache (AddressCache): neither may change a result. Every
 * line must parse exactly as the same line on its own, whatever follows it in the chunk,
 * and an address evicted from the cache must come back as itself.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseConntrackLine, parseConntrackLineAt } from '../../src/diagnostics/parsers/conntrack-line.js';

const fixture = (name: string): string[] =>
  readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8')
    .split('\n')
    .filter((l) => l.length > 0);

const ENTRY = 'tcp      6 431999 ESTABLISHED src=198.18.9.1 dst=198.18.9.2 sport=40000 dport=443 src=198.18.9.2 dst=198.18.9.1 sport=443 dport=40000 [ASSURED] mark=0 use=1';

/** Lines whose last token is a key cut short: on its own the line ends there; in a chunk the next line follows. */
const CUT_LINES = [
  'tcp      6 431999 ESTABLISHED src=198.18.9.1 dst=198.18.9.2 sport=40000 dport=443 src=198.18.9.2 dst=198.18.9.1 sport=443 dport=40000 sp',
  'tcp      6 431999 ESTABLISHED src=198.18.9.1 dst=198.18.9.2 sport=40000 dport=443 src=198.18.9.2 dst=198.18.9.1 sport=443 dport=40000 [ASSURED] dp',
  'tcp      6 431999 ESTABLISHED src=198.18.9.1 dst=198.18.9.2 sport=40000 dport=443 src=198.18.9.2 dst=198.18.9.1 sport=443 dport=40000 [ASSURED] ma',
  'tcp      6 431999 ESTABLISHED src=198.18.9.1 dst=198.18.9.2 sport=40000 dport=443 src=198.18.9.2 dst=198.18.9.1 sport=443 dport=40000 mark=0 zo',
  'udp      17 27',
  'tcp      6',
  'tcp      6 431999 ESTABLISHED src=198.18.9.1 dst=198.18.9.2 sport=40000 dport=443 src=198.18.9.2 dst=198.18.9.1 sport=443 dport=40000',
];
/** What may follow them: text that completes a key when read across the line's end. */
const FOLLOWERS = ['xt=1 src=198.18.9.3', 'rt=5 dport=1', 'rk=7', 'ne=3 use=1', 'src=198.18.9.1 dst=198.18.9.2 [OFFLOAD]', ENTRY, ''];

describe('parseConntrackLineAt: a line read in place in a chunk', () => {
  it('gives what the line on its own gives, for every recorded and wild line', () => {
    const lines = [...fixture('conntrack-L.txt'), ...fixture('proc-nf_conntrack.txt')];
    const text = `${lines.join('\n')}\n`;
    let start = 0;
    for (const line of lines) {
      const end = start + line.length;
      expect(parseConntrackLineAt(text, start, end), line).toEqual(parseConntrackLine(line));
      start = end + 1;
    }
  });

  it('never reads the next line: lines cut inside a key stay what they are alone', () => {
    for (const cut of CUT_LINES) {
      const alone = parseConntrackLine(cut);
      for (const next of FOLLOWERS) {
        for (const sep of ['\n', '\r\n']) {
          const text = `${cut}${sep === '\r\n' ? '\r' : ''}\n${next}`;
          expect(parseConntrackLineAt(text, 0, text.indexOf('\n')), `${cut} | ${next}`).toEqual(alone);
        }
      }
    }
  });
});

describe('the address cache', () => {
  it('gives every address back as itself, with more distinct addresses than it holds (evictions)', () => {
    // 200,000 distinct sources (the cache holds 65,536), each seen twice far apart
    const n = 200_000;
    const src = (i: number): string => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    const line = (i: number): string =>
      `tcp      6 100 ESTABLISHED src=${src(i)} dst=198.18.${(i >> 8) & 255}.${i & 255} sport=1 dport=2 src=198.18.${(i >> 8) & 255}.${i & 255} dst=198.19.0.1 sport=2 dport=1 [ASSURED] mark=0 use=1`;
    for (const round of [0, 1]) {
      for (let i = 0; i < n; i += round === 0 ? 1 : 7) {
        const e = parseConntrackLine(line(i));
        if (e === null || e.orig.src !== src(i) || e.orig.dst !== `198.18.${(i >> 8) & 255}.${i & 255}` || e.reply.dst !== '198.19.0.1') {
          expect.fail(`line ${i}: ${JSON.stringify(e)}`);
        }
      }
    }
  });

  it('validates each text, also one it saw as an address before in another form', () => {
    const ok = parseConntrackLine(ENTRY);
    expect(ok?.orig.src).toBe('198.18.9.1');
    expect(parseConntrackLine(ENTRY.replace('src=198.18.9.1 ', 'src=198.18.9.1x '))).toBeNull();
    expect(parseConntrackLine(ENTRY.replace('src=198.18.9.1 ', 'src=198.18.9.01x '))).toBeNull();
    expect(parseConntrackLine(ENTRY.replace('dst=198.18.9.1 ', 'dst=198.18.9.256 '))).toBeNull();
    // the full IPv6 form is compressed only in the /proc format
    const full = '2001:0db8:0000:0000:0000:0000:0000:0001';
    const v6 = `udp      17 27 src=${full} dst=2001:db8::2 sport=1 dport=2 src=2001:db8::2 dst=${full} sport=2 dport=1 mark=0 use=1`;
    expect(parseConntrackLine(v6)?.orig.src).toBe(full);
    expect(parseConntrackLine(`ipv6     10 ${v6.replace(' use=1', ' zone=0 use=2')}`)?.orig.src).toBe('2001:db8::1');
    expect(parseConntrackLine(v6)?.orig.src).toBe(full);
  });
});
