/**
 * Where the aggregator's time goes, on a recorded dump (CPU-bound, no I/O):
 *   npx tsx bench/tools/aggregate-parts.ts <dump file>
 * A dump of a full lab table: fill a scratch namespace with
 * `conntrack -R` of test/fixtures/record/fill-table.py's output, then `conntrack -L > file`.
 */
import { readFileSync } from 'node:fs';
import { parseConntrackLine } from '../../src/diagnostics/parsers/conntrack-line.js';
import { TableAggregator } from '../../src/analysis/table/aggregator.js';
import { SpaceSaving } from '../../src/analysis/table/space-saving.js';
const lines = readFileSync(process.argv[2]!, 'latin1').split('\n');
function time(name: string, fn: () => void) {
  const ts: number[] = [];
  for (let r = 0; r < 4; r++) { const t = performance.now(); fn(); ts.push(performance.now() - t); }
  console.log(name.padEnd(30), ts.map((x) => x.toFixed(0)).join(' '), 'ms');
}
time('parse only', () => { for (const l of lines) parseConntrackLine(l); });
const entries = lines.map((l) => parseConntrackLine(l)).filter((e) => e !== null);
time('sources add', () => { const s = new SpaceSaving(20000); for (const e of entries) s.add(e!.orig.src); });
time('dest add', () => { const s = new SpaceSaving(20000); for (const e of entries) s.add(e!.orig.dst); });
time('portuse add', () => { const s = new SpaceSaving(20000); for (const e of entries) s.add(`${e!.reply.dst} ${e!.orig.dst} ${e!.orig.dport} ${e!.proto}`); });
time('aggregator addEntry', () => { const a = new TableAggregator({ establishedTimeout: 432000, idleThresholds: [3600] }); for (const e of entries) a.addEntry(e!); a.finish(); });
time('aggregator addLine', () => { const a = new TableAggregator({ establishedTimeout: 432000, idleThresholds: [3600] }); for (const l of lines) a.addLine(l); a.finish(); });
