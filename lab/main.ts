#!/usr/bin/env node
/**
 * The lab's own command, `npm run lab -- <command>` (not part of the product's CLI):
 *   up | fill | down | list   lab NAT gateways in network namespaces (./cli.ts)
 *   vm up | fill | ...        a NAT gateway in a QEMU VM (./vm/cli.ts)
 *   demo                      `npm run demo` (./demo/command.ts)
 */
import { Command } from 'commander';
import { runProgram } from '../src/cli/run-program.js';
import { logger } from '../src/infra/logger.js';
import { registerLabCommands } from './cli.js';
import { registerDemoCommand } from './demo/command.js';
import { registerVmCommands } from './vm/cli.js';

// The demo's report is for people: the JSON log lines of its in-process worker would interleave.
if (process.env['LOG_LEVEL'] === undefined) logger.level = 'warn';

const program = new Command()
  .name('npm run lab --')
  .description('lab NAT gateways on this machine (root) for tests and the demo: network namespaces, and VMs under `vm`')
  .exitOverride();

registerLabCommands(program);
registerVmCommands(program);
registerDemoCommand(program);

await runProgram(program);
