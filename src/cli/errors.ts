import { ZodError } from 'zod';
import { InventoryError } from '../config/inventory.js';
import { GatewayError } from '../gateway/errors.js';

/** An error the terminal shows as one clear line, with an exit code. */
export class CliError extends Error {
  override name = 'CliError';
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

/** 2 = input / inventory, 3 = gateway, 1 = anything else (or the CliError's own code). */
export function exitCodeFor(err: unknown): number {
  if (err instanceof CliError) return err.exitCode;
  if (err instanceof InventoryError || err instanceof ZodError) return 2;
  if (err instanceof GatewayError) return 3;
  return 1;
}

/** `error: <message>` and, for a gateway error that has one, `hint: <hint>` (lines for stderr). */
export function describeCliError(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const hint = err instanceof GatewayError && err.hint ? `hint: ${err.hint}\n` : '';
  return `error: ${message}\n${hint}`;
}
