#!/usr/bin/env node
/**
 * Standalone entry for the VM gateway commands until (and besides) the main CLI wiring:
 *   npx tsx src/lab/vm/main.ts lab vm up|fill|status|exec|down|list ...
 */
import { Command, CommanderError } from 'commander';
import { registerVmCommands } from './cli.js';

const program = new Command().name('conntrack-ops-vm').exitOverride();
registerVmCommands(program);
try {
  await program.parseAsync(process.argv);
  process.exit(0);
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode);
  process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
