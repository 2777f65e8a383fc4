import { pino } from 'pino';

/**
 * One logger for the process; secrets are redacted by path as a second line of defence.
 * Logs go to stderr: stdout belongs to what a command prints (reports, --json lines).
 */
export const logger = pino({
  level: process.env.LOG_LEVEL ?? 'info',
  redact: {
    paths: ['token', '*.token', 'privateKey', '*.privateKey', 'signingSecret', '*.signingSecret', 'headers.authorization'],
    censor: '[redacted]',
  },
}, process.stderr);
export type Logger = typeof logger;
