/**
 * `conntrack-ops watch` as an SRE runs it: the real command in its own process (embedded
 * redis-server, in-process worker), a real lab NAT gateway over real SSH, its stdout read
 * line by line. Every line is validated with the schema below (the documented --json shape).
 *
 * 85 % -> exactly one `opened` warning; saturated -> one `escalated` critical and the
 * automatic check's findings line (never applied); flushed -> one `resolved`; SIGINT -> exit
 * 0 within seconds, no job scheduler left; the lab's namespaces all gone afterwards.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { fillToPercent, flushTable, labDown, labUp, type Lab } from '../../lab/index.js';
import { loadEnv } from '../../src/config/env.js';
import { openRedis } from '../../src/infra/redis.js';
import { watchGateways } from '../../src/monitor/watch-control.js';
import { openRuntime } from '../../src/runtime.js';
import { startWorkers } from '../../src/worker/start.js';

const ROOT = resolve(import.meta.dirname, '../..');
const TSX = join(ROOT, 'node_modules/.bin/tsx');

const drops = z.object({ drop: z.number().int().nonnegative(), earlyDrop: z.number().int().nonnegative(), insertFailed: z.number().int().nonnegative() }).strict();
const episodeLine = z
  .object({
    event: z.enum(['opened', 'escalated', 'reopened', 'reminder', 'resolved', 'poll-failed', 'poll-recovered']),
    gateway: z.string().min(1),
    at: z.iso.datetime(),
    level: z.enum(['warning', 'critical']).nullable(),
    kind: z.enum(['utilisation', 'drops', 'port-exhaustion']).nullable(),
    episodeId: z.string().nullable(),
    percent: z.number().min(0).max(100).nullable(),
    count: z.number().int().nonnegative().nullable(),
    max: z.number().int().positive().nullable(),
    drops,
    durationMs: z.number().nonnegative().optional(),
    flaps: z.number().int().nonnegative().optional(),
    error: z.string().optional(),
  })
  .strict()
  // Only poll failures outside an episode have no level / kind.
  .refine((l) => (l.level !== null && l.kind !== null) || l.event === 'poll-failed' || l.event === 'poll-recovered', 'level and kind are set for episode events');
const checkLine = z
  .object({
    event: z.literal('check'),
    gateway: z.string(),
    at: z.iso.datetime(),
    worst: z.enum(['critical', 'warning', 'info', 'ok']),
    findings: z.array(z.object({ id: z.string(), severity: z.enum(['critical', 'warning', 'info', 'ok']), title: z.string() }).strict()),
    planId: z.string().min(8),
    steps: z.number().int().nonnegative(),
    applied: z.literal(false),
  })
  .strict();
const checkFailedLine = z.object({ event: z.literal('check-failed'), gateway: z.string(), at: z.iso.datetime(), error: z.string() }).strict();
const watchLine = z.union([episodeLine, checkLine, checkFailedLine]);
type WatchLine = z.infer<typeof watchLine>;

let lab: Lab;
let dir: string;
let inventoryPath: string;
let child: ChildProcess | null = null;
let stderr = '';
const lines: WatchLine[] = [];
const badLines: string[] = [];

function startWatch(args: string[], extraEnv: Record<string, string> = {}): ChildProcess {
  const c = spawn(TSX, ['src/cli/main.ts', 'watch', ...args], { cwd: ROOT, env: { PATH: process.env['PATH'], HOME: process.env['HOME'], USER: 'sre', ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
  let buf = '';
  c.stdout?.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const raw = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      const parsed = watchLine.safeParse(JSON.parse(raw));
      if (parsed.success) lines.push(parsed.data);
      else badLines.push(`${raw}\n  ${parsed.error.message}`);
    }
  });
  c.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  return c;
}

async function waitUntil<T>(what: string, probe: () => T | undefined | null | false, timeoutMs: number): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}\n--- lines ---\n${JSON.stringify(lines, null, 1).slice(-3000)}\n--- stderr ---\n${stderr.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const events = (name: WatchLine['event']) => lines.filter((l) => l.event === name);

function labNamespaces(name: string): string[] {
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n.startsWith(`${name}-`));
}

beforeAll(async () => {
  lab = await labUp({});
  dir = await mkdtemp(join(tmpdir(), 'cto-watch-cli-'));
  inventoryPath = join(dir, 'inventory.yml');
  await lab.writeInventory(inventoryPath, { merge: false });
}, 180_000);

afterAll(async () => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  if (lab) {
    await labDown(lab);
    expect(labNamespaces(lab.name)).toEqual([]);
  }
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('conntrack-ops watch in a terminal, against a real lab gateway', () => {
  it('rejects a bad interval and an unknown gateway with one line and exit 2', async () => {
    const runOnce = (args: string[]) =>
      new Promise<{ code: number | null; out: string; err: string }>((res) => {
        const c = spawn(TSX, ['src/cli/main.ts', 'watch', ...args], { cwd: ROOT, env: { PATH: process.env['PATH'], HOME: process.env['HOME'] }, stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        c.stdout.on('data', (d: Buffer) => (out += d.toString()));
        c.stderr.on('data', (d: Buffer) => (err += d.toString()));
        c.on('exit', (code) => res({ code, out, err }));
      });
    for (const bad of ['2h', '0', '1.5s', 'soon', '7200']) {
      const r = await runOnce([lab.name, '--inventory', inventoryPath, '--interval', bad]);
      expect(r.code, bad).toBe(2);
      expect(r.out).toBe('');
      expect(r.err.trim().split('\n'), bad).toHaveLength(1);
      expect(r.err).toContain(`invalid --interval "${bad}"`);
    }
    const unknown = await runOnce(['gw-nope', '--inventory', inventoryPath, '--interval', '1s']);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain('unknown gateway "gw-nope"');
  }, 60_000);

  it('85 % opens one warning, saturation escalates once (with the check, not applied), a flush resolves once, SIGINT exits 0', async () => {
    child = startWatch([lab.name, '--inventory', inventoryPath, '--interval', '1s', '--json']);
    await waitUntil('the watch to start', () => stderr.includes('watching '), 60_000);
    expect(stderr).toContain(`watching ${lab.name} every 1 s (embedded Redis)`);
    await sleep(4_000); // a few quiet polls: nothing to say
    expect(lines).toEqual([]);

    const filled = await fillToPercent(lab, 85);
    expect(filled.count / filled.max).toBeGreaterThan(0.84);
    const opened = await waitUntil('the opened line', () => events('opened')[0], 30_000);
    expect(opened).toMatchObject({ gateway: lab.name, level: 'warning', kind: 'utilisation', max: filled.max });
    expect(opened.event === 'opened' && opened.percent).toBeGreaterThanOrEqual(80);
    await sleep(5_000); // it holds still: no second line
    expect(lines.map((l) => l.event)).toEqual(['opened']);

    await fillToPercent(lab, 100);
    const escalated = await waitUntil('the escalated line', () => events('escalated')[0], 60_000);
    expect(escalated).toMatchObject({ gateway: lab.name, level: 'critical' });
    // The automatic check at critical ran through the warm session: one findings line, nothing applied.
    const check = await waitUntil('the automatic check line', () => lines.find((l) => l.event === 'check' || l.event === 'check-failed'), 180_000);
    expect(check.event, JSON.stringify(check)).toBe('check');
    if (check.event === 'check') {
      expect(check.worst).toBe('critical');
      expect(check.applied).toBe(false);
    }

    await flushTable(lab);
    const resolved = await waitUntil('the resolved line', () => events('resolved')[0], 60_000);
    expect(resolved).toMatchObject({ gateway: lab.name, episodeId: opened.event === 'opened' ? opened.episodeId : 'x' });
    await sleep(4_000);
    expect(events('opened')).toHaveLength(1);
    expect(events('escalated')).toHaveLength(1);
    expect(events('resolved')).toHaveLength(1);
    expect(events('check')).toHaveLength(1);
    expect(badLines).toEqual([]);

    const c = child;
    const t0 = Date.now();
    const exited = new Promise<number | null>((r) => c.once('exit', (code) => r(code)));
    c.kill('SIGINT');
    const code = await Promise.race([exited, sleep(15_000).then(() => 'timeout' as const)]);
    expect(code, stderr.slice(-2000)).toBe(0);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(stderr).toContain(`unwatched ${lab.name}`);
    expect(stderr).toContain('job schedulers left: none');
  }, 400_000);

  it('with a shared REDIS_URL: runs no worker, prints the events of the bot\'s polls, leaves a gateway watched before it started, unwatches its own', async () => {
    const redis = await openRedis(undefined);
    const sharedInventory = join(dir, 'shared.yml');
    await lab.writeInventory(sharedInventory, { merge: false });
    await lab.writeInventory(sharedInventory, { gatewayName: 'gw-slack', merge: true });
    const rt = await openRuntime(loadEnv({ REDIS_URL: redis.url, INVENTORY: sharedInventory, LOG_LEVEL: 'silent' }));
    // the bot's worker on that Redis (its Slack publishers are not the point here)
    const bot = startWorkers(rt, { only: ['poll'] });
    try {
      // Watched from Slack before the terminal starts.
      const deps = { inventory: rt.inventory, watchList: rt.watchList, queues: rt.queues, defaultIntervalSeconds: 30 };
      await watchGateways(deps, ['gw-slack'], { intervalSeconds: 30, channel: 'C0OPS0001', by: 'U0ALICE01' });
      stderr = '';
      lines.length = 0;
      const c = startWatch([lab.name, 'gw-slack', '--inventory', sharedInventory, '--interval', '1s', '--json'], { REDIS_URL: redis.url });
      await waitUntil('the watch to start', () => stderr.includes('watching '), 60_000);
      expect(stderr).toContain('gw-slack is already watched (every 30 s, by U0ALICE01): left as it is');
      expect(stderr).toContain("shared REDIS_URL: the bot's workers poll, this process prints their events");
      // the bot's worker polls; the terminal prints what it finds
      await fillToPercent(lab, 85);
      const opened = await waitUntil('the opened line from the bot\'s polls', () => events('opened').find((l) => l.gateway === lab.name), 60_000);
      expect(opened).toMatchObject({ level: 'warning', kind: 'utilisation' });
      await flushTable(lab);

      const exited = new Promise<number | null>((r) => c.once('exit', (code) => r(code)));
      c.kill('SIGTERM');
      expect(await exited, stderr.slice(-2000)).toBe(0);
      expect(stderr).toContain(`unwatched ${lab.name}; left watching gw-slack (watched before this command); job schedulers left: watch-gw-slack; episode state and samples stay in REDIS_URL`);
      expect((await rt.watchList.all()).map((e) => e.gateway)).toEqual(['gw-slack']);
      expect((await rt.watchList.get('gw-slack'))?.channel).toBe('C0OPS0001');
      expect((await rt.queues.poll.getJobSchedulers(0, -1)).map((s) => s.key)).toEqual(['watch-gw-slack']);
      expect(badLines).toEqual([]);
    } finally {
      await bot.close();
      await rt.close();
      await redis.stop();
    }
  }, 120_000);
});
