/**
 * Fault (defect 13, first half): the embedded Redis the bot starts when no Redis is
 * configured holds plans and starts applies, so nobody else on the machine may reach it,
 * and it must not forget the queue when redis-server dies.
 *
 * The bot's wiring runs in its own process (helpers/embedded-redis-child.ts, LOG_LEVEL
 * trace) with its embedded redis-server; from outside this test checks what another local
 * user or process could do: no TCP listener, the socket's directory 0700, redis-cli on the
 * socket without the password gets NOAUTH, as user `nobody` it cannot even connect; the
 * password is on no command line and in no log line. Then redis-server is killed (SIGKILL)
 * and comes back on its append-only file with every queued job.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeUnreachableInventory } from './inventory-file.js';
import { waitUntil } from '../support/wait-until.js';

const ROOT = resolve(import.meta.dirname, '../..');
const JOBS = 40;

let dir: string;
let child: ChildProcess;
let output = '';
let url: string;
let socket: string;
let password: string;

function run(file: string, args: string[], opts: { uid?: number } = {}): Promise<{ code: number; out: string }> {
  const [f, a] = opts.uid === undefined ? [file, args] : ['setpriv', [`--reuid=${opts.uid}`, `--regid=${opts.uid}`, '--clear-groups', file, ...args]];
  return new Promise((res) => {
    execFile(f, a, { timeout: 10_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
      res({ code, out: `${stdout}${stderr}` });
    });
  });
}

/** The embedded redis-server's pid: the process listening on its socket. */
async function redisServerPid(): Promise<number | null> {
  const r = await run('ss', ['-Hxlp']);
  const line = r.out.split('\n').find((l) => l.includes(` ${socket} `));
  const pid = line ? Number(/pid=(\d+)/.exec(line)?.[1]) : 0;
  return pid > 0 ? pid : null;
}

async function queuedJobs(): Promise<number> {
  const before = output.length;
  child.stdin?.write('count\n');
  const line = await waitUntil('the child counts its jobs', () => /COUNT (\d+)/.exec(output.slice(before)), 30_000);
  return Number(line[1]);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cto-embedded-'));
  const inventory = await writeUnreachableInventory(dir, 'gw-1');
  child = spawn(process.execPath, ['--import', 'tsx', 'test/faults/helpers/embedded-redis-child.ts'], {
    cwd: ROOT,
    env: { PATH: process.env['PATH'], HOME: process.env['HOME'], LOG_LEVEL: 'trace', INVENTORY: inventory, QUEUE_PREFIX: '{cto-embedded}', CTO_URL_FILE: join(dir, 'url'), CTO_JOBS: String(JOBS) },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  await waitUntil('the child is ready', () => output.includes('READY') || child.exitCode !== null, 60_000);
  if (child.exitCode !== null) throw new Error(`child exited early:\n${output}`);
  url = await readFile(join(dir, 'url'), 'utf8');
  const parsed = /^(\/[^?]+)\?password=([0-9a-f]{64})$/.exec(url);
  if (!parsed) throw new Error('the embedded Redis URL is not a socket path with a 256-bit password');
  socket = parsed[1]!;
  password = parsed[2]!;
}, 90_000);

afterAll(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise((r) => child.once('exit', r));
    child.stdin?.write('stop\n');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the embedded Redis is private (defect 13)', () => {
  it('listens on no TCP port: only a unix socket in a 0700 directory, socket 0700', async () => {
    const pid = await redisServerPid();
    expect(pid).not.toBeNull();
    const tcp = await run('ss', ['-Hltnp']);
    expect(tcp.out).not.toContain(`pid=${pid},`);
    expect((await stat(dirname(socket))).mode & 0o777).toBe(0o700);
    expect((await stat(socket)).mode & 0o777).toBe(0o700);
    expect((await stat(join(dirname(socket), 'redis.conf'))).mode & 0o777).toBe(0o600);
  });

  it('a local process without the password gets NOAUTH; another user cannot connect at all', async () => {
    const noPassword = await run('redis-cli', ['-s', socket, 'SET', 'intruder', '1']);
    expect(noPassword.out).toMatch(/NOAUTH/);
    const read = await run('redis-cli', ['-s', socket, 'KEYS', '*']);
    expect(read.out).toMatch(/NOAUTH/);
    const otherUser = await run('redis-cli', ['-s', socket, 'PING'], { uid: 65534 });
    expect(otherUser.out).toMatch(/Permission denied|No such file/);
    expect(otherUser.out).not.toContain('PONG');
    // The password works (the bot's own connection): this is the same socket, not a dead one.
    const owner = await run('redis-cli', ['-s', socket, '--no-auth-warning', '-a', password, 'PING']);
    expect(owner.out.trim()).toBe('PONG');
  });

  it('the password is on no command line and in no log line', async () => {
    const ps = await run('ps', ['-eo', 'args']);
    expect(ps.out).not.toContain(password);
    expect(output).not.toContain(password);
  });

  it(`redis-server killed (SIGKILL): started again on its append-only file, ${JOBS} of ${JOBS} queued jobs kept`, async () => {
    expect(await queuedJobs()).toBe(JOBS);
    // appendfsync always: every acknowledged write is on disk; no grace period before the kill.
    const pid = await redisServerPid();
    expect(pid).not.toBeNull();
    process.kill(pid!, 'SIGKILL');
    const t0 = performance.now();
    const next = await waitUntil('a new redis-server', async () => {
      const p = await redisServerPid();
      return p !== null && p !== pid ? p : null;
    }, 20_000);
    const kept = await queuedJobs();
    const ms = Math.round(performance.now() - t0);
    console.log(`[faults] embedded Redis killed with ${JOBS} queued jobs: restarted as pid ${next}, ${JOBS - kept} jobs lost, queue readable again after ${ms} ms`);
    expect(kept).toBe(JOBS);
    expect(output).toMatch(/embedded redis-server died; starting it again/);
    expect(output).not.toContain(password);
  }, 60_000);
});
