/**
 * The shipped Prometheus rule pack and Alertmanager route, checked with the real tools
 * (Debian's prometheus / prometheus-alertmanager packages ship promtool and amtool).
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const deploy = resolve(import.meta.dirname, '../../deploy');
const rules = join(deploy, 'prometheus/conntrack-rules.yml');
const ruleTests = join(deploy, 'prometheus/conntrack-rules.test.yml');
const alertmanager = join(deploy, 'alertmanager/alertmanager.yml');

async function tool(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await run(cmd, args, { timeout: 60_000 });
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

describe('deploy/prometheus rule pack (promtool)', () => {
  let scratch = '';
  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'cto-rules-'));
  });
  afterAll(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  it('is valid Prometheus rule syntax with the four conntrack alerts', async () => {
    const r = await tool('promtool', ['check', 'rules', rules]);
    expect(r.out).toContain('SUCCESS: 4 rules found');
    expect(r.code).toBe(0);
  });

  it('passes its unit tests: 80 % warns after 1m, 95 % is critical, drops beyond insert_failed page, insert_failed alone is port exhaustion, a reboot is no drop', async () => {
    const r = await tool('promtool', ['test', 'rules', ruleTests]);
    expect(r.out).toContain('SUCCESS');
    expect(r.code).toBe(0);
  });

  it('the unit tests catch a wrong threshold (a warning at 90 % instead of 80 % fails them)', async () => {
    const text = await readFile(rules, 'utf8');
    const broken = text.replace('node_nf_conntrack_entries / node_nf_conntrack_entries_limit > 0.80', 'node_nf_conntrack_entries / node_nf_conntrack_entries_limit > 0.90');
    expect(broken).not.toBe(text);
    await writeFile(join(scratch, 'conntrack-rules.yml'), broken);
    await copyFile(ruleTests, join(scratch, 'conntrack-rules.test.yml'));
    const r = await tool('promtool', ['test', 'rules', join(scratch, 'conntrack-rules.test.yml')]);
    expect(r.code).not.toBe(0);
    expect(r.out).toContain('FAILED');
    expect(r.out).toContain('ConntrackTableHigh');
  });
});

describe('deploy/alertmanager route (amtool)', () => {
  it('is a valid Alertmanager configuration', async () => {
    const r = await tool('amtool', ['check-config', alertmanager]);
    expect(r.out).toContain('SUCCESS');
    expect(r.code).toBe(0);
  });

  it('routes every conntrack alert to the conntrack-ops webhook and nothing else to it', async () => {
    for (const alertname of ['ConntrackTableHigh', 'ConntrackTableSaturated', 'ConntrackTableFullDrops', 'ConntrackNatPortExhaustion']) {
      const r = await tool('amtool', ['config', 'routes', 'test', `--config.file=${alertmanager}`, `alertname=${alertname}`, 'instance=gw-3:9100']);
      expect(r.out.split('\n')[0]?.trim(), alertname).toBe('conntrack-ops');
    }
    const other = await tool('amtool', ['config', 'routes', 'test', `--config.file=${alertmanager}`, 'alertname=DiskFull']);
    expect(other.out.split('\n')[0]?.trim()).toBe('default');
  });

  it('the webhook sends a bearer token and resolved notifications', async () => {
    const text = await readFile(alertmanager, 'utf8');
    expect(text).toMatch(/url: http:\/\/conntrack-ops:3000\/alertmanager/);
    expect(text).toMatch(/send_resolved: true/);
    expect(text).toMatch(/type: Bearer/);
  });
});
