/**
 * Child process of the big-dump benchmark (bench/parts/big-dump.ts): one thing over a fresh
 * ssh2 connection to a lab gateway, then one JSON line with its time and this process's
 * peak RSS (its own process, so the bench's memory does not count).
 *
 *   node --import tsx bench/children/check-dump.ts '<json: {mode, gateway, config}>'
 *     check   runCheck end to end (connect, facts beside the streamed dump, findings, plan)
 *     floor   the bare `conntrack -L` streamed over the connection and discarded
 */
import { z } from 'zod';
import { runCheck } from '../../src/check/run-check.js';
import { gatewayConfigSchema } from '../../src/config/inventory.js';
import { commands } from '../../src/gateway/commands.js';
import { freshSessions } from '../../src/gateway/session-pool.js';
import { GatewaySession } from '../../src/gateway/ssh-session.js';

const argsSchema = z.object({
  mode: z.enum(['check', 'floor']),
  gateway: z.string().min(1),
  config: gatewayConfigSchema,
  timeoutMs: z.number().int().positive(),
});
const args = argsSchema.parse(JSON.parse(process.argv[2] ?? '{}'));

const t0 = performance.now();
let entries = 0;
let unparsed = 0;
let bytes = 0;
let lines = 0;
if (args.mode === 'check') {
  const report = await runCheck({ gatewayName: args.gateway, config: args.config, sessions: freshSessions(), dumpTimeoutMs: args.timeoutMs });
  entries = report.table.entries;
  unparsed = report.table.unparsed;
  lines = entries + unparsed;
} else {
  const session = await GatewaySession.connect(args.gateway, args.config);
  try {
    const { stdout, done } = await session.stream(commands.script('bare conntrack -L (bench floor)', 'conntrack -L'), { timeoutMs: args.timeoutMs });
    const drained = (async () => {
      for await (const chunk of stdout as AsyncIterable<Buffer>) {
        bytes += chunk.length;
        for (let i = chunk.indexOf(10); i >= 0; i = chunk.indexOf(10, i + 1)) lines++;
      }
    })();
    const [, end] = await Promise.all([drained, done]);
    if (end.code !== 0) throw new Error(`conntrack -L exited ${end.code}`);
  } finally {
    session.close();
  }
}
const ms = performance.now() - t0;
const usage = process.resourceUsage();
process.stdout.write(
  `${JSON.stringify({
    mode: args.mode,
    ms: Math.round(ms),
    lines,
    entries,
    unparsed,
    bytes,
    linesPerSec: Math.round(lines / (ms / 1000)),
    maxRssKb: usage.maxRSS,
    cpuMs: Math.round((usage.userCPUTime + usage.systemCPUTime) / 1000),
  })}\n`,
);
// ssh2 may keep a handle open for a moment after close
process.exit(0);
