/**
 * The bot's own redis-server when no Redis is configured (local demo, `conntrack-ops check`
 * and `watch` in a terminal, tests). It holds plans and starts applies, so it is private:
 *  - no TCP at all (`port 0`): a unix socket in a fresh 0700 directory owned by this user,
 *    socket mode 0700, so another local user cannot even reach it;
 *  - a random 256-bit password (requirepass) on top, in a 0600 config file (never on the
 *    command line, where `ps` would show it, and never logged);
 *  - AOF on (appendonly yes, appendfsync always: the bot writes little) in that directory:
 *    if redis-server dies while the bot runs it is started again on the same directory and
 *    socket and reloads its queue and plans, every acknowledged write. The directory lives
 *    as long as the bot process (removed by stop()): a restart of the whole bot is a new
 *    embedded Redis; use REDIS_URL / Sentinel / Cluster for anything that must outlive it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { logger } from './logger.js';

/** How often a crashed embedded redis-server is started again before the bot gives up on it. */
const MAX_RESTARTS = 5;

export interface EmbeddedRedisFiles {
  dir: string;
  socket: string;
  config: string;
}

/** redis.conf of the embedded server; values are our own paths and hex, quoted for the parser. */
function embeddedConfig(files: EmbeddedRedisFiles, password: string): string {
  return [
    'port 0',
    `unixsocket "${files.socket}"`,
    'unixsocketperm 700',
    `requirepass "${password}"`,
    `dir "${files.dir}"`,
    'appendonly yes',
    'appendfsync always',
    'save ""',
    'daemonize no',
    'loglevel warning',
    '',
  ].join('\n');
}

/** The URL another process (a worker started by the same user) uses as REDIS_URL. A secret: never log it. */
export function embeddedUrl(socket: string, password: string): string {
  return `${socket}?password=${password}`;
}

async function waitForPing(url: string, child: () => ChildProcess, deadlineMs: number): Promise<void> {
  const until = Date.now() + deadlineMs;
  let lastError = '';
  while (Date.now() < until) {
    const c = child();
    if (c.exitCode !== null) throw new Error(`redis-server exited with code ${c.exitCode}`);
    const probe = new Redis(url, { maxRetriesPerRequest: 0, lazyConnect: true, retryStrategy: () => null });
    probe.on('error', () => undefined); // reported through connect()'s rejection
    try {
      await probe.connect();
      if ((await probe.ping()) === 'PONG') return;
    } catch (err) {
      // The message never carries the password (ioredis reports the socket path or NOAUTH).
      lastError = err instanceof Error ? err.message : 'unknown error';
    } finally {
      probe.disconnect();
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`redis-server did not answer within ${deadlineMs} ms: ${lastError}`);
}

export interface EmbeddedRedis {
  url: string;
  files: EmbeddedRedisFiles;
  /** Times redis-server was started again after it died. */
  restarts(): number;
  /** The running redis-server's pid (changes after a restart). */
  pid(): number | undefined;
  stop(): Promise<void>;
}

export async function startEmbeddedRedisServer(): Promise<EmbeddedRedis> {
  const dir = await mkdtemp(join(tmpdir(), 'conntrack-ops-redis-'));
  await chmod(dir, 0o700);
  const files: EmbeddedRedisFiles = { dir, socket: join(dir, 'redis.sock'), config: join(dir, 'redis.conf') };
  const password = randomBytes(32).toString('hex');
  await writeFile(files.config, embeddedConfig(files, password), { mode: 0o600 });
  const url = embeddedUrl(files.socket, password);

  let stopping = false;
  let restarts = 0;
  const launch = async (): Promise<ChildProcess> => {
    const c = spawn('redis-server', [files.config], { stdio: ['ignore', 'ignore', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      c.once('spawn', resolve);
      c.once('error', (err) =>
        reject(new Error(`cannot start redis-server (${err.message}); install it (apt-get install redis-server) or set REDIS_URL`)),
      );
    });
    c.once('exit', (code, signal) => {
      if (stopping || c !== child) return;
      if (restarts >= MAX_RESTARTS) {
        logger.error({ code, signal, restarts }, 'embedded redis-server died again; not restarting it');
        return;
      }
      restarts += 1;
      logger.warn({ code, signal, restarts }, 'embedded redis-server died; starting it again on its append-only file');
      void launch()
        .then((next) => {
          child = next;
        })
        .catch((err: Error) => logger.error({ err: err.message }, 'embedded redis-server could not be started again'));
    });
    return c;
  };
  let child = await launch();
  const stopChild = (): void => {
    stopping = true;
    if (child.exitCode === null) child.kill('SIGTERM');
  };
  process.once('exit', stopChild);
  await waitForPing(url, () => child, 10_000);
  return {
    url,
    files,
    restarts: () => restarts,
    pid: () => child.pid,
    async stop() {
      stopping = true;
      process.removeListener('exit', stopChild);
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
