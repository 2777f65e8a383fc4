/**
 * The gateway's OpenSSH server and the client side used by tests and the demo.
 *
 * sshd runs inside the gateway's network namespace and in a mount namespace of its own
 * (propagation private, so nothing mounted there reaches the host):
 *   /etc                overlay: host /etc below, <lab>/etc-upper above (writes stay in the lab)
 *   /etc/sysctl.d       bind of <lab>/sysctl.d    (empty, lab-owned)
 *   /etc/modprobe.d     bind of <lab>/modprobe.d  (empty, lab-owned; absent on many hosts)
 *   /usr/lib/sysctl.d, /usr/local/lib/sysctl.d, /lib/sysctl.d   empty binds, and an
 *                       empty /etc/sysctl.conf (so `sysctl --system` reads only lab files)
 *   /run                overlay with /run/sshd (sshd's privilege-separation directory)
 *   /root               bind of <lab>/root-home (empty, lab-owned): a gateway's root, not this
 *                       machine's. sshd runs every command through root's bash, which sources
 *                       ~/.bashrc: here that is pyenv init, 80 ms per exec (measured), no gateway's.
 *   /usr/local/sbin     bind of <lab>/usr-local-sbin (empty, lab-owned): where a test installs
 *                       the sudo helper (conntrack-ops-helper) of a non-root gateway user
 *   /var/lib            overlay: host /var/lib below, <lab>/var-lib-upper above (the
 *                       helper's snapshot copies in /var/lib/conntrack-ops stay in the lab)
 *   hidden tools        optional: overlays with whiteouts over the PATH directories that hold
 *                       them (hidden-tools.ts), and root's .bashrc logs commands not found.
 *   /proc/sys           read-only, except /proc/sys/net (the gateway namespace's own keys):
 *                       kernel.*, vm.*, fs.* are global and must never be written from a lab.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { netnsGuard, run, shq, sleep, type RunResult } from './exec.js';
import { hideScript, writeTripwire, type HiddenDir } from './hidden-tools.js';

export interface SshMaterial {
  identityFile: string;
  knownHostsFile: string;
  hostKeyFile: string;
  hostKeyLine: string;
  hostKeyFingerprint: string;
  configFile: string;
  logFile: string;
  pidFile: string;
}

/** Generates the lab's host key and client key (ed25519) and writes sshd_config. */
export async function prepareSsh(dir: string, name: string, listenAddress: string, port: number): Promise<SshMaterial> {
  const hostKeyFile = join(dir, 'ssh_host_ed25519_key');
  const identityFile = join(dir, 'id_ed25519');
  await rm(hostKeyFile, { force: true });
  await rm(`${hostKeyFile}.pub`, { force: true });
  await rm(identityFile, { force: true });
  await rm(`${identityFile}.pub`, { force: true });
  await Promise.all([
    run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `${name} host key`, '-f', hostKeyFile]),
    run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `${name} conntrack-ops lab`, '-f', identityFile]),
  ]);
  const hostPub = (await readFile(`${hostKeyFile}.pub`, 'utf8')).trim().split(/\s+/);
  const hostKeyLine = `${hostPub[0]} ${hostPub[1]}`;
  const fp = (await run('ssh-keygen', ['-lf', `${hostKeyFile}.pub`])).stdout.trim().split(/\s+/)[1] ?? '';
  if (!/^SHA256:[A-Za-z0-9+/]{43}$/.test(fp)) throw new Error(`unexpected ssh-keygen -lf output: ${fp}`);
  if (fingerprintOf(hostKeyLine) !== fp) throw new Error('host key fingerprint mismatch between ssh-keygen and computed');

  const knownHostsFile = join(dir, 'known_hosts');
  const hostPattern = port === 22 ? listenAddress : `[${listenAddress}]:${port}`;
  await writeFile(knownHostsFile, `${hostPattern} ${hostKeyLine}\n`, { mode: 0o644 });
  const authorized = (await readFile(`${identityFile}.pub`, 'utf8')).trim();
  await writeFile(join(dir, 'authorized_keys'), `${authorized}\n`, { mode: 0o600 });

  const configFile = join(dir, 'sshd_config');
  const logFile = join(dir, 'sshd.log');
  const pidFile = join(dir, 'sshd.pid');
  const config = [
    `# conntrack-ops lab ${name}`,
    `Port ${port}`,
    `ListenAddress ${listenAddress}`,
    `HostKey ${hostKeyFile}`,
    `PidFile ${pidFile}`,
    `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
    'PermitRootLogin prohibit-password',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    // The key files live under /tmp (world-writable parent): StrictModes would refuse them.
    'StrictModes no',
    'PrintMotd no',
    'PrintLastLog no',
    'UseDNS no',
    'MaxStartups 200:30:400',
    'MaxSessions 64',
    'LoginGraceTime 30',
    'ClientAliveInterval 0',
    'Subsystem sftp internal-sftp',
    'LogLevel INFO',
    '',
  ].join('\n');
  await writeFile(configFile, config, { mode: 0o600 });
  return { identityFile, knownHostsFile, hostKeyFile, hostKeyLine, hostKeyFingerprint: fp, configFile, logFile, pidFile };
}

/** SHA256 fingerprint of an OpenSSH public key line, as `ssh-keygen -lf` prints it. */
export function fingerprintOf(publicKeyLine: string): string {
  const blob = publicKeyLine.trim().split(/\s+/)[1] ?? '';
  const digest = createHash('sha256').update(Buffer.from(blob, 'base64')).digest('base64');
  return `SHA256:${digest.replace(/=+$/, '')}`;
}

/**
 * Starts sshd in `gatewayNs` inside its own mount namespace (see file comment).
 * Returns sshd's pid once it accepts TCP connections on address:port.
 */
export async function startSshd(opts: {
  dir: string;
  gatewayNs: string;
  gatewayInode: number;
  material: SshMaterial;
  address: string;
  port: number;
  /** Binaries the gateway's commands must not find (none by default). */
  hide?: readonly HiddenDir[];
}): Promise<number> {
  const { dir, material } = opts;
  const hide = opts.hide ?? [];
  for (const d of ['etc-upper', 'etc-work', 'run-upper', 'run-work', 'sysctl.d', 'modprobe.d', 'empty', 'root-home', 'usr-local-sbin', 'var-lib-upper', 'var-lib-work']) {
    await mkdir(join(dir, d), { recursive: true, mode: 0o755 });
  }
  if (hide.length) await writeTripwire(join(dir, 'root-home'), dir);
  // The gateway's /etc/sysctl.conf is lab-owned too (the host's may set keys of its own).
  await writeFile(join(dir, 'etc-upper', 'sysctl.conf'), '# conntrack-ops lab gateway: see /etc/sysctl.d\n', { mode: 0o644 });
  const D = (p: string) => shq(join(dir, p));
  const script = [
    netnsGuard(opts.gatewayInode),
    'set -e',
    // Belt and braces: unshare already made this mount namespace private.
    'mount --make-rprivate /',
    `mount -t overlay cto-lab-etc -o lowerdir=/etc,upperdir=${D('etc-upper')},workdir=${D('etc-work')} /etc`,
    'mkdir -p /etc/sysctl.d /etc/modprobe.d',
    `mount --bind ${D('sysctl.d')} /etc/sysctl.d`,
    `mount --bind ${D('modprobe.d')} /etc/modprobe.d`,
    `for d in /usr/lib/sysctl.d /lib/sysctl.d /usr/local/lib/sysctl.d /run/sysctl.d; do if [ -d "$d" ] && ! [ -L "$d" ]; then mount --bind ${D('empty')} "$d"; fi; done`,
    `mount -t overlay cto-lab-run -o lowerdir=/run,upperdir=${D('run-upper')},workdir=${D('run-work')} /run`,
    'mkdir -p /run/sshd && chmod 0755 /run/sshd',
    `chmod 0700 ${D('root-home')} && mount --bind ${D('root-home')} /root`,
    `if [ -d /usr/local/sbin ]; then mount --bind ${D('usr-local-sbin')} /usr/local/sbin; fi`,
    `mount -t overlay cto-lab-varlib -o lowerdir=/var/lib,upperdir=${D('var-lib-upper')},workdir=${D('var-lib-work')} /var/lib`,
    'mount --bind /proc/sys /proc/sys',
    'mount -o remount,bind,ro /proc/sys',
    'mount --bind /proc/sys/net /proc/sys/net',
    'mount -o remount,bind,rw /proc/sys/net',
    ...hideScript(dir, hide),
    `exec /usr/sbin/sshd -f ${shq(material.configFile)} -E ${shq(material.logFile)}`,
  ].join('\n');
  await run('ip', ['netns', 'exec', opts.gatewayNs, 'unshare', '--mount', '--propagation', 'private', 'sh', '-c', script], {
    timeoutMs: 20_000,
  });
  // sshd daemonised; its pid file appears once it listens.
  const deadline = Date.now() + 10_000;
  let pid = 0;
  while (Date.now() < deadline) {
    try {
      pid = Number((await readFile(material.pidFile, 'utf8')).trim());
    } catch {
      pid = 0;
    }
    if (pid > 0 && (await tcpReachable(opts.address, opts.port, 1000))) return pid;
    await sleep(30);
  }
  let log = '';
  try {
    log = await readFile(material.logFile, 'utf8');
  } catch {
    // no log
  }
  throw new Error(`sshd in ${opts.gatewayNs} did not come up: ${log.slice(-1000)}`);
}

export function tcpReachable(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host, port });
    const done = (ok: boolean) => {
      sock.removeAllListeners();
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

export interface SshTarget {
  host: string;
  port: number;
  user: string;
  identityFile: string;
  knownHostsFile: string;
  /** ControlMaster socket, when one is open. */
  controlPath?: string;
}

/** OpenSSH options that pin the host key: no prompts, no agent, no other identities. */
export function sshOptions(t: SshTarget, connectTimeoutS = 10): string[] {
  const opts = [
    '-F', '/dev/null',
    '-o', 'BatchMode=yes',
    '-o', 'StrictHostKeyChecking=yes',
    '-o', `UserKnownHostsFile=${t.knownHostsFile}`,
    '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', 'IdentitiesOnly=yes',
    '-o', 'IdentityAgent=none',
    '-o', `ConnectTimeout=${connectTimeoutS}`,
    '-o', 'LogLevel=ERROR',
    '-i', t.identityFile,
    '-p', String(t.port),
    '-l', t.user,
  ];
  if (t.controlPath) opts.push('-o', `ControlPath=${t.controlPath}`, '-o', 'ControlMaster=no');
  return opts;
}

/** Runs one command on the gateway with OpenSSH (pinned host key). Never throws on exit code. */
export async function sshRun(
  t: SshTarget,
  command: string,
  opts: { timeoutMs?: number; connectTimeoutS?: number; input?: string } = {},
): Promise<RunResult> {
  return run('ssh', [...sshOptions(t, opts.connectTimeoutS), t.host, command], {
    check: false,
    timeoutMs: opts.timeoutMs ?? 30_000,
    input: opts.input,
  });
}

export interface SshMaster {
  controlPath: string;
  /** Runs a command over the open master connection (works even when new connections are refused). */
  run(command: string, opts?: { timeoutMs?: number; input?: string }): Promise<RunResult>;
  close(): Promise<void>;
}

/**
 * Opens an OpenSSH ControlMaster connection (background, persists until close()).
 * Open it before a `saturated` fill: a table full of assured entries refuses new SSH
 * connections, an established one keeps working.
 */
export async function openSshMaster(t: SshTarget, controlPath: string): Promise<SshMaster> {
  const base = { ...t, controlPath: undefined };
  await rm(controlPath, { force: true });
  await run(
    'ssh',
    [
      ...sshOptions(base),
      '-o', 'ControlMaster=yes',
      '-o', `ControlPath=${controlPath}`,
      '-o', 'ControlPersist=600',
      '-o', 'ServerAliveInterval=0',
      '-fN',
      t.host,
    ],
    { timeoutMs: 20_000 },
  );
  const viaMaster: SshTarget = { ...t, controlPath };
  return {
    controlPath,
    run: (command, opts = {}) => sshRun(viaMaster, command, opts),
    close: async () => {
      await run('ssh', [...sshOptions(base), '-o', `ControlPath=${controlPath}`, '-O', 'exit', t.host], {
        check: false,
        timeoutMs: 10_000,
      });
      await rm(controlPath, { force: true });
    },
  };
}
