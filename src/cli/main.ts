#!/usr/bin/env node
/**
 * conntrack-ops terminal entry: check, start (Slack listener + worker). The lab and the
 * demo have their own command (lab/main.ts: npm run lab, npm run demo).
 */
import { Command } from 'commander';
import { logger } from '../infra/logger.js';
import { registerCheckCommand } from './check-command.js';
import { registerStartCommand } from './start-command.js';
import { registerIncidentCommand } from './incident-command.js';
import { runProgram } from './run-program.js';

// Terminal commands print a report for people: the JSON log lines of the in-process worker
// and SSH pool (info) would interleave with it. The bot (`start`) keeps its level.
if (process.env['LOG_LEVEL'] === undefined && process.argv[2] !== 'start') logger.level = 'warn';

const program = new Command()
  .name('conntrack-ops')
  .description('Diagnose and fix Linux NAT gateways whose conntrack table fills up')
  .exitOverride();

registerCheckCommand(program);
registerStartCommand(program);
registerIncidentCommand(program);

await runProgram(program);
