/**
 * Scratch NAT gateway namespaces for tests (see scratch-gateway.sh). Every command that
 * changes configuration runs inside the scratch namespaces (`ip netns exec`).
 */
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';

const helper = fileURLToPath(new URL('./scratch-gateway.sh', import.meta.url));

/** Root with `ip netns`: the namespace tests can run. */
export function canUseNetns(): boolean {
  if (process.getuid?.() !== 0) return false;
  try {
    execFileSync('ip', ['netns', 'list'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export function scratchName(): string {
  return `cto-fixture-${randomBytes(4).toString('hex')}`;
}

export function scratchUp(name: string): void {
  execFileSync('bash', [helper, 'up', name], { stdio: ['ignore', 'ignore', 'pipe'] });
}

export function scratchDown(name: string): void {
  execFileSync('bash', [helper, 'down', name], { stdio: 'ignore' });
}

/** Run a command inside a namespace and return its stdout. */
export function inNs(ns: string, cmd: string[], input?: string): string {
  return execFileSync('ip', ['netns', 'exec', ns, ...cmd], {
    encoding: 'utf8',
    input,
    maxBuffer: 256 * 1024 * 1024,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

/** Start a command inside a namespace with piped stdio. */
export function spawnInNs(ns: string, cmd: string[]): ChildProcessWithoutNullStreams {
  return spawn('ip', ['netns', 'exec', ns, ...cmd], { stdio: ['pipe', 'pipe', 'pipe'] });
}
