/**
 * Where the VM gateway keeps things.
 *  - cache: the fetched kernel and the built initramfs (reused across runs); $CTO_VM_CACHE
 *    or <repo>/.vm/cache.
 *  - state: one folder per running VM (pid, port, keys, console log) so another process
 *    can find and stop it; $CTO_VM_STATE or <repo>/.vm/run.
 * Both live under .vm/, which is gitignored.
 */
import { fileURLToPath } from 'node:url';
import { dirname, join, resolve } from 'node:path';

/** lab/vm -> repo root. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Guest-side files (init script, fill script, generator source). */
export const GUEST_DIR = join(dirname(fileURLToPath(import.meta.url)), 'guest');

export const PREREQS_SCRIPT = join(REPO_ROOT, 'scripts', 'vm', 'ensure-vm-prereqs.sh');

export function cacheDir(): string {
  return process.env.CTO_VM_CACHE ? resolve(process.env.CTO_VM_CACHE) : join(REPO_ROOT, '.vm', 'cache');
}

export function stateRoot(): string {
  return process.env.CTO_VM_STATE ? resolve(process.env.CTO_VM_STATE) : join(REPO_ROOT, '.vm', 'run');
}

export function stateDirOf(name: string): string {
  return join(stateRoot(), name);
}
