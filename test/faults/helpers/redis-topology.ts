/**
 * Real Redis topologies on loopback for the fault suite, started from `redis-server` and
 * `redis-cli` (free ports, one temp dir each, every process killed by stop(), and by the
 * process 'exit' hook if a test dies first):
 *  - single: one redis-server with AOF (appendfsync always), restartable on its files;
 *  - cluster: 3 primaries + 3 replicas (`--cluster-enabled yes`, `redis-cli --cluster create
 *    --cluster-replicas 1`), cluster-node-timeout low so a replica is promoted in seconds;
 *  - sentinel: a primary, its replica and 3 Sentinels (quorum 2, down-after-milliseconds low).
 * Each gives the bot's environment variables for it (REDIS_URL / REDIS_CLUSTER_NODES /
 * REDIS_SENTINELS + REDIS_SENTINEL_NAME) and can kill the primary that holds a given key.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../../src/infra/redis.js';
import { waitUntil } from '../../support/wait-until.js';

const HOST = '127.0.0.1';

export function redisCli(port: number, args: string[], timeoutMs = 5_000): Promise<string> {
  return new Promise((resolve) => {
    execFile('redis-cli', ['-h', HOST, '-p', String(port), ...args], { timeout: timeoutMs }, (err, stdout, stderr) => resolve(err ? `ERR ${stderr || err.message}` : stdout));
  });
}

class Servers {
  readonly children = new Map<number, ChildProcess>();
  private readonly onExit = (): void => {
    for (const c of this.children.values()) if (c.exitCode === null) c.kill('SIGKILL');
  };
  constructor() {
    process.once('exit', this.onExit);
  }

  async start(port: number, args: string[], dir: string): Promise<void> {
    await mkdir(dir, { recursive: true });
    const child = spawn('redis-server', args, { cwd: dir, stdio: 'ignore' });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    this.children.set(port, child);
    await waitUntil(`redis-server on ${port}`, async () => (await redisCli(port, ['PING'])).trim() === 'PONG', 15_000);
  }

  async kill(port: number): Promise<void> {
    const child = this.children.get(port);
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }

  async stopAll(): Promise<void> {
    process.removeListener('exit', this.onExit);
    await Promise.all([...this.children.keys()].map((p) => this.kill(p)));
  }
}

export interface Topology {
  kind: 'single' | 'cluster' | 'sentinel';
  /** The bot's environment for this topology. */
  env: Record<string, string>;
  /** Kills (SIGKILL) the primary serving `key`; returns its port. */
  killPrimaryOf(key: string): Promise<number>;
  /** Waits until another node serves `key` as primary (or, single, the same one restarted); ms it took since `since`. */
  waitForNewPrimary(key: string, killedPort: number, since: number): Promise<number>;
  stop(): Promise<void>;
}

/**
 * Runs a topology's set-up with its own folder and servers; when the set-up fails (a replica
 * that never syncs, a port taken), the servers it started are killed and the folder removed
 * before the error goes on (a failed CI set-up once left a redis-server running).
 */
async function setUp(prefix: string, build: (root: string, servers: Servers, stop: () => Promise<void>) => Promise<Topology>): Promise<Topology> {
  const root = await mkdtemp(join(tmpdir(), prefix));
  const servers = new Servers();
  /** The topology's stop: every server killed, the folder removed. */
  const stop = async (): Promise<void> => {
    await servers.stopAll();
    await rm(root, { recursive: true, force: true });
  };
  try {
    return await build(root, servers, stop);
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
}

function base(port: number, dir: string, extra: string[] = []): string[] {
  return ['--port', String(port), '--bind', HOST, '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--loglevel', 'warning', ...extra];
}

/** One redis-server with AOF; killPrimaryOf kills it, waitForNewPrimary starts it again on the same files. */
export function startSingle(): Promise<Topology> {
  return setUp('cto-redis-single-', async (root, servers, stop) => {
    const port = await freePort();
    const args = base(port, root);
    await servers.start(port, args, root);
    return {
      kind: 'single',
      env: { REDIS_URL: `redis://${HOST}:${port}` },
      async killPrimaryOf() {
        await servers.kill(port);
        return port;
      },
      async waitForNewPrimary(_key, _killed, since) {
        await servers.start(port, args, root);
        return performance.now() - since;
      },
      stop,
    };
  });
}

/** The port of the primary that serves `key`'s slot, read from a live node's CLUSTER SHARDS/NODES. */
async function clusterPrimaryOf(ports: number[], key: string, exclude: number | null): Promise<number | null> {
  for (const p of ports) {
    if (p === exclude) continue;
    const slot = Number((await redisCli(p, ['CLUSTER', 'KEYSLOT', key])).trim());
    if (!Number.isInteger(slot)) continue;
    const nodes = await redisCli(p, ['CLUSTER', 'NODES']);
    if (nodes.startsWith('ERR')) continue;
    for (const line of nodes.trim().split('\n')) {
      const [, addr, flags, , , , , state, ...ranges] = line.split(' ');
      if (!flags?.includes('master') || flags.includes('fail') || state !== 'connected') continue;
      const owns = ranges.some((r) => {
        const [a, b] = r.split('-').map(Number);
        return a !== undefined && slot >= a && slot <= (b ?? a);
      });
      const port = Number(addr?.split('@')[0]?.split(':')[1]);
      if (owns && port !== exclude) return port;
    }
  }
  return null;
}

export function startCluster(opts: { nodeTimeoutMs?: number } = {}): Promise<Topology> {
  return setUp('cto-redis-cluster-', async (root, servers, stop) => {
    const ports: number[] = [];
    for (let i = 0; i < 6; i++) ports.push(await freePort());
    const timeout = String(opts.nodeTimeoutMs ?? 1_000);
    await Promise.all(
      ports.map((p) =>
        servers.start(p, base(p, join(root, String(p)), ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', timeout, '--cluster-replica-validity-factor', '0']), join(root, String(p))),
      ),
    );
    const created = await new Promise<string>((resolve, reject) => {
      execFile('redis-cli', ['--cluster', 'create', ...ports.map((p) => `${HOST}:${p}`), '--cluster-replicas', '1', '--cluster-yes'], { timeout: 60_000 }, (err, stdout, stderr) =>
        err ? reject(new Error(`cluster create failed: ${stderr || err.message}\n${stdout}`)) : resolve(stdout),
      );
    });
    if (!created.includes('All 16384 slots covered')) throw new Error(`cluster create: ${created}`);
    await waitUntil('cluster_state:ok everywhere', async () => {
      for (const p of ports) if (!(await redisCli(p, ['CLUSTER', 'INFO'])).includes('cluster_state:ok')) return false;
      return true;
    }, 30_000);
    // Every replica attached and in sync, so a killed primary has one to promote.
    await waitUntil('3 replicas in sync', async () => {
      let synced = 0;
      for (const p of ports) if (/master_link_status:up/.test(await redisCli(p, ['INFO', 'replication']))) synced++;
      return synced === 3;
    }, 30_000);
    return {
      kind: 'cluster',
      env: { REDIS_CLUSTER_NODES: ports.slice(0, 3).map((p) => `${HOST}:${p}`).join(',') },
      async killPrimaryOf(key) {
        const port = await clusterPrimaryOf(ports, key, null);
        if (port === null) throw new Error(`no primary for ${key}`);
        await servers.kill(port);
        return port;
      },
      async waitForNewPrimary(key, killed, since) {
        const alive = ports.filter((p) => p !== killed);
        await waitUntil('a replica promoted and the cluster ok', async () => {
          const p = await clusterPrimaryOf(alive, key, killed);
          if (p === null) return false;
          return (await redisCli(p, ['CLUSTER', 'INFO'])).includes('cluster_state:ok');
        }, 30_000, { everyMs: 50 });
        return performance.now() - since;
      },
      stop,
    };
  });
}

export const SENTINEL_NAME = 'cto-primary';

export function startSentinel(opts: { downAfterMs?: number } = {}): Promise<Topology> {
  return setUp('cto-redis-sentinel-', async (root, servers, stop) => {
    const primary = await freePort();
    const replica = await freePort();
    await servers.start(primary, base(primary, join(root, 'primary')), join(root, 'primary'));
    await servers.start(replica, base(replica, join(root, 'replica'), ['--replicaof', HOST, String(primary)]), join(root, 'replica'));
    // Redis waits repl-diskless-sync-delay (5 s) before a full sync; a loaded CI machine once took
    // longer than 20 s here (the replica's and the primary's view are in the error).
    let seen = '';
    await waitUntil(
      'the replica in sync',
      async () => /master_link_status:up/.test((seen = await redisCli(replica, ['INFO', 'replication']))),
      60_000,
      { everyMs: 250, context: () => `replica ${replica}: ${seen.replace(/\r?\n/g, ' ')}` },
    );
    const sentinels: number[] = [];
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const dir = join(root, `sentinel-${port}`);
      await mkdir(dir, { recursive: true });
      const conf = join(dir, 'sentinel.conf');
      await writeFile(
        conf,
        [
          `port ${port}`,
          `bind ${HOST}`,
          `dir "${dir}"`,
          `sentinel monitor ${SENTINEL_NAME} ${HOST} ${primary} 2`,
          `sentinel down-after-milliseconds ${SENTINEL_NAME} ${opts.downAfterMs ?? 1_000}`,
          `sentinel failover-timeout ${SENTINEL_NAME} 10000`,
          `sentinel parallel-syncs ${SENTINEL_NAME} 1`,
          '',
        ].join('\n'),
      );
      await servers.start(port, [conf, '--sentinel'], dir);
      sentinels.push(port);
    }
    const masterAddr = async (): Promise<number | null> => {
      for (const s of sentinels) {
        const out = (await redisCli(s, ['SENTINEL', 'get-master-addr-by-name', SENTINEL_NAME])).trim().split('\n');
        const port = Number(out[1]);
        if (Number.isInteger(port) && port > 0) return port;
      }
      return null;
    };
    await waitUntil('the Sentinels see the replica and each other', async () => {
      const info = await redisCli(sentinels[0]!, ['SENTINEL', 'master', SENTINEL_NAME]);
      const lines = info.trim().split('\n');
      const field = (name: string): number => Number(lines[lines.indexOf(name) + 1]);
      return field('num-slaves') >= 1 && field('num-other-sentinels') >= 2;
    }, 30_000);
    return {
      kind: 'sentinel',
      env: { REDIS_SENTINELS: sentinels.map((p) => `${HOST}:${p}`).join(','), REDIS_SENTINEL_NAME: SENTINEL_NAME },
      async killPrimaryOf() {
        const port = await masterAddr();
        if (port === null) throw new Error('the Sentinels name no primary');
        await servers.kill(port);
        return port;
      },
      async waitForNewPrimary(_key, killed, since) {
        await waitUntil('the Sentinels promote the replica', async () => {
          const port = await masterAddr();
          return port !== null && port !== killed && (await redisCli(port, ['ROLE'])).startsWith('master');
        }, 30_000, { everyMs: 50 });
        return performance.now() - since;
      },
      stop,
    };
  });
}
