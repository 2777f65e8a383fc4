/**
 * Jump host (defect 16): a lab gateway's namespace with its real sshd is the jump host. Behind
 * it: the jump's own sshd (reachable: the session works), the lab server on a closed port
 * (refused: RST) and the lab server on a port whose SYNs the jump namespace drops (blackholed:
 * the forward hangs until our timeout). After three failures of each kind, the number of SSH
 * connections open on the jump host (`ss` in its namespace) is back where it started.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatewayExec, labDown, labUp, type Lab } from '../../lab/index.js';
import type { GatewayConfig } from '../../src/config/inventory.js';
import { commands } from '../../src/gateway/commands.js';
import { GatewayError } from '../../src/gateway/errors.js';
import { GatewaySession } from '../../src/gateway/ssh-session.js';
import { waitUntil } from '../support/wait-until.js';

const REFUSED_PORT = 2;
const BLACKHOLED_PORT = 3;
const FORWARD_TIMEOUT_MS = 2_000;

let jump: Lab;

/** Established connections to the jump host's sshd, counted in its namespace. */
async function jumpConnections(): Promise<number> {
  const r = await gatewayExec(jump, ['ss', '-tnH', 'state', 'established', '( sport = :22 )']);
  return r.stdout.split('\n').filter((l) => l.trim()).length;
}

function behindJump(host: string, port: number): GatewayConfig {
  const e = jump.inventoryEntry;
  return {
    ...e,
    host,
    port,
    connectTimeoutMs: FORWARD_TIMEOUT_MS,
    jumpHost: { host: e.host, port: e.port, user: e.user, identityFile: e.identityFile, hostKey: e.hostKey },
  };
}

beforeAll(async () => {
  jump = await labUp({ clients: 1, sourcesPerClient: 1 });
  // The blackhole: the jump host's SYNs to this port go nowhere (in the lab namespace only).
  await gatewayExec(jump, ['iptables', '-I', 'OUTPUT', '-d', jump.serverAddress, '-p', 'tcp', '--dport', String(BLACKHOLED_PORT), '-j', 'DROP'], { check: true });
}, 120_000);

afterAll(async () => {
  if (jump) await labDown(jump);
});

describe('a gateway behind a jump host', () => {
  it('reachable: the session runs a command through the jump, and closing it closes the jump connection', async () => {
    const base = await jumpConnections();
    const session = await GatewaySession.connect('behind-jump', behindJump(jump.mgmt.gatewayAddress, 22));
    const r = await session.exec(commands.script('hello', 'echo through-the-jump'));
    expect(r.stdout.trim()).toBe('through-the-jump');
    // two on the jump's sshd: ours to the jump, and the forwarded one to itself
    expect(await jumpConnections()).toBe(base + 2);
    session.close();
    await waitUntil('the jump connections to close', async () => (await jumpConnections()) === base, 10_000);
  }, 60_000);

  it('refused three times: a clear error each time, 0 jump connections left open', async () => {
    const base = await jumpConnections();
    for (let i = 0; i < 3; i++) {
      const err = await GatewaySession.connect('refused', behindJump(jump.serverAddress, REFUSED_PORT)).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(GatewayError);
      expect((err as Error).message).toMatch(new RegExp(`cannot reach ${jump.serverAddress}:${REFUSED_PORT}`));
    }
    await waitUntil('the jump connections to close', async () => (await jumpConnections()) === base, 10_000);
    console.log(`[figure] jump host, target refuses: leaked jump connections after 3 failures = ${(await jumpConnections()) - base}`);
  }, 60_000);

  it('blackholed three times: each gives up at the timeout (not the kernel SYN retries), 0 jump connections left open', async () => {
    const base = await jumpConnections();
    for (let i = 0; i < 3; i++) {
      const t0 = Date.now();
      const err = await GatewaySession.connect('blackholed', behindJump(jump.serverAddress, BLACKHOLED_PORT)).then(
        () => null,
        (e: unknown) => e,
      );
      const took = Date.now() - t0;
      expect(err).toBeInstanceOf(GatewayError);
      expect((err as GatewayError).kind).toBe('timeout');
      expect((err as Error).message).toContain(`did not reach ${jump.serverAddress}:${BLACKHOLED_PORT} within ${FORWARD_TIMEOUT_MS} ms`);
      expect(took).toBeGreaterThanOrEqual(FORWARD_TIMEOUT_MS);
      expect(took).toBeLessThan(FORWARD_TIMEOUT_MS * 5);
    }
    await waitUntil('the jump connections to close', async () => (await jumpConnections()) === base, 10_000);
    console.log(`[figure] jump host, target blackholed: leaked jump connections after 3 failures = ${(await jumpConnections()) - base}`);
  }, 60_000);
});
