/**
 * Runs a terminal program (the product's CLI, and the lab's) and exits: 0, or one `error:`
 * line (plus the gateway's `hint:`) with an exit code that says what went wrong.
 */
import { terminalSafe } from './terminal-safe.js';
import { CommanderError, type Command } from 'commander';
import { ZodError } from 'zod';
import { InventoryError } from '../config/inventory.js';
import { GatewayError } from '../gateway/errors.js';
import { CliError } from './errors.js';

/** 2 = input / inventory, 3 = gateway, 1 = anything else (or the CliError's own code). */
function exitCodeFor(err: unknown): number {
  if (err instanceof CliError) return err.exitCode;
  if (err instanceof InventoryError || err instanceof ZodError) return 2;
  if (err instanceof GatewayError) return 3;
  return 1;
}

/** Parses argv, runs the command and exits. The program should call `.exitOverride()`. */
export async function runProgram(program: Command, argv: string[] = process.argv): Promise<never> {
  try {
    await program.parseAsync(argv);
    process.exit(0);
  } catch (err) {
    if (err instanceof CommanderError) process.exit(err.exitCode);
    const message = err instanceof Error ? err.message : String(err);
    // A gateway's stderr may be in the message: no control character reaches the terminal.
    process.stderr.write(`error: ${terminalSafe(message, { keepNewlines: true })}\n`);
    if (err instanceof GatewayError && err.hint) process.stderr.write(`hint: ${err.hint}\n`);
    process.exit(exitCodeFor(err));
  }
}
