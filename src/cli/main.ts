#!/usr/bin/env node
/**
 * conntrack-ops terminal entry: check, lab, demo, start (Slack listener + worker).
 */
import { Command, CommanderError } from 'commander';
import { ZodError } from 'zod';
import { InventoryError } from '../config/inventory.js';
import { GatewayError } from '../gateway/errors.js';
import { logger } from '../infra/logger.js';
import { registerLabCommands } from '../lab/cli.js';
import { registerVmCommands } from '../lab/vm/cli.js';
import { registerCheckCommand } from './check-command.js';
import { registerDemoCommand } from './demo-command.js';
import { registerStartCommand } from './start-command.js';
import { CliError } from './errors.js';

// Terminal commands print a report for people: the JSON log lines of the in-process worker
// and SSH pool (info) would interleave with it. The bot (`start`) keeps its level.
if (process.env['LOG_LEVEL'] === undefined && process.argv[2] !== 'start') logger.level = 'warn';

const program = new Command()
  .name('conntrack-ops')
  .description('Diagnose and fix Linux NAT gateways whose conntrack table fills up')
  .exitOverride();

registerCheckCommand(program);
registerLabCommands(program);
registerVmCommands(program);
registerDemoCommand(program);
registerStartCommand(program);

function exitCodeFor(err: unknown): number {
  if (err instanceof CliError) return err.exitCode;
  if (err instanceof InventoryError || err instanceof ZodError) return 2;
  if (err instanceof GatewayError) return 3;
  return 1;
}

try {
  await program.parseAsync(process.argv);
  process.exit(0);
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode);
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`error: ${message}\n`);
  if (err instanceof GatewayError && err.hint) process.stderr.write(`hint: ${err.hint}\n`);
  process.exit(exitCodeFor(err));
}
