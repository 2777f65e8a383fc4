/**
 * Bot CPU per table dump, side by side with other checkouts, in one run:
 *   npx tsx bench/tools/table-cpu.ts <dump file> <checkout root>... [--reps=5] [--rounds=3]
 * For each repetition, one child process per checkout (order rotated), each aggregating the
 * dump `rounds` times from 32 KiB Buffer chunks (bench/children/table-cpu.ts). Prints the
 * CPU of the first round (a fresh process) and of the last (warm, as in a long-lived bot),
 * medians over the repetitions, lines/s, and whether every checkout gave the same summary.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const opt = (name: string, dflt: number): number => Number(args.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? dflt);
const [file, ...roots] = args.filter((a) => !a.startsWith('--'));
if (!file || roots.length === 0) {
  process.stderr.write('usage: table-cpu.ts <dump file> <checkout root>... [--reps=5] [--rounds=3]\n');
  process.exit(2);
}
const reps = opt('reps', 5);
const rounds = opt('rounds', 3);
const child = fileURLToPath(new URL('../children/table-cpu.ts', import.meta.url));
const lines = readFileSync(file, 'latin1').split('\n').filter((l) => l.length > 0).length;
const first = new Map<string, number[]>(roots.map((r) => [r, []]));
const warm = new Map<string, number[]>(roots.map((r) => [r, []]));
const summaries = new Map<string, string>();
console.log(`${file}: ${lines} lines; load average before: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
for (let rep = 0; rep < reps; rep++) {
  const order = roots.map((_, i) => roots[(i + rep) % roots.length] as string);
  for (const root of order) {
    const out = execFileSync(process.execPath, ['--import', 'tsx', child, root, file, String(rounds)], { encoding: 'utf8', maxBuffer: 1 << 24 });
    const { cpu, summary } = JSON.parse(out) as { cpu: number[]; summary: unknown };
    first.get(root)?.push(cpu[0] as number);
    warm.get(root)?.push(cpu[cpu.length - 1] as number);
    summaries.set(`${root}#${rep}`, JSON.stringify(summary));
  }
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
for (const root of roots) {
  const f = first.get(root) as number[];
  const w = warm.get(root) as number[];
  console.log(
    `${root}\n  first round CPU ms ${f.join(' ')} (median ${median(f)}); warm round CPU ms ${w.join(' ')} (median ${median(w)}, ${Math.round(lines / (median(w) / 1000) / 1000)} k lines/s)`,
  );
}
const distinct = new Set(summaries.values());
console.log(`summaries identical across checkouts and repetitions: ${distinct.size === 1 ? 'yes' : `NO (${distinct.size} distinct)`}`);
console.log(`load average after: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
