/**
 * The bot's wiring with its embedded Redis, in its own process, for the embedded-Redis
 * fault test: opens the runtime (LOG_LEVEL from the env, trace in the test), writes the
 * Redis URL (a secret) to CTO_URL_FILE (0600) for the test alone, queues CTO_JOBS check jobs
 * (no worker runs them) and then answers `count` on stdin with the number of queued jobs.
 * Env: CTO_URL_FILE, CTO_JOBS, INVENTORY, QUEUE_PREFIX.
 */
import { writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { z } from 'zod';
import { loadEnv } from '../../../src/config/env.js';
import { enqueueCheck } from '../../../src/queue/producer.js';
import { openRuntime } from '../../../src/runtime.js';

const own = z.object({ CTO_URL_FILE: z.string(), CTO_JOBS: z.coerce.number().int().min(0).max(10_000) }).parse(process.env);
const rt = await openRuntime(loadEnv());
await writeFile(own.CTO_URL_FILE, rt.redisHandle.url, { mode: 0o600 });
for (let i = 0; i < own.CTO_JOBS; i++) {
  await enqueueCheck(rt.queues, { gateway: 'gw-1', requestedBy: 'embedded-test', requestId: `embedded-${i}`, origin: { kind: 'cli' } }, { attempts: 1 });
}
process.stdout.write('READY\n');
for await (const line of createInterface({ input: process.stdin })) {
  if (line === 'count') process.stdout.write(`COUNT ${await rt.queues.check.count()}\n`);
  if (line === 'stop') break;
}
await rt.close();
process.exit(0);
