/**
 * The bot's CPU per whole check at the full table, side by side with other checkouts, in one run:
 *   npx tsx bench/tools/check-cpu.ts <dump file> <checkout root>... [--reps=5] [--rounds=3]
 * One lab gateway whose `conntrack -L` prints <dump file> (/proc/net hidden in its sshd's mount
 * namespace, test/support/gateway-mount-ns.ts), so every checkout reads the same bytes over a
 * real ssh2 session. For each repetition, one child per checkout (order rotated) runs `rounds`
 * checks (bench/children/check-cpu.ts); the first is a fresh process (JIT cold), the last warm.
 * Each child also streams the bare dump over ssh2 and discards it (the floor: ssh2's own CPU).
 */
import { execFileSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { labDown, labUp } from '../../lab/index.js';
import { hideProcNet, restoreMounts, serveDumpAsTool } from '../../test/support/gateway-mount-ns.js';

const args = process.argv.slice(2);
const opt = (name: string, dflt: number): number => Number(args.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? dflt);
const [file, ...roots] = args.filter((a) => !a.startsWith('--'));
if (!file || roots.length === 0) {
  process.stderr.write('usage: check-cpu.ts <dump file> <checkout root>... [--reps=5] [--rounds=3]\n');
  process.exit(2);
}
const reps = opt('reps', 5);
const rounds = opt('rounds', 3);
const LAB = 'cto-cpu1';
const here = (rel: string) => fileURLToPath(new URL(rel, import.meta.url));
const load = () => loadavg().map((l) => l.toFixed(2)).join(' ');

await labDown(LAB).catch(() => undefined);
const lab = await labUp({ name: LAB, clients: 1, sourcesPerClient: 1 });
try {
  hideProcNet(lab);
  await serveDumpAsTool(lab, file);
  const json = JSON.stringify({ gateway: lab.name, config: lab.inventoryEntry, rounds });
  const first = new Map<string, number[]>(roots.map((r) => [r, []]));
  const warm = new Map<string, number[]>(roots.map((r) => [r, []]));
  const warmWall = new Map<string, number[]>(roots.map((r) => [r, []]));
  const floor: number[] = [];
  const tables = new Set<string>();
  console.log(`${file} served as conntrack -L on ${lab.name}; load average before: ${load()}`);
  for (let rep = 0; rep < reps; rep++) {
    const order = roots.map((_, i) => roots[(i + rep) % roots.length] as string);
    for (const root of order) {
      const out = execFileSync(process.execPath, ['--import', 'tsx', here('../children/check-cpu.ts'), root, json], { encoding: 'utf8', maxBuffer: 1 << 24 });
      const r = JSON.parse(out) as { cpu: number[]; wall: number[]; floorCpu: number; table: unknown };
      floor.push(r.floorCpu);
      first.get(root)?.push(r.cpu[0] as number);
      warm.get(root)?.push(r.cpu[r.cpu.length - 1] as number);
      warmWall.get(root)?.push(r.wall[r.wall.length - 1] as number);
      tables.add(JSON.stringify(r.table));
      console.log(`  rep ${rep + 1} ${root}: CPU ms per check ${r.cpu.join(' ')}, wall ms ${r.wall.join(' ')}, bare stream CPU ${r.floorCpu} ms (load ${load()})`);
    }
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
  for (const root of roots) {
    console.log(
      `${root}: first check CPU median ${median(first.get(root) as number[])} ms, warm check CPU median ${median(warm.get(root) as number[])} ms (${(warm.get(root) as number[]).join(' ')}), warm wall median ${median(warmWall.get(root) as number[])} ms`,
    );
  }
  console.log(`bare stream of the same dump over ssh2 (the floor): CPU ms ${floor.join(' ')} (median ${median(floor)})`);
  console.log(`table summaries identical across checkouts: ${tables.size === 1 ? 'yes' : `NO (${tables.size} distinct)`}`);
  console.log(`load average after: ${load()}`);
} finally {
  try {
    restoreMounts(lab);
  } finally {
    await labDown(lab);
  }
}
