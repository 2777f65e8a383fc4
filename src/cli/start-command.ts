/**
 * `conntrack-ops start` (npm start): the Slack listener, plus a worker in the same
 * process unless --no-worker (production runs workers separately: `npm run worker`).
 */
import type { Command } from 'commander';
import { loadEnv, redactedEnv } from '../config/env.js';
import { logger } from '../infra/logger.js';
import { openRuntime } from '../runtime.js';
import { createSlackApp, missingSlackConfig } from '../slack/app.js';
import { slackPublishers } from '../slack/publish/index.js';
import { startWorkers } from '../worker/start.js';
import { stopOnSignals } from '../worker/bounded-stop.js';
import { resumeWatching } from '../monitor/watch-control.js';
import { CliError } from './errors.js';

export function registerStartCommand(program: Command): void {
  program
    .command('start')
    .description('run the Slack listener (and a worker unless --no-worker)')
    .option('--no-worker', 'only the Slack listener; run workers with `npm run worker`')
    .action(async (opts: { worker: boolean }) => {
      const env = loadEnv();
      const missing = missingSlackConfig(env);
      if (missing.length) {
        throw new CliError(
          `Slack is not configured. Set these environment variables:\n${missing.map((m) => `  - ${m}`).join('\n')}\n` +
            'Create the app from manifest.yml first (README, "Slack app"). To try conntrack-ops without Slack: npm run demo',
          2,
        );
      }
      const rt = await openRuntime(env);
      const app = createSlackApp({ rt, env });
      // The listener is the one place that creates the watch's job schedulers at start-up.
      const resumed = await resumeWatching({ inventory: rt.inventory, watchList: rt.watchList, queues: rt.queues, defaultIntervalSeconds: env.WATCH_INTERVAL_SECONDS });
      const workers = opts.worker ? startWorkers(rt, { publishers: slackPublishers(rt, env) }) : null;
      await app.start(env.PORT);
      logger.info({ env: redactedEnv(env), worker: opts.worker, watching: resumed.upserted }, `conntrack-ops listening (${env.SLACK_MODE} mode)`);
      // SIGTERM / SIGINT: the listener stops first, then the in-process worker, in bounded time
      // (the worker's own bounds: WORKER_STOP_GRACE_SECONDS, WORKER_STOP_SECONDS without Redis).
      stopOnSignals({
        redis: rt.redis,
        workers,
        listener: app,
        closeRuntime: () => rt.close(),
        graceSeconds: env.WORKER_STOP_GRACE_SECONDS,
        goneSeconds: env.WORKER_STOP_SECONDS,
      });
      await new Promise<never>(() => undefined);
    });
}
