/**
 * Child of bench/tools/check-cpu.ts: the bot's CPU per whole check over real SSH, for the
 * checkout at <root> (its runCheck, loaded from there). `rounds` checks one after the other in
 * this process, each on a fresh ssh2 connection, then the bare `conntrack -L` streamed and
 * discarded (this worktree's ssh2 code); one JSON line: process CPU (user + system) and wall
 * time of each check, the floor's CPU, and the table summary of the last check.
 *
 *   node --import tsx bench/children/check-cpu.ts <root> '<json: {gateway, config, rounds}>'
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { gatewayConfigSchema, type GatewayConfig } from '../../src/config/inventory.js';
import type { CheckReport } from '../../src/core/model.js';
import { commands } from '../../src/gateway/commands.js';
import type { SessionProvider } from '../../src/gateway/session-provider.js';
import { GatewaySession } from '../../src/gateway/ssh-session.js';

const root = process.argv[2];
const args = z
  .object({ gateway: z.string().min(1), config: gatewayConfigSchema, rounds: z.number().int().min(1).max(20) })
  .parse(JSON.parse(process.argv[3] ?? '{}'));
if (!root) throw new Error('usage: check-cpu.ts <checkout root> <json>');
const load = async <T>(rel: string): Promise<T> => (await import(pathToFileURL(join(root, rel)).href)) as T;
const { runCheck } = await load<{ runCheck: (o: { gatewayName: string; config: GatewayConfig; sessions: SessionProvider }) => Promise<CheckReport> }>(
  'src/check/run-check.ts',
);
const { freshSessions } = await load<{ freshSessions: () => SessionProvider }>('src/gateway/session-pool.ts');

const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const cpu: number[] = [];
const wall: number[] = [];
let table: Record<string, unknown> = {};
for (let r = 0; r < args.rounds; r++) {
  const c = cpuMs();
  const t = performance.now();
  const report = await runCheck({ gatewayName: args.gateway, config: args.config, sessions: freshSessions() });
  wall.push(Math.round(performance.now() - t));
  cpu.push(Math.round(cpuMs() - c));
  table = { ...report.table } as Record<string, unknown>;
}
delete table.durationMs;
// The floor: the bare `conntrack -L` streamed over a fresh ssh2 connection and discarded (ssh2's own CPU).
const session = await GatewaySession.connect(args.gateway, args.config);
const c = cpuMs();
const { stdout, done } = await session.stream(commands.script('bare conntrack -L (bench floor)', 'conntrack -L'), { timeoutMs: 120_000 });
let bytes = 0;
for await (const chunk of stdout as AsyncIterable<Buffer>) bytes += chunk.length;
await done;
const floorCpu = Math.round(cpuMs() - c);
session.close();
process.stdout.write(`${JSON.stringify({ cpu, wall, floorCpu, bytes, table })}\n`);
process.exit(0);
