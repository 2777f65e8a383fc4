/**
 * delete-idle-entries at scale on a namespace lab gateway, over real SSH: a 200k-entry
 * table with 100k entries idle for 25 h. Measures both delete paths and checks they
 * delete exactly the selected tuples:
 *   netlink (python3, root session): all 100k;
 *   conntrack -R - (the sudo-allow-listable path): a 40-entry sample, to time one table
 *   walk per -D line (and prove the stdin batch works through sshd).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deleteIdleEntries } from '../../src/apply/idle-delete.js';
import { SessionPool } from '../../src/gateway/session-pool.js';
import { conntrackCount, flushTable, gatewayExec, labDown, labUp, type Lab } from '../../lab/index.js';

let lab: Lab;
let pool: SessionPool;

async function load(lines: string[]): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'cto-apply-'));
  try {
    await writeFile(join(dir, 'entries'), lines.join('\n') + '\n');
    await gatewayExec(lab, ['conntrack', '-R', join(dir, 'entries')], { timeoutMs: 120_000 });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** n entries per client source, ports from base; timeout = remaining seconds. */
function entries(n: number, base: number, timeout: number, dport: number): string[] {
  const out: string[] = [];
  const srcs = lab.clientIps;
  for (let i = 0; i < n; i += 1) {
    const src = srcs[i % srcs.length]!;
    const sport = base + Math.floor(i / srcs.length);
    out.push(`-I -p tcp -s ${src} -d ${lab.serverAddress} --sport ${sport} --dport ${dport} --state ESTABLISHED -u ASSURED -t ${timeout}`);
  }
  return out;
}

beforeAll(async () => {
  lab = await labUp({ clients: 1, sourcesPerClient: 4 });
  pool = new SessionPool({ healthIntervalMs: 5_000 });
  await pool.watch(lab.name, lab.inventoryEntry);
}, 180_000);

afterAll(async () => {
  pool?.close();
  if (lab) await labDown(lab);
});

describe('delete-idle-entries throughput', () => {
  it('netlink path: 100k idle entries of a 200k table deleted by exact tuple, the other 100k kept', async () => {
    await flushTable(lab);
    await load([...entries(100_000, 1024, 432000 - 90000, 9001), ...entries(100_000, 1024, 431000, 9002)]);
    expect(await conntrackCount(lab)).toBeGreaterThanOrEqual(200_000);
    const lease = await pool.provider(lab.name, lab.inventoryEntry);
    const r = await deleteIdleEntries(lease.session, { oldTimeout: 432000, newTimeout: 3600, method: 'netlink' });
    console.log(`[measure] netlink: ${JSON.stringify(r)}`);
    expect(r.candidates).toBe(100_000);
    expect(r.deleted).toBe(100_000);
    expect(r.failed).toBe(0);
    expect(r.countAfter).toBeLessThanOrEqual(r.countBefore - 100_000 + 100);
    const kept = await gatewayExec(lab, ['sh', '-c', 'conntrack -L -p tcp --dport 9002 2>/dev/null | wc -l']);
    expect(Number(kept.stdout.trim())).toBe(100_000);
    const gone = await gatewayExec(lab, ['sh', '-c', 'conntrack -L -p tcp --dport 9001 2>/dev/null | wc -l']);
    expect(Number(gone.stdout.trim())).toBe(0);
  });

  it('conntrack -R path (sudo-allow-listable): batched -D lines over SSH work, one table walk each', async () => {
    await flushTable(lab);
    await load([...entries(40, 1024, 432000 - 90000, 9001), ...entries(150_000, 1024, 431000, 9002)]);
    const lease = await pool.provider(lab.name, lab.inventoryEntry);
    const r = await deleteIdleEntries(lease.session, { oldTimeout: 432000, newTimeout: 3600, method: 'conntrack-R', maxSlowDeletes: 1000 });
    console.log(`[measure] conntrack -R: ${JSON.stringify(r)}; ~${Math.round(r.durationMs / 40)} ms per entry at ${r.countBefore} entries`);
    expect(r.candidates).toBe(40);
    expect(r.deleted).toBe(40);
    const gone = await gatewayExec(lab, ['sh', '-c', 'conntrack -L -p tcp --dport 9001 2>/dev/null | wc -l']);
    expect(Number(gone.stdout.trim())).toBe(0);
    // Above the bound, the slow path refuses instead of running for an hour.
    await load(entries(1500, 40000, 432000 - 90000, 9003));
    await expect(deleteIdleEntries(lease.session, { oldTimeout: 432000, newTimeout: 3600, method: 'conntrack-R', maxSlowDeletes: 1000 })).rejects.toThrow(/slow path/);
  }, 600_000);
});
