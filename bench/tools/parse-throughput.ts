/**
 * Parser throughput (CPU time, median of 6 runs after 2 warm-ups):
 *   npx tsx bench/tools/parse-throughput.ts [dump file]
 * Without a file: 262,144 synthetic lines in the recorded shapes (both formats).
 * Baselines: a split-based and a regex-per-token tokenizer that build no entry at all.
 */
import { readFileSync } from 'node:fs';
import { AddressCache } from '../../src/diagnostics/parsers/address-cache.js';
import { parseConntrackBytes, parseConntrackLine, scratchEntry } from '../../src/diagnostics/parsers/conntrack-line.js';
import { generateLines } from '../../test/support/synthetic-conntrack.js';

const file = process.argv[2];
// Real lines are slices of a decoded chunk: build them the same way (flat, not ropes).
const sets: [string, string[]][] = file
  ? [[file, readFileSync(file, 'latin1').split('\n').filter((l) => l.length > 0)]]
  : [
      ['conntrack -L', [...generateLines(262_144)].join('\n').split('\n')],
      ['/proc/net/nf_conntrack', [...generateLines(262_144, { format: 'proc' })].join('\n').split('\n')],
    ];

function splitTokens(line: string): number {
  let n = 0;
  for (const tok of line.trim().split(/\s+/)) {
    const eq = tok.indexOf('=');
    if (eq > 0) {
      const k = tok.slice(0, eq);
      if (k === 'src' || k === 'dst' || k === 'sport' || k === 'dport') n++;
    }
  }
  return n;
}
const tokenRe = /(\w+)=(\S+)/g;
function regexTokens(line: string): number {
  let n = 0;
  for (const m of line.matchAll(tokenRe)) if (m[1] === 'src') n++;
  return n;
}

const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const scratch = scratchEntry();
for (const [name, lines] of sets) {
  const text = `${lines.join('\n')}\n`;
  const buf = Buffer.from(text, 'latin1');
  const starts = Int32Array.from(lines.reduce<number[]>((acc, l, i) => (acc.push(i === 0 ? 0 : (acc[i - 1] as number) + (lines[i - 1] as string).length + 1), acc), []));
  const addresses = new AddressCache();
  const candidates: [string, (l: string, i: number) => unknown][] = [
    ['parseConntrackBytes (in place, as the check)', (l, i) => parseConntrackBytes(buf, starts[i] as number, (starts[i] as number) + l.length, scratch, addresses)],
    ['parseConntrackLine (new entry)', (l) => parseConntrackLine(l)],
    ['parseConntrackLine (into scratch)', (l) => parseConntrackLine(l, scratch)],
    ['split tokens, no entry', splitTokens],
    ['regex per token, no entry', regexTokens],
  ];
  console.log(`${name}: ${lines.length} lines, ${(buf.length / 1e6).toFixed(1)} MB`);
  const times = new Map<string, number[]>(candidates.map(([c]) => [c, []]));
  for (let r = 0; r < 8; r++) {
    for (const [c, fn] of candidates) {
      const t = cpuMs();
      for (let i = 0; i < lines.length; i++) fn(lines[i] as string, i);
      if (r >= 2) times.get(c)?.push(cpuMs() - t);
    }
  }
  for (const [c, ts] of times) {
    const m = [...ts].sort((a, b) => a - b)[Math.floor(ts.length / 2)] as number;
    console.log(`  ${c.padEnd(46)} ${(lines.length / m / 1000).toFixed(2)} M lines/s (${m.toFixed(0)} ms CPU)`);
  }
}
