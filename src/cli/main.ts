#!/usr/bin/env node
/**
 * conntrack-ops terminal entry: check, watch, start (Slack listener + worker), incident,
 * collect-script and analyze (a check from a saved file, without SSH), sudo-helper (the root-owned
 * helper a non-root gateway user runs through sudo). The lab and the
 * demo have their own command (lab/main.ts: npm run lab, npm run demo).
 */
import { Command } from 'commander';
import { logger } from '../infra/logger.js';
import { registerCheckCommand } from './check-command.js';
import { registerStartCommand } from './start-command.js';
import { registerWatchCommand } from './watch-command.js';
import { registerIncidentCommand } from './incident-command.js';
import { registerSavedCommands } from './saved-commands.js';
import { registerSudoHelperCommand } from './sudo-helper-command.js';
import { runProgram } from './run-program.js';

// Terminal commands print a report for people: the JSON log lines of the in-process worker
// and SSH pool (info) would interleave with it. The bot (`start`) keeps its level.
// The watch prints its own lines (stdout is the event stream, one JSON object a line with --json).
if (process.env['LOG_LEVEL'] === undefined && process.argv[2] !== 'start') logger.level = process.argv[2] === 'watch' ? 'silent' : 'warn';

const program = new Command()
  .name('conntrack-ops')
  .description('Diagnose and fix Linux NAT gateways whose conntrack table fills up')
  .exitOverride();

registerCheckCommand(program);
registerStartCommand(program);
registerWatchCommand(program);
registerIncidentCommand(program);
registerSavedCommands(program);
registerSudoHelperCommand(program);

await runProgram(program);
