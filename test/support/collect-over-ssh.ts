/**
 * What an operator types to save a gateway's outputs for `conntrack-ops analyze`:
 * `ssh root@gw sh -s < collect.sh > saved`, with the system's OpenSSH client (host key pinned).
 */
import { spawn } from 'node:child_process';
import { open } from 'node:fs/promises';
import { sshOptions, type SshTarget } from '../../lab/index.js';

export async function collectOverSsh(target: SshTarget, scriptPath: string, savedPath: string): Promise<{ code: number | null; stderr: string }> {
  const input = await open(scriptPath, 'r');
  const output = await open(savedPath, 'w');
  try {
    const child = spawn('ssh', [...sshOptions(target), target.host, 'sh', '-s'], { stdio: [input.fd, output.fd, 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', resolve);
    });
    return { code, stderr };
  } finally {
    await input.close();
    await output.close();
  }
}
