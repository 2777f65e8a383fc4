#!/usr/bin/env node
/** Stand-alone entry for the lab commands: `tsx src/lab/main.ts lab up|fill|down|list`. */
import { Command } from 'commander';
import { registerLabCommands } from './cli.js';

const program = new Command().name('conntrack-ops-lab');
registerLabCommands(program);
try {
  await program.parseAsync(process.argv);
  process.exit(0);
} catch (err) {
  process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
