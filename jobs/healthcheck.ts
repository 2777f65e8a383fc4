/**
 * Container health check of the Slack listener (Dockerfile HEALTHCHECK):
 * GET http://127.0.0.1:$PORT/healthz, which answers 200 while the listener's Redis
 * answers a ping (HTTP and Socket Mode alike). Exit 0 = healthy, 1 = not.
 */
import { envSchema } from '../src/config/env.js';

const TIMEOUT_MS = 4_000;

const { PORT } = envSchema.pick({ PORT: true }).parse(process.env);
const url = `http://127.0.0.1:${PORT}/healthz`;
try {
  const res = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
  const body = (await res.text()).trim();
  process.stdout.write(`${url}: ${res.status} ${body}\n`);
  process.exit(res.ok ? 0 : 1);
} catch (err) {
  process.stdout.write(`${url}: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
