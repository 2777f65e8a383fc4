/**
 * `conntrack-ops collect-script` and `conntrack-ops analyze <file>` from a terminal: the
 * script printed is the one a check runs; a saved file gives the report, findings and plan
 * the same inputs give a live check (buildReport), marked offline; broken files are refused
 * with a clear error; a saved file of a million lines is read in bounded memory.
 * (The same gateway checked live and from its saved file: test/e2e/analyze-vs-live.test.ts.)
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aggregateLines } from '../../src/analysis/table/aggregate-lines.js';
import { buildReport, withoutForeignTableFull } from '../../src/check/run-check.js';
import { thresholdsSchema } from '../../src/config/inventory.js';
import { COLLECT_SCRIPT } from '../../src/diagnostics/collect-script.js';
import { FACTS_SCRIPT, parseFacts, TABLE_DUMP_COMMAND } from '../../src/diagnostics/facts-script.js';
import { IDLE_THRESHOLDS } from '../../src/plan/compute.js';
import { analyzeSaved } from '../../src/check/analyze-saved.js';
import { recordedFacts, savedText, writeGeneratedSaved } from './helpers/saved-file.js';
import { readFileSync } from 'node:fs';

const run = promisify(execFile);
const CLI = ['--import', 'tsx', 'src/cli/main.ts'];
let dir: string;

async function cli(args: string[], timeout = 120_000): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [...CLI, ...args], { timeout, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, LOG_LEVEL: 'silent' } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

const recordedDump = (): string => readFileSync(new URL('../fixtures/conntrack-L.txt', import.meta.url), 'utf8');

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cto-analyze-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('collect-script', () => {
  it('prints the facts script and the table dump a check runs, verbatim, as one POSIX sh script', async () => {
    const { code, stdout } = await cli(['collect-script']);
    expect(code).toBe(0);
    expect(stdout).toBe(COLLECT_SCRIPT);
    expect(stdout).toContain(FACTS_SCRIPT);
    expect(stdout).toContain(TABLE_DUMP_COMMAND);
    // sh -s reads the script from stdin: everything runs in one function with stdin from /dev/null
    expect(stdout.trimEnd().split('\n').at(-1)).toBe('conntrack_ops_collect </dev/null');
    await run('sh', ['-n', '-c', stdout]);
  });
});

describe('analyze <saved file>', () => {
  it('gives the findings and plan a check of the same outputs gives, marked offline and not approvable', async () => {
    const facts = recordedFacts();
    const file = join(dir, 'gw-3.saved');
    await writeFile(file, savedText(facts, recordedDump()));
    // the check's own pipeline on the same text
    const table = await aggregateLines(Readable.from([recordedDump()]), { establishedTimeout: 432_000, idleThresholds: [...IDLE_THRESHOLDS] });
    const live = buildReport('gw-3', { thresholds: thresholdsSchema.parse({}), port: 22, managementSource: undefined }, withoutForeignTableFull(parseFacts(facts, '2026-11-24T15:00:00.000Z')), table, {});

    const json = await cli(['analyze', file, '--json']);
    expect(json.code, json.stderr).toBe(0);
    const out = JSON.parse(json.stdout) as { offline: { approvable: boolean; collectedAt: string }; gateway: string; findings: { id: string; severity: string; evidence: unknown }[]; plan: { steps: { key: string; proposed: string }[] }; table: { entries: number } };
    expect(out.offline.approvable).toBe(false);
    expect(out.offline.collectedAt).toBe('2026-11-24T15:00:00.000Z');
    expect(out.gateway).toBe('gw-3');
    expect(out.table.entries).toBe(live.table.entries);
    expect(out.findings.map((f) => [f.id, f.severity, f.evidence])).toEqual(live.findings.map((f) => [f.id, f.severity, f.evidence]));
    expect(out.plan.steps.map((s) => [s.key, s.proposed])).toEqual(live.plan.steps.map((s) => [s.key, s.proposed]));

    const text = await cli(['analyze', file]);
    expect(text.code).toBe(0);
    expect(text.stdout.startsWith('OFFLINE: analysis of the saved file')).toBe(true);
    expect(text.stdout).toContain('cannot be approved or applied from here');
    for (const f of live.findings) expect(text.stdout).toContain(`(${f.id})`);
  });

  it('a long facts line (nft -j prints the ruleset on one line) is read whole, as the live check reads it', async () => {
    const facts = recordedFacts();
    const ruleset = JSON.parse(readFileSync(new URL('../fixtures/nft-j-ruleset-iptables-nft.json', import.meta.url), 'utf8')) as { nftables: unknown[] };
    // 3,000 more native rules in a table of their own: about 600 KB on one line
    for (let i = 0; i < 3000; i++) {
      ruleset.nftables.push({ rule: { family: 'inet', table: 'fw4', chain: 'srcnat', handle: 100 + i, expr: [{ match: { op: '==', left: { payload: { protocol: 'ip', field: 'saddr' } }, right: `198.18.${Math.floor(i / 250)}.${i % 250}` } }, { accept: null }] } });
    }
    const json = JSON.stringify(ruleset);
    expect(json.length).toBeGreaterThan(300_000);
    const withJson = facts.replace('@@section nft-ruleset@@', `@@section nft-ruleset-json@@\n${json}\n@@end nft-ruleset-json rc=0@@\n@@section nft-ruleset@@`);
    const live = parseFacts(withJson, '2026-11-24T15:00:00.000Z');
    // in 16 KB chunks, as a file stream reads it: the JSON line spans dozens of them
    const text = savedText(withJson, recordedDump());
    const chunks = Array.from({ length: Math.ceil(text.length / 16_384) }, (_, i) => text.slice(i * 16_384, (i + 1) * 16_384));
    const { report } = await analyzeSaved(Readable.from(chunks), { gatewayName: 'gw-3', config: { thresholds: thresholdsSchema.parse({}), port: 22, managementSource: undefined } });
    expect(report.facts.natRules.filter((r) => r.backend === 'nft').map((r) => r.kind)).toEqual(['masquerade', 'snat', 'dnat']);
    expect(report.facts.natRules).toEqual(live.natRules);
  });

  it('refuses what is not a saved file, a cut one, and a dump that failed on the gateway', async () => {
    const cases: [string, string, RegExp][] = [
      ['not-saved', recordedFacts(), /not a conntrack-ops saved file/],
      ['cut-facts', savedText(recordedFacts(), '').split('@@table-dump@@')[0] as string, /ends before the table dump/],
      ['cut-dump', savedText(recordedFacts(), recordedDump()).split('@@end table-dump rc=0@@')[0] as string, /table dump in the saved file is cut/],
      ['dump-failed', savedText(recordedFacts(), '@@established-timeout 432000', 1, 'conntrack v1.4.7 (conntrack-tools): Operation not permitted'), /failed on the gateway \(exit 1\): conntrack v1.4.7 \(conntrack-tools\): Operation not permitted/],
    ];
    for (const [name, body, message] of cases) {
      const file = join(dir, `${name}.saved`);
      await writeFile(file, body);
      const r = await cli(['analyze', file]);
      expect(r.code, name).toBe(2);
      expect(r.stderr, name).toMatch(message);
      expect(r.stdout, name).toBe('');
    }
    const missing = await cli(['analyze', join(dir, 'nope.saved')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/cannot read .*ENOENT/);
  });

  it('reads a saved file of 1,000,000 lines in bounded memory (RSS growth vs 10,000 lines)', async () => {
    const probe = async (lines: number): Promise<{ lines: number; entries: number; unparsed: number; maxRssMb: number; ms: number }> => {
      const file = join(dir, `gen-${lines}.saved`);
      await writeGeneratedSaved(file, lines);
      const { stdout } = await run(process.execPath, ['--import', 'tsx', 'test/cli/helpers/analyze-memory-probe.ts', file], { timeout: 300_000 });
      await rm(file);
      return JSON.parse(stdout) as { lines: number; entries: number; unparsed: number; maxRssMb: number; ms: number };
    };
    const small = await probe(10_000);
    const large = await probe(1_000_000);
    const growth = Math.round((large.maxRssMb - small.maxRssMb) * 10) / 10;
    console.log(`analyze RSS: 10k lines ${small.maxRssMb} MB (${small.ms} ms), 1M lines ${large.maxRssMb} MB (${large.ms} ms, ${Math.round(large.entries / (large.ms / 1000)).toLocaleString('en-US')} entries/s): growth ${growth} MB`);
    expect(small.entries).toBe(10_000);
    expect(large.entries).toBe(1_000_000);
    expect(large.unparsed).toBe(0);
    expect(growth).toBeLessThan(50);
  }, 600_000);
});
