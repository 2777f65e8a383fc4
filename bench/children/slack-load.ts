/**
 * Load generator of the ack benchmark, in its own process so its work does not run on
 * the receiver's event loop: N signed `/conntrack check <gw>` requests, all sent at once
 * (each with its own trigger id), one JSON line with every latency and job id.
 *
 *   node --import tsx bench/children/slack-load.ts '<json options>'
 */
import { Agent, request } from 'node:http';
import { buildSlashCommandBody, signedFormHeaders } from '../../test/support/slack-signing.js';

interface Options {
  url: string;
  secret: string;
  gateway: string;
  count: number;
  round: number;
  warmup: number;
  channelId: string;
  userId: string;
  /** Print READY after the warm-up and wait for a line on stdin before the burst (profiling). */
  waitForGo?: boolean;
  /** The measured burst's command text (default `check <gateway>`); `help` measures Bolt without Redis. */
  text?: string;
}

interface Outcome {
  ms: number;
  status: number;
  jobId: string | null;
  error?: string;
}

const o = JSON.parse(process.argv[2] ?? '{}') as Options;
const runTag = `${process.pid}.${Date.now().toString(36)}`;

function body(text: string, triggerId: string): string {
  return buildSlashCommandBody({ text, triggerId, channelId: o.channelId, userId: o.userId, responseUrl: 'http://127.0.0.1:9/unused' });
}

// node:http (lighter per request than fetch): the client's own cost stays small.
const agent = new Agent({ keepAlive: true, maxSockets: Infinity });
const target = new URL(o.url);

function send(raw: string): Promise<Outcome> {
  // Signed just before sending, like Slack does (the timestamp is part of the signature).
  const headers = { ...signedFormHeaders(o.secret, raw), 'content-length': String(Buffer.byteLength(raw)) };
  const t0 = performance.now();
  return new Promise((resolve) => {
    const req = request(
      { host: target.hostname, port: target.port, path: target.pathname, method: 'POST', headers, agent, timeout: 30_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const ms = performance.now() - t0;
          const m = /job `([^`]+)`/.exec(Buffer.concat(chunks).toString('utf8'));
          resolve({ ms, status: res.statusCode ?? 0, jobId: m?.[1] ?? null });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout after 30 s')));
    req.on('error', (err) => resolve({ ms: performance.now() - t0, status: 0, jobId: null, error: err.message }));
    req.end(raw);
  });
}

// Warm-up (not measured, creates no job): JIT on both sides, Bolt's auth.test, and as many
// open connections as the burst will use (sequential requests first, then one concurrent
// burst of `help`), so the measured burst is not a burst of TCP handshakes.
const warm: number[] = [];
for (let i = 0; i < o.warmup; i++) warm.push((await send(body('help', `warm.${runTag}.${i}`))).ms);
await Promise.all(Array.from({ length: o.count }, (_, i) => send(body('help', `warmc.${runTag}.${i}`))));

if (o.waitForGo) {
  process.stdout.write('READY\n');
  await new Promise<void>((resolve) => process.stdin.once('data', () => resolve()));
  process.stdin.pause();
}

const bodies = Array.from({ length: o.count }, (_, i) => body(o.text ?? `check ${o.gateway}`, `${1_000_000 + o.round}.${runTag}.${i}`));
const started = performance.now();
const outcomes = await Promise.all(bodies.map((b) => send(b)));
const wallMs = performance.now() - started;
process.stdout.write(
  `${JSON.stringify({
    round: o.round,
    wallMs,
    warmupMs: warm,
    latencies: outcomes.map((x) => x.ms),
    statuses: outcomes.map((x) => x.status),
    jobIds: outcomes.map((x) => x.jobId),
    errors: outcomes.filter((x) => x.error).map((x) => x.error),
  })}\n`,
);
agent.destroy();
