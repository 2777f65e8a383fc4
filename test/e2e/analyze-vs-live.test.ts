/**
 * A check without SSH against the real thing: on a filled lab gateway, the collect script
 * (`conntrack-ops collect-script`) runs over real OpenSSH exactly as a user would run it,
 * `ssh root@gw sh -s < collect.sh > gw.saved`, while the live check of the same gateway runs
 * over the bot's SSH session at the same moment; `analyze` of the saved file must give the
 * same findings (ids, severities, heavy hitter) and the same plan (steps, current and proposed
 * values).
 *
 * What may legitimately differ: the time of the report (the live check stamps it with the
 * bot's clock when the facts arrive, the saved file with the gateway's `date -u` when the
 * script starts), timings, and counts by the entries that expired or appeared between the two
 * reads of a live table (compared within a tolerance here).
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fillScenario, labDown, labUp, type FillResult, type Lab } from '../../lab/index.js';
import { collectOverSsh } from '../support/collect-over-ssh.js';
import { analyzeSaved } from '../../src/check/analyze-saved.js';
import { runCheck } from '../../src/check/run-check.js';
import type { CheckReport } from '../../src/core/model.js';
import { COLLECT_SCRIPT } from '../../src/diagnostics/collect-script.js';
import { SessionPool } from '../../src/gateway/session-pool.js';

let lab: Lab;
let pool: SessionPool;
let dir: string;
let fill: FillResult;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cto-analyze-live-'));
  lab = await labUp({ clients: 2, sourcesPerClient: 4 });
  pool = new SessionPool({ healthIntervalMs: 5_000 });
  await pool.watch(lab.name, lab.inventoryEntry);
  // a heavy hitter and a TIME_WAIT pile: findings with an address, and plan steps with values
  fill = await fillScenario(lab, ['heavy-hitter', 'timewait'], { heavyHitterFlows: 6000, timewait: 6000 });
}, 180_000);

afterAll(async () => {
  pool?.close();
  if (lab) await labDown(lab);
  if (dir) await rm(dir, { recursive: true, force: true });
});


const within = (a: number, b: number, share: number, slack = 20): boolean => Math.abs(a - b) <= Math.max(slack, Math.max(a, b) * share);

describe('analyze of a saved file vs a live check of the same gateway', () => {
  it('same findings and plan (ids, severities, proposed values); only times and live-table drift differ', async () => {
    const scriptPath = join(dir, 'collect.sh');
    const savedPath = join(dir, `${lab.name}.saved`);
    await writeFile(scriptPath, COLLECT_SCRIPT);
    // a strict threshold so the plan has steps with proposed values to compare
    const config = { ...lab.inventoryEntry, thresholds: { warnPercent: 1, critPercent: 95, heavyHitterShare: 0.25 } };
    const t0 = performance.now();
    const [live, collected] = await Promise.all([
      runCheck({ gatewayName: lab.name, config, sessions: pool.provider }),
      collectOverSsh(lab.sshTarget, scriptPath, savedPath),
    ]);
    const bothMs = Math.round(performance.now() - t0);
    expect(collected.code, collected.stderr).toBe(0);
    const size = (await stat(savedPath)).size;
    const t1 = performance.now();
    const offline = await analyzeSaved(createReadStream(savedPath), { gatewayName: lab.name, config });
    const analyzeMs = Math.round(performance.now() - t1);
    const saved: CheckReport = offline.report;
    console.log(
      `analyze vs live: live check and ssh collect ${bothMs} ms together; saved file ${size.toLocaleString('en-US')} bytes, ${offline.lines.toLocaleString('en-US')} lines, analysed in ${analyzeMs} ms; ` +
        `entries live ${live.table.entries} / saved ${saved.table.entries}; findings ${live.findings.map((f) => f.id).join(',')}; plan ${live.plan.steps.map((s) => `${s.kind}:${s.key}=${s.proposed.split('\n')[0] ?? ''}`).join(', ')}`,
    );

    // the table: same size within the drift of a live table, nothing unparsed
    expect(saved.table.unparsed, saved.table.unparsedSample.join(' | ')).toBe(0);
    expect(live.table.unparsed).toBe(0);
    expect(within(saved.table.entries, live.table.entries, 0.02)).toBe(true);
    expect(within(saved.conntrack.count, live.conntrack.count, 0.02)).toBe(true);
    expect(saved.conntrack.max).toBe(live.conntrack.max);
    expect(saved.facts.firewallBackend).toBe(live.facts.firewallBackend);
    expect(saved.facts.natRules).toEqual(live.facts.natRules);
    expect(saved.facts.externalAddresses).toEqual(live.facts.externalAddresses);
    expect(saved.timeouts).toEqual(live.timeouts);

    // findings: same ids in the same order, same severities, the same heavy hitter
    expect(saved.findings.map((f) => [f.id, f.severity])).toEqual(live.findings.map((f) => [f.id, f.severity]));
    const hh = (r: CheckReport) => r.findings.find((f) => f.id === 'heavy-hitter')?.evidence['source'];
    expect(hh(live)).toBe(fill.heavyHitter?.ip);
    expect(hh(saved)).toBe(hh(live));

    // the plan: same steps, same current and proposed values
    expect(live.plan.steps.some((s) => s.key === 'nf_conntrack_tcp_timeout_time_wait')).toBe(true);
    expect(saved.plan.steps.map((s) => [s.kind, s.key, s.current, s.proposed, s.writable])).toEqual(
      live.plan.steps.map((s) => [s.kind, s.key, s.current, s.proposed, s.writable]),
    );

    // what may differ: the report time (bot clock vs the gateway's date at the script's start)
    expect(Math.abs(Date.parse(saved.checkedAt) - Date.parse(live.checkedAt))).toBeLessThan(15_000);
  }, 180_000);
});
