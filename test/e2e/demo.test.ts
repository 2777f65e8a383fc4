/**
 * The README's first command, `npm run demo` (here its CLI, without a terminal, so every
 * question gets its default answer): the whole flow on a real lab gateway, then nothing left.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { listLabs } from '../../lab/index.js';

const run = promisify(execFile);

describe('the demo', () => {
  it('check -> four-eyes refusal -> approve with the delete step -> apply frees the dead entries -> verify -> roll back -> teardown', async () => {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'lab/main.ts', 'demo'], {
      timeout: 150_000,
      maxBuffer: 32 * 1024 * 1024,
      env: { ...process.env, REDIS_URL: '', LOG_LEVEL: 'silent' },
    });
    const lab = /== tearing down lab (cto-[a-z0-9]+)/.exec(stdout)?.[1];
    expect(lab, stdout.slice(-3000)).toBeDefined();
    expect(stdout).toMatch(/refused: You requested this check, so someone else has to approve/);
    expect(stdout).toMatch(/nf_conntrack_max: 262144 -> 524288 +\[NOT WRITABLE HERE\]/);
    expect(stdout).toMatch(/nf_conntrack_tcp_timeout_established +applied +432000 -> 86400/);
    // The 20,000 dead entries are gone (a few more or less if the kernel evicted some meanwhile).
    const freed = /idle entries deleted: (\d+) of (\d+) selected.*count (\d+) -> (\d+)/.exec(stdout);
    expect(freed, stdout.slice(-3000)).not.toBeNull();
    expect(Number(freed![1])).toBe(20_000);
    expect(Number(freed![3]) - Number(freed![4])).toBeGreaterThanOrEqual(19_900);
    expect(stdout).toMatch(/a second click on Approve: This plan is already approved/);
    expect(stdout).toMatch(/rollback rolled-back in/);
    expect(stdout).toMatch(/plan state: rolled-back/);
    // Its own lab is gone (other test files may have labs of their own meanwhile).
    expect((await listLabs()).map((l) => l.name)).not.toContain(lab);
  }, 180_000);
});
