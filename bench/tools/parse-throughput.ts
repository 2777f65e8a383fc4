/**
 * Parser throughput (CPU time, median of 6 runs after 2 warm-ups):
 *   npx tsx bench/tools/parse-throughput.ts [dump file]
 * Without a file: 262,144 synthetic lines in the recorded shapes (both formats).
 * Baselines: a split-based and a regex-per-token tokenizer that build no entry at all.
 */
import { readFileSync } from 'node:fs';
import { parseConntrackLine, scratchEntry } from '../../src/diagnostics/parsers/conntrack-line.js';
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
const candidates: [string, (l: string) => unknown][] = [
  ['parseConntrackLine (new entry)', (l) => parseConntrackLine(l)],
  ['parseConntrackLine (into scratch)', (l) => parseConntrackLine(l, scratch)],
  ['split tokens, no entry', splitTokens],
  ['regex per token, no entry', regexTokens],
];
for (const [name, lines] of sets) {
  const bytes = lines.reduce((n, l) => n + l.length + 1, 0);
  console.log(`${name}: ${lines.length} lines, ${(bytes / 1e6).toFixed(1)} MB`);
  const times = new Map<string, number[]>(candidates.map(([c]) => [c, []]));
  for (let r = 0; r < 8; r++) {
    for (const [c, fn] of candidates) {
      const t = cpuMs();
      for (const l of lines) fn(l);
      if (r >= 2) times.get(c)?.push(cpuMs() - t);
    }
  }
  for (const [c, ts] of times) {
    const m = [...ts].sort((a, b) => a - b)[Math.floor(ts.length / 2)] as number;
    console.log(`  ${c.padEnd(34)} ${(lines.length / m / 1000).toFixed(2)} M lines/s (${m.toFixed(0)} ms CPU)`);
  }
}
