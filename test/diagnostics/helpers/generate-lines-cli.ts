/**
 * Write generated conntrack lines to stdout (for the memory probe and benchmarks):
 *   node --import tsx test/diagnostics/helpers/generate-lines-cli.ts <lines> [sources] [destinations] [format]
 */
import { generateLines } from '../../support/synthetic-conntrack.js';

const count = Number(process.argv[2] ?? 10_000);
const sources = Number(process.argv[3] ?? 250);
const destinations = Number(process.argv[4] ?? sources);
const format = process.argv[5] === 'proc' ? 'proc' : 'conntrack';

let batch: string[] = [];
let size = 0;
for (const line of generateLines(count, { sources, destinations, seed: 7, format })) {
  batch.push(line);
  size += line.length + 1;
  if (size >= 64 * 1024) {
    if (!process.stdout.write(`${batch.join('\n')}\n`)) await new Promise((resolve) => process.stdout.once('drain', resolve));
    batch = [];
    size = 0;
  }
}
if (batch.length > 0) process.stdout.write(`${batch.join('\n')}\n`);
