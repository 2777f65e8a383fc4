/**
 * A lab gateway user that is not root and may run, as root, exactly what the shipped
 * sudoers allows: the helper (conntrack-ops sudo-helper) and nothing else. Installed as root
 * inside the gateway's sshd mount namespace (its /etc, /usr/local/sbin and /var/lib are
 * lab-owned; nothing reaches this machine's files).
 */
import { chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { sshExec, type Lab } from '../../lab/index.js';
import { HELPER_PATH } from '../../src/gateway/sudo-helper/policy.js';
import { renderHelperScript } from '../../src/gateway/sudo-helper/script.js';
import { renderSudoers } from '../../src/gateway/sudo-helper/sudoers.js';

export async function addHelperSudoUser(lab: Lab, user: string): Promise<void> {
  // The lab's sshd reads one authorized_keys file for every user: let the new user read it.
  await chmod(lab.dir, 0o711);
  await chmod(join(lab.dir, 'authorized_keys'), 0o644);
  const helper = await sshExec(lab, `cat > ${HELPER_PATH} && chown root:root ${HELPER_PATH} && chmod 0755 ${HELPER_PATH}`, { input: renderHelperScript() });
  if (helper.exitCode !== 0) throw new Error(`helper install failed: ${helper.stderr}`);
  const setup = await sshExec(
    lab,
    `useradd -M -d /run/${user} -s /bin/sh ${user} && usermod -p '*' ${user} && ` +
      `cat > /etc/sudoers.d/conntrack-ops && chmod 0440 /etc/sudoers.d/conntrack-ops && visudo -c -q -f /etc/sudoers.d/conntrack-ops`,
    { input: renderSudoers(user) },
  );
  if (setup.exitCode !== 0) throw new Error(`sudo user setup failed: ${setup.stderr}`);
}
