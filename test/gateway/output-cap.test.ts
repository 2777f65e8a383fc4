/**
 * The per-command output cap of `exec` (defect 7), on a real lab gateway over real SSH: past
 * the cap the command is ended and the error names it and the cap; under it the output is
 * whole; the session stays usable afterwards (a warm session is shared by every job).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labDown, labUp, type Lab } from '../../lab/index.js';
import { commands, DEFAULT_MAX_OUTPUT_BYTES } from '../../src/gateway/commands.js';
import { OutputTooLargeError } from '../../src/gateway/errors.js';
import { GatewaySession } from '../../src/gateway/ssh-session.js';

let lab: Lab;
let session: GatewaySession;

beforeAll(async () => {
  lab = await labUp({ clients: 1, sourcesPerClient: 1 });
  session = await GatewaySession.connect(lab.name, lab.inventoryEntry);
}, 120_000);

afterAll(async () => {
  session?.close();
  if (lab) await labDown(lab);
});

describe('exec output cap', () => {
  it('past the cap: OutputTooLargeError naming the command and the cap; the session still works', async () => {
    const t0 = Date.now();
    const err = await session.exec(commands.script('print forever', 'yes'), { maxOutputBytes: 64 * 1024 }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(OutputTooLargeError);
    expect((err as Error).message).toContain(`"print forever" on ${lab.name} printed more than 64 KiB (this command's limit)`);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect((await session.exec(commands.script('echo', 'echo still-here'))).stdout.trim()).toBe('still-here');
  }, 30_000);

  it('under the cap: the whole output', async () => {
    const r = await session.exec(commands.script('print 100 kB', 'head -c 100000 /dev/zero'), { maxOutputBytes: 128 * 1024 });
    expect(r.stdout.length).toBe(100_000);
  }, 30_000);

  it('every command template carries a cap (16 MiB unless the template says otherwise)', () => {
    expect(commands.script('facts', 'true').maxOutputBytes).toBe(DEFAULT_MAX_OUTPUT_BYTES);
    expect(DEFAULT_MAX_OUTPUT_BYTES).toBe(16 * 1024 * 1024);
    expect(commands.countEntries().maxOutputBytes).toBe(DEFAULT_MAX_OUTPUT_BYTES);
  });
});
