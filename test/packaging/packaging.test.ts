/**
 * What ships: `npm run build` (dist/), the `conntrack-ops` command (bin/), the Docker
 * image (Dockerfile, .dockerignore) and docker-compose.yml. The built worker and the
 * built listener run here against a real redis-server, the local Slack API server and
 * the image's own health check; Docker itself only where it exists (said when skipped).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify } from 'yaml';
import { z } from 'zod';
import { freePort, startEmbeddedRedis, type RedisHandle } from '../../src/infra/redis.js';
import { QUEUES } from '../../src/queue/jobs.js';
import { enqueueCheck, openQueues, type Queues } from '../../src/queue/producer.js';
import { startSlackApi, type SlackApiServer } from '../support/slack-api/index.js';
import { buildSlashCommandBody, signedFormHeaders } from '../support/slack-signing.js';
import { copyFromContext, execForm, healthcheckCommand, parseDockerfile, parseDockerignore, type Stage } from './helpers/dockerfile.js';
import { eventually, Running, runToEnd } from './helpers/processes.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const NODE = process.execPath;
const BIN = join(ROOT, 'bin', 'conntrack-ops.js');
const SECRET = 'packaging-signing-secret-7d2e';
const PREFIX = '{cto-packaging}';

const composeSchema = z.object({
  services: z.record(
    z.string(),
    z.object({
      build: z.unknown().optional(),
      image: z.string().optional(),
      command: z.array(z.string()).optional(),
      stop_grace_period: z.string().optional(),
      healthcheck: z.object({ disable: z.boolean().optional(), test: z.array(z.string()).optional() }).optional(),
    }),
  ),
});

// Docker parts run only where Docker is: `docker compose` (a plugin) and a daemon that answers.
const hasCompose = (await runToEnd('docker', ['compose', 'version'], { cwd: ROOT, timeoutMs: 20_000 })).code === 0;
const hasDaemon = (await runToEnd('docker', ['info', '--format', '{{.ServerVersion}}'], { cwd: ROOT, timeoutMs: 20_000 })).code === 0;

let dir: string;
let inventoryPath: string;
let closedPort: number;
let stages: Stage[];

/** The image's commands, by instruction, of the last (runtime) stage. */
function runtimeCommand(keyword: 'CMD' | 'HEALTHCHECK'): string[] {
  const found = stages.at(-1)?.instructions.find((i) => i.keyword === keyword);
  if (!found) throw new Error(`the runtime stage has no ${keyword}`);
  return keyword === 'CMD' ? execForm(found.args) : healthcheckCommand(found.args);
}

/** A Go-style duration as compose takes it (1m30s, 10m, 45s) in seconds. */
function seconds(duration: string): number {
  const parts = [...duration.matchAll(/(\d+)(h|m|s)/g)];
  if (parts.map((p) => p[0]).join('') !== duration) throw new Error(`unparsed duration ${duration}`);
  return parts.reduce((sum, p) => sum + Number(p[1]) * { h: 3600, m: 60, s: 1 }[p[2] as 'h' | 'm' | 's'], 0);
}

beforeAll(async () => {
  const build = await runToEnd('npm', ['run', 'build'], { cwd: ROOT, timeoutMs: 180_000 });
  expect(build.code, build.stdout + build.stderr).toBe(0);
  stages = parseDockerfile(await readFile(join(ROOT, 'Dockerfile'), 'utf8'));
  dir = await mkdtemp(join(tmpdir(), 'cto-packaging-'));
  const key = join(dir, 'id_ed25519');
  const keygen = await runToEnd('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key], { cwd: dir, timeoutMs: 20_000 });
  expect(keygen.code, keygen.stderr).toBe(0);
  // Nothing listens there: a check of gw-closed fails fast with "connection refused".
  closedPort = await freePort();
  inventoryPath = join(dir, 'inventory.yml');
  await writeFile(
    inventoryPath,
    stringify({ gateways: { 'gw-closed': { host: '127.0.0.1', port: closedPort, user: 'root', identityFile: key, hostKey: 'SHA256:ic9+NvPvYbG8dlJBJUBOAsNcui4WkSOOwedwmWRpo6g' } } }),
  );
}, 200_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('npm run build', () => {
  it('emits the product (src/, jobs/) and nothing of the tests or benchmarks', async () => {
    expect(existsSync(join(ROOT, 'dist/src/cli/main.js'))).toBe(true);
    expect(existsSync(join(ROOT, 'dist/jobs/worker.js'))).toBe(true);
    expect((await readdir(join(ROOT, 'dist'))).sort()).toEqual(['jobs', 'src']);
  });
});

describe('docker-compose.yml', () => {
  it('runs node on files of the build in every service built from this repo', async () => {
    const compose = composeSchema.parse(parseYaml(await readFile(join(ROOT, 'docker-compose.yml'), 'utf8')));
    const built = Object.entries(compose.services).filter(([, s]) => s.build !== undefined);
    expect(built.map(([name]) => name).sort()).toEqual(['bot', 'worker']);
    for (const [name, service] of built) {
      const [program, file] = service.command ?? [];
      expect(program, name).toBe('node');
      expect(file, name).toMatch(/^dist\//);
      expect(existsSync(join(ROOT, file!)), `${name}: ${file}`).toBe(true);
    }
    // The listener is the image's CMD; the worker serves no HTTP, so the image's /healthz check is off there.
    expect(compose.services['bot']?.command).toEqual(runtimeCommand('CMD'));
    expect(compose.services['worker']?.command).toEqual(['node', 'dist/jobs/worker.js']);
    expect(compose.services['worker']?.healthcheck?.disable).toBe(true);
    // Longer than the idle-entry delete at its timeouts (7 min, see the comment there), not Docker's 10 s.
    expect(seconds(compose.services['worker']?.stop_grace_period ?? '10s')).toBeGreaterThanOrEqual(420);
  });

  it.skipIf(!hasCompose)(`docker compose config accepts it${hasCompose ? '' : ' (skipped: `docker compose` is not installed here)'}`, async () => {
    const r = await runToEnd('docker', ['compose', '-f', 'docker-compose.yml', 'config', '--quiet'], {
      cwd: ROOT,
      env: { ...process.env, SLACK_BOT_TOKEN: 'xoxb-x', SLACK_APP_TOKEN: 'xapp-x', SLACK_SIGNING_SECRET: 'x'.repeat(16) },
      timeoutMs: 60_000,
    });
    expect(r.code, r.stderr).toBe(0);
  });
});

describe('Dockerfile', () => {
  it('builds in one stage and runs the build in another, with CMD and HEALTHCHECK on built files', () => {
    expect(stages.map((s) => s.name)).toEqual(['build', 'runtime']);
    const runtime = stages[1]!.instructions;
    const copies = runtime.filter((i) => i.keyword === 'COPY').map((i) => i.args);
    expect(copies).toEqual(['package.json package-lock.json ./', '--from=build /app/dist ./dist']);
    expect(runtime.find((i) => i.keyword === 'RUN')?.args).toMatch(/^npm ci --omit=dev\b/);
    for (const command of [runtimeCommand('CMD'), runtimeCommand('HEALTHCHECK')]) {
      expect(command[0]).toBe('node');
      expect(existsSync(join(ROOT, command[1]!)), command[1]).toBe(true);
    }
  });

  it('compiles from what the build stage COPYs out of the context .dockerignore leaves', async () => {
    const ignore = parseDockerignore(await readFile(join(ROOT, '.dockerignore'), 'utf8'));
    for (const p of ['.git', 'node_modules', 'dist', 'lab', 'src/lab', 'test', 'bench', '.vm', '.lab']) expect(ignore.ignored(p), p).toBe(true);
    const context = await mkdtemp(join(tmpdir(), 'cto-docker-context-'));
    try {
      for (const copy of stages[0]!.instructions.filter((i) => i.keyword === 'COPY')) {
        const words = copy.args.split(/\s+/);
        const target = words.pop()!;
        for (const source of words) await copyFromContext(ROOT, source, target.endsWith('/') ? join(context, target, source) : join(context, target), ignore);
      }
      expect(existsSync(join(context, 'src/lab')), 'src/lab is not in the image').toBe(false);
      await symlink(join(ROOT, 'node_modules'), join(context, 'node_modules'));
      const tsc = await runToEnd(NODE, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: context, timeoutMs: 180_000 });
      expect(tsc.code, tsc.stdout + tsc.stderr).toBe(0);
      for (const command of [runtimeCommand('CMD'), runtimeCommand('HEALTHCHECK')]) expect(existsSync(join(context, command[1]!)), command[1]).toBe(true);
    } finally {
      await rm(context, { recursive: true, force: true });
    }
  }, 200_000);

  it.skipIf(!hasDaemon)(`docker build produces the image${hasDaemon ? '' : ' (skipped: no Docker daemon answers `docker info` here)'}`, async () => {
    const r = await runToEnd('docker', ['build', '-t', 'conntrack-ops:packaging-test', '.'], { cwd: ROOT, timeoutMs: 600_000 });
    expect(r.code, r.stderr.slice(-4000)).toBe(0);
  }, 620_000);
});

describe('the built processes', () => {
  let redis: RedisHandle;
  let slack: SlackApiServer;
  let queues: Queues;
  let conn: Redis;

  beforeAll(async () => {
    redis = await startEmbeddedRedis();
    slack = await startSlackApi({ users: [{ id: 'U0ALICE01', name: 'alice' }] });
    conn = new Redis(redis.url, { maxRetriesPerRequest: null });
    queues = openQueues(conn, PREFIX);
  }, 60_000);

  afterAll(async () => {
    await queues?.close();
    conn?.disconnect();
    await slack?.close();
    await redis?.stop();
  });

  const baseEnv = (): NodeJS.ProcessEnv => ({ PATH: process.env['PATH'], HOME: process.env['HOME'], REDIS_URL: redis.url, QUEUE_PREFIX: PREFIX, INVENTORY: inventoryPath });

  it('node dist/jobs/worker.js runs a check job from the queue, and stops on SIGTERM', async () => {
    const worker = new Running(NODE, ['dist/jobs/worker.js'], { cwd: ROOT, env: baseEnv() });
    try {
      await worker.waitFor(/worker started/, 30_000);
      const jobId = await enqueueCheck(queues, { gateway: 'gw-closed', requestedBy: 'packaging-test', requestId: `pkg-${Date.now()}`, origin: { kind: 'cli' } }, { attempts: 1 });
      const job = await eventually('the check job fails', async () => (await queues.check.getJob(jobId)) ?? null, (j) => j?.failedReason !== undefined && j.failedReason !== '', 30_000);
      expect(job?.queueName).toBe(QUEUES.check);
      expect(job?.failedReason).toContain(`connection refused by 127.0.0.1:${closedPort}`);
    } finally {
      const exit = await worker.stop('SIGTERM', 20_000);
      expect(exit, worker.output).toEqual({ code: 0, signal: null });
    }
  }, 90_000);

  it('the listener in HTTP mode answers /healthz, the image health check and a signed slash command', async () => {
    const port = await freePort();
    const env = { ...baseEnv(), SLACK_MODE: 'http', SLACK_BOT_TOKEN: slack.token, SLACK_SIGNING_SECRET: SECRET, SLACK_API_URL: slack.apiUrl, PORT: String(port) };
    const [program, ...args] = runtimeCommand('CMD');
    const listener = new Running(program!, args, { cwd: ROOT, env });
    const [hcProgram, ...hcArgs] = runtimeCommand('HEALTHCHECK');
    try {
      await listener.waitFor(/conntrack-ops listening \(http mode\)/, 30_000);
      const res = await fetch(`http://127.0.0.1:${port}/healthz`);
      expect([res.status, await res.text()]).toEqual([200, 'ok\n']);
      const hc = await runToEnd(hcProgram!, hcArgs, { cwd: ROOT, env: { PATH: process.env['PATH'], PORT: String(port) }, timeoutMs: 20_000 });
      expect(hc.code, hc.stdout + hc.stderr).toBe(0);
      const body = buildSlashCommandBody({ text: 'help', userId: 'U0ALICE01', channelId: 'C0OPS0001', responseUrl: slack.responseUrl(undefined, { channel: 'C0OPS0001', user: 'U0ALICE01' }) });
      const cmd = await fetch(`http://127.0.0.1:${port}/slack/events`, { method: 'POST', headers: signedFormHeaders(SECRET, body), body });
      expect(cmd.status).toBe(200);
      expect(((await cmd.json()) as { response_type?: string }).response_type).toBe('ephemeral');
    } finally {
      const exit = await listener.stop('SIGTERM', 20_000);
      expect(exit, listener.output).toEqual({ code: 0, signal: null });
    }
    // Nothing listens any more: the same health check says unhealthy.
    const down = await runToEnd(hcProgram!, hcArgs, { cwd: ROOT, env: { PATH: process.env['PATH'], PORT: String(port) }, timeoutMs: 20_000 });
    expect(down.code, down.stdout).toBe(1);
  }, 90_000);

  it('the listener in Socket Mode (the compose default) serves /healthz for the image health check', async () => {
    const port = await freePort();
    const env = { ...baseEnv(), SLACK_MODE: 'socket', SLACK_BOT_TOKEN: slack.token, SLACK_APP_TOKEN: 'xapp-1-packaging', SLACK_API_URL: slack.apiUrl, PORT: String(port) };
    // The local Slack API has no socket to give: it answers 500 and the client keeps asking.
    slack.failNext('apps.connections.open', { status: 500, times: 1000 });
    const [program, ...args] = runtimeCommand('CMD');
    const listener = new Running(program!, args, { cwd: ROOT, env });
    const [hcProgram, ...hcArgs] = runtimeCommand('HEALTHCHECK');
    try {
      // It is in Socket Mode: it asks Slack for a socket URL.
      await slack.waitForCall('apps.connections.open', () => true, 30_000);
      const hc = await eventually(
        'the health check passes',
        () => runToEnd(hcProgram!, hcArgs, { cwd: ROOT, env: { PATH: process.env['PATH'], PORT: String(port) }, timeoutMs: 20_000 }),
        (r) => r.code === 0,
        30_000,
      );
      expect(hc.stdout).toContain(`http://127.0.0.1:${port}/healthz: 200 ok`);
    } finally {
      await listener.stop('SIGTERM', 20_000);
    }
  }, 90_000);
});

describe('the conntrack-ops command (bin/conntrack-ops.js)', () => {
  const env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({ PATH: process.env['PATH'], HOME: process.env['HOME'], LOG_LEVEL: 'silent', CONNTRACK_OPS_RUN_VERBOSE: '1', ...extra });

  it('runs the build while it is up to date, and the TypeScript once a source is newer', async () => {
    const fresh = await runToEnd(NODE, [BIN, '--help'], { cwd: ROOT, env: env(), timeoutMs: 60_000 });
    expect(fresh.code).toBe(0);
    expect(fresh.stderr).toContain('running dist/src/cli/main.js');
    expect(fresh.stdout).toMatch(/^\s+check \[options\] <gateway>/m);
    expect(fresh.stdout).toMatch(/^\s+start \[options\]/m);
    // Make the build older than every source: the command must not run it.
    const main = join(ROOT, 'dist/src/cli/main.js');
    const past = new Date('2001-01-01T00:00:00Z');
    await utimes(main, past, past);
    try {
      const stale = await runToEnd(NODE, [BIN, '--help'], { cwd: ROOT, env: env(), timeoutMs: 120_000 });
      expect(stale.code, stale.stderr).toBe(0);
      expect(stale.stderr).toContain('running src/cli/main.ts through tsx');
      expect(stale.stdout).toBe(fresh.stdout);
    } finally {
      const now = new Date();
      await utimes(main, now, now);
    }
  }, 200_000);

  it('type-checks (plain JavaScript, so it runs before any build: strict checkJs)', async () => {
    const flags = ['--ignoreConfig', '--noEmit', '--allowJs', '--checkJs', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--types', 'node', '--skipLibCheck'];
    const r = await runToEnd(NODE, [join(ROOT, 'node_modules/typescript/bin/tsc'), ...flags, BIN], { cwd: ROOT, timeoutMs: 60_000 });
    expect(r.code, r.stdout + r.stderr).toBe(0);
  }, 70_000);

  it('npx conntrack-ops (the documented way in a clone) runs it', async () => {
    const r = await runToEnd('npx', ['--offline', 'conntrack-ops', 'start', '--help'], { cwd: ROOT, env: env(), timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('run the Slack listener');
  }, 130_000);

  it('start without Slack tokens says which are missing (exit 2)', async () => {
    const r = await runToEnd(NODE, [BIN, 'start'], { cwd: ROOT, env: env({ INVENTORY: inventoryPath }), timeoutMs: 60_000 });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Slack is not configured');
    expect(r.stderr).toContain('SLACK_BOT_TOKEN');
  }, 70_000);

  it('check of an unreachable gateway: one clear line, exit 3 (own Redis, in-process worker)', async () => {
    const r = await runToEnd(NODE, [BIN, 'check', 'gw-closed', '--inventory', inventoryPath], { cwd: ROOT, env: env(), timeoutMs: 90_000 });
    expect(r.code, r.stdout + r.stderr).toBe(3);
    expect(r.stderr).toContain(`connection refused by 127.0.0.1:${closedPort}`);
  }, 100_000);
});
