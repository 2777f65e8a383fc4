/**
 * Space-Saving's bucket pool: with every counter alone in its own bucket (all counts
 * distinct, which a long dump reaches: a 2,000,000-line dump did at about 1.6 M lines),
 * an increment needs one bucket more than there are counters. With exactly `capacity`
 * buckets the pool ran dry and the check never ended (it hung in the bucket walk).
 * Run in a child process with a time limit, so a regression fails instead of hanging.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../bench/lib/child.js';

function topAfter(capacity: number, keys: string[]): unknown {
  const script = `
    const { SpaceSaving } = await import('./src/analysis/table/space-saving.ts');
    const ss = new SpaceSaving(${capacity});
    for (const k of ${JSON.stringify(keys)}) ss.add(k);
    process.stdout.write(JSON.stringify({ top: ss.top(${capacity}), approximate: ss.approximate }));
  `;
  const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    timeout: 30_000,
  });
  return JSON.parse(out);
}

describe('Space-Saving with every counter in a bucket of its own', () => {
  it('counts on (a, b alone in buckets 1 and 2, then b moves to a count no bucket has)', () => {
    // a:1 b:2 -> c makes it approximate with 2 buckets in use; b -> 3 needs a third bucket
    const keys = ['a', 'b', 'b', 'c', 'b', 'b', 'a', 'b', 'a', 'a', 'a', 'a', 'a', 'b'];
    expect(topAfter(2, keys)).toEqual({
      top: [
        { key: 'a', count: 7, error: 0 },
        { key: 'b', count: 6, error: 0 },
      ],
      approximate: true,
    });
  });

  it('a long skewed stream over more keys than counters ends, heavy keys first', () => {
    const keys: string[] = [];
    for (let i = 0; i < 4000; i++) keys.push(`k${i % 7 === 0 ? 0 : i % 3 === 0 ? 1 : 2 + (i % 50)}`);
    const res = topAfter(8, keys) as { top: { key: string; count: number }[]; approximate: boolean };
    expect(res.approximate).toBe(true);
    expect(res.top.slice(0, 2).map((t) => t.key)).toEqual(['k1', 'k0']);
  });
});
