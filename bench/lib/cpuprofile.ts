/**
 * Runs a child under `node --cpu-prof` and summarises the profile: self time per function
 * (V8 samples), the top entries first. Used to say where the time of the aggregator goes.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  hitCount?: number;
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface HotFunction {
  fn: string;
  where: string;
  selfMs: number;
  selfPct: number;
}

export interface ProfileSummary {
  wallMs: number;
  sampledMs: number;
  top: HotFunction[];
  /** Self time grouped by file (src/..., node internals, GC, idle). */
  byFile: { file: string; selfMs: number; selfPct: number }[];
  childOutput: string;
}

export function summarizeProfile(profile: CpuProfile, root: string, topN = 15): Omit<ProfileSummary, 'childOutput'> {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  // timeDeltas[i] is the time between sample i-1 and sample i: charge it to sample i.
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i] as number;
    selfUs.set(id, (selfUs.get(id) ?? 0) + Math.max(0, profile.timeDeltas[i] ?? 0));
  }
  const fnTotals = new Map<string, { fn: string; where: string; us: number }>();
  const fileTotals = new Map<string, number>();
  let total = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (!node) continue;
    total += us;
    const { functionName, url, lineNumber, columnNumber } = node.callFrame;
    const file = url ? (url.startsWith('file://') ? relative(root, new URL(url).pathname) : url) : '';
    const fn = functionName || (file ? '(anonymous)' : `(${node.callFrame.functionName || 'program'})`);
    const label = file ? `${file}:${lineNumber + 1}:${columnNumber + 1}` : fn;
    const key = `${fn}@${label}`;
    const cur = fnTotals.get(key) ?? { fn, where: label, us: 0 };
    cur.us += us;
    fnTotals.set(key, cur);
    const group = file ? (file.startsWith('node:') ? 'node: internals' : file) : fn;
    fileTotals.set(group, (fileTotals.get(group) ?? 0) + us);
  }
  const pct = (us: number) => Math.round((us / Math.max(1, total)) * 1000) / 10;
  return {
    wallMs: Math.round((profile.endTime - profile.startTime) / 1000),
    sampledMs: Math.round(total / 1000),
    top: [...fnTotals.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, topN)
      .map((f) => ({ fn: f.fn, where: f.where, selfMs: Math.round(f.us / 1000), selfPct: pct(f.us) })),
    byFile: [...fileTotals]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 10)
      .map(([file, us]) => ({ file, selfMs: Math.round(us / 1000), selfPct: pct(us) })),
  };
}

/** `node --cpu-prof --import tsx <script> ...args` in `cwd`; returns the summary. */
export async function profileChild(script: string, args: string[], cwd: string, timeoutMs = 120_000): Promise<ProfileSummary> {
  const dir = await mkdtemp(join(tmpdir(), 'cto-bench-prof-'));
  try {
    const child = spawn(process.execPath, ['--cpu-prof', '--cpu-prof-dir', dir, '--cpu-prof-interval', '200', '--import', 'tsx', script, ...args], {
      cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    clearTimeout(timer);
    if (code !== 0) throw new Error(`profiled child exited ${code}: ${err.slice(0, 500)}`);
    const files = (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile'));
    if (files.length === 0) throw new Error('no .cpuprofile written');
    // The tsx loader's worker thread writes a profile of its own: take the one whose
    // samples fall most in this repository's src/ (the main thread's).
    let best: CpuProfile | null = null;
    let bestScore = -1;
    for (const f of files) {
      const p = JSON.parse(await readFile(join(dir, f), 'utf8')) as CpuProfile;
      const inSrc = new Set(p.nodes.filter((n) => n.callFrame.url.includes('/src/')).map((n) => n.id));
      const score = p.samples.reduce((acc, id) => acc + (inSrc.has(id) ? 1 : 0), 0);
      if (score > bestScore) {
        best = p;
        bestScore = score;
      }
    }
    return { ...summarizeProfile(best as CpuProfile, cwd), childOutput: out.trim() };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
