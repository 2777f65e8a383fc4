/**
 * `conntrack-ops sudo-helper`: prints the helper exactly as docs/ ships it (and the module
 * renders it); `--sudoers <user>` prints the one sudoers line for that user, and refuses a
 * user name sudoers would read as syntax.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '../..');
const TSX = join(ROOT, 'node_modules/.bin/tsx');

function cli(args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(TSX, ['src/cli/main.ts', 'sudo-helper', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

describe('conntrack-ops sudo-helper', () => {
  it('prints the helper (the text docs/conntrack-ops-helper ships)', () => {
    const r = cli([]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(readFileSync(join(ROOT, 'docs/conntrack-ops-helper'), 'utf8'));
    expect(r.stdout.startsWith('#!/bin/sh\n')).toBe(true);
  });

  it('--sudoers prints the one line for the user; a name with syntax in it is refused', () => {
    const ok = cli(['--sudoers', 'ops-bot']);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('\nops-bot ALL=(root) NOPASSWD: /usr/local/sbin/conntrack-ops-helper\n');
    const bad = cli(['--sudoers', 'ops ALL=(ALL) ALL']);
    expect(bad.code).toBe(2);
    expect(bad.stdout).toBe('');
    expect(bad.stderr).toMatch(/not a plain user name/);
  });
});
