/** An inventory file with one gateway that is never reached over SSH (the fault tests that need none). */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export async function writeUnreachableInventory(dir: string, gateway: string, identityFile = '/nonexistent/key'): Promise<string> {
  const path = join(dir, 'inventory.yml');
  await writeFile(path, `gateways:\n  ${gateway}:\n    host: 198.18.0.7\n    user: ops\n    identityFile: ${identityFile}\n    hostKey: "SHA256:${'A'.repeat(43)}"\n`);
  return path;
}
