/**
 * `conntrack-ops sudo-helper`: prints the root-owned helper a non-root gateway user runs
 * through sudo (install it as root:root 0755 at its path); `--sudoers <user>` prints the
 * one sudoers line instead. Both are rendered from the same module the bot calls them by.
 */
import type { Command } from 'commander';
import { renderHelperScript } from '../gateway/sudo-helper/script.js';
import { renderSudoers, sudoUserSchema } from '../gateway/sudo-helper/sudoers.js';
import { CliError } from './errors.js';

export function registerSudoHelperCommand(program: Command): void {
  program
    .command('sudo-helper')
    .description('print the root-owned sudo helper for a non-root gateway user (or, with --sudoers, its one sudoers line)')
    .option('--sudoers <user>', 'print the sudoers file for this gateway user instead')
    .action((opts: { sudoers?: string }) => {
      if (opts.sudoers !== undefined) {
        const user = sudoUserSchema.safeParse(opts.sudoers);
        if (!user.success) throw new CliError(`--sudoers: "${opts.sudoers}" is not a plain user name`, 2);
        process.stdout.write(renderSudoers(user.data));
        return;
      }
      process.stdout.write(renderHelperScript());
    });
}
