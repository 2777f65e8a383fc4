/**
 * `conntrack-ops check` from a terminal, as a user would run it, with what goes wrong
 * in real life: each a clear error, a non-zero exit code, and nothing changed on the gateway.
 */
import { hideProcNet, restoreMounts } from '../support/gateway-mount-ns.js';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labDown, labUp, sshExec, type Lab } from '../../lab/index.js';

const run = promisify(execFile);
const CLI = ['--import', 'tsx', 'src/cli/main.ts'];

let lab: Lab;
let dir: string;
let silent: Server;
let silentPort: number;

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(args: string[]): Promise<CliResult> {
  try {
    const { stdout, stderr } = await run(process.execPath, [...CLI, ...args], { timeout: 90_000, env: { ...process.env, REDIS_URL: '', LOG_LEVEL: 'silent' } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

async function inventory(name: string, entry: Record<string, unknown>): Promise<string> {
  const path = join(dir, `${name}.yml`);
  await writeFile(path, stringify({ gateways: { [name]: entry } }));
  return path;
}

async function gatewayTimeouts(): Promise<string> {
  return (await sshExec(lab, 'cat /proc/sys/net/netfilter/nf_conntrack_tcp_timeout_established /proc/sys/net/netfilter/nf_conntrack_udp_timeout; ls /etc/sysctl.d /etc/modprobe.d')).stdout;
}

beforeAll(async () => {
  lab = await labUp({ clients: 1, sourcesPerClient: 2 });
  dir = await mkdtemp(join(tmpdir(), 'cto-cli-'));
  // A TCP server that accepts and never speaks SSH: an unresponsive host.
  silent = createServer(() => undefined);
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  silentPort = (silent.address() as { port: number }).port;
}, 120_000);

afterAll(async () => {
  silent?.close();
  if (lab) await labDown(lab);
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('conntrack-ops check from a terminal', () => {
  it('prints a readable report and --json the documented object', async () => {
    const path = await inventory('gw-lab', { ...lab.inventoryEntry });
    const text = await cli(['check', 'gw-lab', '--inventory', path]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain('conntrack-ops check: gw-lab');
    expect(text.stdout).toMatch(/entries\s+\d[\d,]* \/ 262,144/);
    expect(text.stdout).toContain('Change plan');
    const json = await cli(['check', 'gw-lab', '--inventory', path, '--json']);
    expect(json.code, json.stderr).toBe(0);
    const parsed = JSON.parse(json.stdout) as Record<string, unknown>;
    for (const key of ['gateway', 'conntrack', 'drops', 'topSources', 'topDestinations', 'states', 'timeouts', 'findings', 'plan']) {
      expect(parsed, key).toHaveProperty(key);
    }
    expect((parsed['conntrack'] as { max: number }).max).toBe(262_144);
  });

  it('unknown gateway: names the known ones, exit 2', async () => {
    const path = await inventory('gw-lab', { ...lab.inventoryEntry });
    const r = await cli(['check', 'gw-3', '--inventory', path]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown gateway "gw-3"; the inventory has gw-lab');
  });

  it('malformed inventory: names the field, exit 2', async () => {
    const path = await inventory('gw-bad', { host: '198.18.0.1', port: 70000, user: 'root', identityFile: '/nope', hostKey: 'md5:aa:bb' });
    const r = await cli(['check', 'gw-bad', '--inventory', path]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('gateways.gw-bad.port');
    expect(r.stderr).toContain('gateways.gw-bad.hostKey');
    const notYaml = join(dir, 'broken.yml');
    await writeFile(notYaml, 'gateways: [unclosed');
    const r2 = await cli(['check', 'gw-bad', '--inventory', notYaml]);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toMatch(/not valid YAML/);
  });

  it('unreachable host and a host that never answers: clear errors with the saturation hint, exit 3', async () => {
    const refused = await inventory('gw-down', { ...lab.inventoryEntry, host: '127.0.0.1', port: 1 });
    const r = await cli(['check', 'gw-down', '--inventory', refused]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/connection refused by 127\.0\.0\.1:1/);
    const mute = await inventory('gw-mute', { ...lab.inventoryEntry, host: '127.0.0.1', port: silentPort, connectTimeoutMs: 1500 });
    const r2 = await cli(['check', 'gw-mute', '--inventory', mute]);
    expect(r2.code).toBe(3);
    expect(r2.stderr).toMatch(/no SSH handshake .* within 1500 ms/);
    expect(r2.stderr).toMatch(/hint: .*table full/);
  });

  it('wrong key and host-key mismatch are refused, exit 3, nothing changed', async () => {
    const before = await gatewayTimeouts();
    const otherKey = join(dir, 'other_ed25519');
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', otherKey]);
    const wrongKey = await inventory('gw-key', { ...lab.inventoryEntry, identityFile: otherKey });
    const r = await cli(['check', 'gw-key', '--inventory', wrongKey]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/authentication as root failed/);
    const pinned = await inventory('gw-pin', { ...lab.inventoryEntry, hostKey: 'SHA256:ic9+NvPvYbG8dlJBJUBOAsNcui4WkSOOwedwmWRpo6g' });
    const r2 = await cli(['check', 'gw-pin', '--inventory', pinned]);
    expect(r2.code).toBe(3);
    expect(r2.stderr).toContain(`is ${lab.inventoryEntry.hostKey}, but the inventory pins SHA256:ic9+NvPvYbG8dlJBJUBOAsNcui4WkSOOwedwmWRpo6g; refusing`);
    expect(await gatewayTimeouts()).toBe(before);
  });

  it('a command that fails on the gateway: the check stops with its error, exit 3, nothing changed', async () => {
    const before = await gatewayTimeouts();
    // Break `conntrack` inside the lab sshd's own mount namespace only (not the host's).
    await sshExec(lab, 'mount --bind /dev/null "$(command -v conntrack)"');
    // and /proc/net/nf_conntrack, which the dump reads first: the table cannot be read at all
    hideProcNet(lab);
    try {
      const path = await inventory('gw-lab', { ...lab.inventoryEntry });
      const r = await cli(['check', 'gw-lab', '--inventory', path]);
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(/check of gw-lab failed: .*(table dump failed|conntrack)/);
    } finally {
      await sshExec(lab, 'umount "$(command -v conntrack)"');
      restoreMounts(lab);
    }
    expect(await gatewayTimeouts()).toBe(before);
  });
});
