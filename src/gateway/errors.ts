/**
 * Errors from talking to a gateway. Each carries a message an SRE can act on;
 * `kind` lets front ends (terminal, Slack) pick advice without parsing text.
 */
export type GatewayErrorKind =
  | 'unreachable'
  | 'timeout'
  | 'auth'
  | 'host-key-mismatch'
  | 'command-failed'
  | 'command-timeout'
  | 'output-too-large'
  | 'config';

export class GatewayError extends Error {
  override name = 'GatewayError';
  constructor(
    readonly kind: GatewayErrorKind,
    message: string,
    readonly hint?: string,
    /** What a chat channel may read instead of `message` (which keeps local detail, e.g. file paths, for logs and the terminal). */
    readonly channelMessage?: string,
  ) {
    super(message);
  }
}

/** The text of an error for a chat channel: a GatewayError's channel-safe message when it has one. */
export function channelText(err: unknown): string {
  if (err instanceof GatewayError && err.channelMessage !== undefined) return err.channelMessage;
  return err instanceof Error ? err.message : String(err);
}

/**
 * A connect that times out on a NAT gateway is very often the table itself:
 * a table full of assured entries drops the SYN of every new SSH connection.
 */
export const SATURATED_CONNECT_HINT =
  'If this gateway is dropping new connections (conntrack table full), new SSH sessions are dropped too. ' +
  'Use the console or an already open session; free entries (e.g. `conntrack -D` of idle flows) or ' +
  'exempt management SSH from tracking (iptables -t raw ... -j NOTRACK / nft notrack) so the bot can always get in.';

export class CommandFailedError extends GatewayError {
  constructor(
    readonly command: string,
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    super(
      'command-failed',
      `gateway command "${command}" failed with ${exitCode === null ? 'a signal' : `exit code ${exitCode}`}` +
        (stderr.trim() ? `: ${stderr.trim().slice(0, 500)}` : ''),
    );
  }
}

/**
 * A command printed more than its cap (`GatewayCommand.maxOutputBytes`): reading stopped and
 * the command was killed, so a hostile or huge gateway cannot run the worker out of memory.
 */
export class OutputTooLargeError extends GatewayError {
  constructor(
    readonly command: string,
    readonly gateway: string,
    readonly limitBytes: number,
  ) {
    super(
      'output-too-large',
      `"${command}" on ${gateway} printed more than ${formatBytes(limitBytes)} (this command's limit); the bot stopped reading and ended it. ` +
        'Nothing was changed. A gateway should never print this much here: look at what this command prints on it.',
    );
  }
}

/** 16777216 -> "16 MiB" (limits are whole KiB / MiB). */
export function formatBytes(n: number): string {
  if (n >= 1 << 20 && n % (1 << 20) === 0) return `${n / (1 << 20)} MiB`;
  if (n >= 1 << 10 && n % (1 << 10) === 0) return `${n / (1 << 10)} KiB`;
  return `${n} bytes`;
}
