/**
 * Child of bench/tools/table-cpu.ts: the bot-side CPU of one table dump, without SSH.
 * Loads aggregateLines from the checkout at <root>, feeds it the dump as Buffer chunks of
 * 32 KiB (an ssh2 channel's packet size) through an async iterable, `rounds` times, and
 * prints one JSON line: the process CPU (user + system) of each round and the summary of the last.
 *
 *   node --import tsx bench/children/table-cpu.ts <root> <dump file> <rounds>   (CTO_CHUNK_BYTES: another chunk size)
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [root, file, roundsArg] = process.argv.slice(2);
if (!root || !file) {
  process.stderr.write('usage: table-cpu.ts <checkout root> <dump file> [rounds]\n');
  process.exit(2);
}
const rounds = Number(roundsArg ?? 3);
const CHUNK = Number(process.env.CTO_CHUNK_BYTES ?? 32 * 1024);

const mod = (await import(pathToFileURL(join(root, 'src/analysis/table/aggregate-lines.ts')).href)) as {
  aggregateLines: (r: AsyncIterable<Buffer>, ctx: { establishedTimeout: number; idleThresholds: number[] }) => Promise<Record<string, unknown>>;
};
const data = readFileSync(file);
const chunks: Buffer[] = [];
for (let o = 0; o < data.length; o += CHUNK) chunks.push(Buffer.from(data.subarray(o, o + CHUNK)));

async function* feed(): AsyncGenerator<Buffer> {
  for (const c of chunks) yield c;
}
const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const cpu: number[] = [];
let summary: Record<string, unknown> = {};
for (let r = 0; r < rounds; r++) {
  const t = cpuMs();
  summary = await mod.aggregateLines(feed(), { establishedTimeout: 432_000, idleThresholds: [300, 3600, 86_400] });
  cpu.push(Math.round(cpuMs() - t));
}
delete summary.durationMs;
process.stdout.write(`${JSON.stringify({ cpu, summary })}\n`);
