/** Run a TypeScript child (`node --import tsx`) and read the JSON line it prints last. */
import { spawn } from 'node:child_process';

export const REPO_ROOT = new URL('../../', import.meta.url).pathname.replace(/\/$/, '');

export async function runTsChild<T>(script: string, args: string[], opts: { timeoutMs?: number; nodeArgs?: string[] } = {}): Promise<T> {
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), '--import', 'tsx', script, ...args], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  clearTimeout(timer);
  const last = out.trim().split('\n').at(-1) ?? '';
  if (code !== 0) throw new Error(`${script} ${args.join(' ')} exited ${code}${code === null ? ` (killed after ${timeoutMs} ms)` : ''}: ${err.trim().slice(-800)}`);
  try {
    return JSON.parse(last) as T;
  } catch {
    throw new Error(`${script} printed no JSON result: ${out.slice(-300)} ${err.slice(-300)}`);
  }
}
