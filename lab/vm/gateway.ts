/**
 * A NAT gateway in a small QEMU VM (software emulation, TCG), for the tests that need a
 * whole kernel: inside a network namespace nf_conntrack_max and the hashsize are
 * read-only, in the VM's init namespace they are writable.
 *
 *   const vm = await vmUp({ bootMax: 4096 });
 *   vm.inventoryEntry;            // GatewayConfig: 127.0.0.1, forwarded port, root, key, pinned host key
 *   await vm.fill('saturated');   // table full of ASSURED entries, new flows dropped
 *   await vm.exec('conntrack -S');
 *   await vm.down();              // or vmDown(name) from another process
 *
 * State lives in <stateRoot>/<name>/ (state.json, keys, console.log, ssh control socket).
 * QEMU is watched by a small shell watchdog that kills it when the owning process dies
 * or its time to live runs out, so a crashed test run leaves no VM behind.
 */
import { freePort } from '../../src/infra/redis.js';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, statSync } from 'node:fs';
import { appendFile, copyFile, mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { gatewayConfigSchema, type GatewayConfig } from '../../src/config/inventory.js';
import { ensureInitramfs, ensureKernel, secretsCpio, type VmUserland } from './initramfs.js';
import { stateDirOf, stateRoot } from './paths.js';

export type FillScenario = 'saturated' | 'healthy' | 'offload';

export interface VmUpOptions {
  /** Gateway / VM name (also the state folder). Default: vm-<random>. */
  name?: string;
  /** Guest memory in MiB. Default max(512, 384 + 8 KiB per bootMax entry). */
  memoryMb?: number;
  /** nf_conntrack_max set at boot. Default 4096 (small, so that filling is quick under TCG). */
  bootMax?: number;
  /** nf_conntrack hashsize set when the module loads. Default 1024. */
  hashsize?: number;
  /** Virtual CPUs. Default 1 (the host has 2 cores; TCG is slow either way). */
  cpus?: number;
  /** 'debian' (default) or 'busybox': ash as every shell, busybox tools, no bash, no conntrack (initramfs.ts). */
  userland?: VmUserland;
  /**
   * Flow offload: boot loads nf_flow_table, nf_flow_table_inet and nft_flow_offload, creates
   * `table inet cto_offload` with a software flowtable `ft` on lan0 and wan0 and a forward
   * rule `meta l4proto { tcp, udp } flow add @ft`, and starts a TCP echo server (wan :5001).
   * `fill('offload')` then holds long-lived TCP and UDP flows that the kernel offloads. Default false.
   */
  flowOffload?: boolean;
  /**
   * The VM outlives this process (for `lab vm up`): no owner watchdog, only the TTL.
   * Default false: QEMU is killed when this process exits.
   */
  detached?: boolean;
  /** Watchdog kills QEMU after this many seconds whatever happens. Default 3600. */
  ttlSeconds?: number;
  /** Give up when the VM has not booted (READY on its console) in time. Default 120 s. */
  bootTimeoutMs?: number;
  log?: (line: string) => void;
}

export interface VmState {
  name: string;
  stateDir: string;
  qemuPid: number;
  watchdogPid: number;
  /** Host port forwarded to the guest's sshd (127.0.0.1). */
  port: number;
  kernel: { kver: string; pkg: string };
  initramfs: { path: string; sizeBytes: number };
  bootMax: number;
  hashsize: number;
  memoryMb: number;
  cpus: number;
  /** Booted with the flowtable (VmUpOptions.flowOffload). */
  flowOffload?: boolean;
  identityFile: string;
  knownHostsFile: string;
  /** SHA256 fingerprint of the guest's host key, as `ssh-keygen -lf` prints it. */
  hostKey: string;
  controlPath: string;
  consoleLog: string;
  startedAt: string;
  /** QEMU start -> READY on the console. */
  bootMs: number;
  /** Owning process (0 when detached). */
  ownerPid: number;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
  durationMs: number;
}

export interface ExecOptions {
  /** Sent to the command's stdin. */
  input?: string;
  timeoutMs?: number;
  /** Open a new SSH connection instead of reusing the warm one (fails while the table is full). */
  newConnection?: boolean;
  /** Connect timeout for a new connection, seconds. Default 10. */
  connectTimeoutS?: number;
}

export interface FillResult {
  scenario: FillScenario | 'stop' | 'status';
  /** nf_conntrack_count / nf_conntrack_max after the fill. */
  count: number;
  /** `[OFFLOAD]` / `[HW_OFFLOAD]` lines in /proc/net/nf_conntrack after the fill. */
  offloaded: number;
  /** Offload scenario: long-lived TCP connections asked for, connected, and answered once. */
  tcpFlows: number;
  tcpConnected: number;
  tcpAnswered: number;
  max: number;
  hashsize: number;
  /** Sum of `drop` over all CPUs (conntrack -S), before and after. */
  dropBefore: number;
  drop: number;
  earlyDrop: number;
  insertFailed: number;
  /** Lines in the VM's kernel log with "table full", before and after. */
  tableFullLinesBefore: number;
  tableFullLines: number;
  generatorRunning: boolean;
  /** Generator: flows opened, flows ASSURED, probe flows tried/answered. */
  flows: number;
  assured: number;
  probeSent: number;
  probeReplied: number;
  /** Seconds the generator took to reach the target (inside the VM). */
  fillSeconds: number;
  /** Wall time of the whole fill call, ms. */
  durationMs: number;
  raw: Record<string, string>;
}

export interface VmGateway {
  readonly name: string;
  readonly state: VmState;
  /** Entry for the inventory: host 127.0.0.1, the forwarded port, root, key, pinned host key. */
  readonly inventoryEntry: GatewayConfig;
  /** The address the gateway sees management SSH coming from (QEMU user-net host). */
  readonly managementSource: string;
  /** Runs a shell command in the VM as root (over the warm SSH connection unless told). */
  exec(command: string, options?: ExecOptions): Promise<ExecResult>;
  /** Like exec, but throws when the exit code is not 0. Returns stdout. */
  run(command: string, options?: ExecOptions): Promise<string>;
  /**
   * saturated: table full, new flows dropped (extraFlows tried beyond max). healthy: `flows`
   * assured flows. offload (VM booted with flowOffload): `tcpFlows` long-lived TCP connections
   * and `flows` UDP flows (64 each by default), traffic every 10 s, offloaded to the flowtable.
   */
  fill(scenario: FillScenario, options?: { extraFlows?: number; flows?: number; tcpFlows?: number }): Promise<FillResult>;
  /** Table state without changing it (count, max, drops, generator). */
  status(): Promise<FillResult>;
  /** Stops the generator and removes the lab's entries. */
  stopTraffic(): Promise<FillResult>;
  /** ssh arguments (without the remote command) for the warm connection. */
  sshArgs(options?: { newConnection?: boolean; connectTimeoutS?: number }): string[];
  down(): Promise<void>;
}

export const VM_ADDRESSES = {
  /** QEMU user networking: the host side, where management SSH comes from. */
  managementSource: '198.18.255.2',
  gatewayMgmt: '198.18.255.15',
  lanGateway: '198.18.1.1',
  lanClient: '198.18.1.2',
  wanGateway: '198.18.2.1',
  wanServer: '198.18.2.2',
} as const;

const QEMU = 'qemu-system-x86_64';

// ------------------------------------------------------------------------------------------


function pidAlive(pid: number): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie still answers kill(0): look at its state.
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = st.slice(st.lastIndexOf(')') + 2, st.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** True when pid is a QEMU started for this state folder (guards against pid reuse). */
function isOurQemu(pid: number, stateDir: string): boolean {
  if (!pidAlive(pid)) return false;
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmdline.includes(QEMU) && cmdline.includes(stateDir);
  } catch {
    return false;
  }
}

async function killPid(pid: number, graceMs = 3000): Promise<void> {
  if (!pidAlive(pid)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const until = Date.now() + graceMs;
  while (Date.now() < until) {
    if (!pidAlive(pid)) return;
    await sleep(50);
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
  const hard = Date.now() + 2000;
  while (Date.now() < hard && pidAlive(pid)) await sleep(50);
}

async function hostKeyFingerprint(pubFile: string): Promise<string> {
  const { stdout } = await execa('ssh-keygen', ['-lf', pubFile]);
  const fp = String(stdout).split(/\s+/)[1];
  if (!fp?.startsWith('SHA256:')) throw new Error(`unexpected ssh-keygen -lf output: ${stdout}`);
  return fp;
}

function parseKeyValues(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)=(.*)$/.exec(line.trim());
    if (m?.[1]) out[m[1]] = m[2] ?? '';
  }
  return out;
}

function parseFill(scenario: FillResult['scenario'], text: string, durationMs: number): FillResult {
  const kv = parseKeyValues(text);
  if (kv.error) throw new Error(`cto-fill ${scenario}: ${kv.error}`);
  const n = (k: string): number => {
    const v = kv[k];
    return v === undefined || v === '' ? 0 : Number(v);
  };
  return {
    scenario,
    count: n('count'),
    offloaded: n('offloaded'),
    tcpFlows: n('tcp_flows'),
    tcpConnected: n('tcp_connected'),
    tcpAnswered: n('tcp_answered'),
    max: n('max'),
    hashsize: n('hashsize'),
    dropBefore: kv.drop_before === undefined ? n('drop') : n('drop_before'),
    drop: n('drop'),
    earlyDrop: n('early_drop'),
    insertFailed: n('insert_failed'),
    tableFullLinesBefore: kv.table_full_lines_before === undefined ? n('table_full_lines') : n('table_full_lines_before'),
    tableFullLines: n('table_full_lines'),
    generatorRunning: kv.generator === 'running',
    flows: n('gen_flows'),
    assured: n('gen_assured'),
    probeSent: n('probe_sent'),
    probeReplied: n('probe_replied'),
    fillSeconds: n('gen_fill_s'),
    durationMs,
    raw: kv,
  };
}

// ------------------------------------------------------------------------------------------

class Vm implements VmGateway {
  readonly inventoryEntry: GatewayConfig;
  readonly managementSource = VM_ADDRESSES.managementSource;
  private exitHook: (() => void) | null = null;

  constructor(readonly state: VmState) {
    this.inventoryEntry = gatewayConfigSchema.parse({
      host: '127.0.0.1',
      port: state.port,
      user: 'root',
      identityFile: state.identityFile,
      hostKey: state.hostKey,
      sudo: false,
      labels: { lab: 'vm', kind: 'qemu-vm', kernel: state.kernel.kver, vm: state.name },
      // QEMU user networking: every connection from the host arrives from this address.
      managementSource: VM_ADDRESSES.managementSource,
    });
  }

  get name(): string {
    return this.state.name;
  }

  /** Kill QEMU synchronously when this process exits (in-process VMs only). */
  armExitHook(): void {
    const { qemuPid, watchdogPid, stateDir } = this.state;
    this.exitHook = () => {
      for (const pid of [qemuPid, watchdogPid]) {
        try {
          if (pid === qemuPid && !isOurQemu(pid, stateDir)) continue;
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    };
    process.once('exit', this.exitHook);
  }

  sshArgs(options: { newConnection?: boolean; connectTimeoutS?: number } = {}): string[] {
    return this.sshArgsFor(options.newConnection ? 'new' : 'mux', options.connectTimeoutS ?? 10);
  }

  private sshArgsFor(mode: 'mux' | 'new' | 'master', connectTimeoutS: number): string[] {
    const s = this.state;
    const control =
      mode === 'new'
        ? ['-o', 'ControlPath=none']
        : mode === 'mux'
          ? ['-o', `ControlPath=${s.controlPath}`, '-o', 'ControlMaster=no']
          : ['-o', `ControlPath=${s.controlPath}`, '-o', 'ControlMaster=yes', '-o', 'ControlPersist=yes'];
    return [
      '-i', s.identityFile,
      '-p', String(s.port),
      '-o', 'IdentitiesOnly=yes',
      '-o', 'IdentityAgent=none',
      '-o', `UserKnownHostsFile=${s.knownHostsFile}`,
      '-o', 'GlobalKnownHostsFile=/dev/null',
      '-o', 'StrictHostKeyChecking=yes',
      '-o', 'HostKeyAlgorithms=ssh-ed25519',
      '-o', 'BatchMode=yes',
      '-o', 'LogLevel=ERROR',
      '-o', `ConnectTimeout=${connectTimeoutS}`,
      '-o', 'ServerAliveInterval=5',
      '-o', 'ServerAliveCountMax=12',
      ...control,
      'root@127.0.0.1',
    ];
  }

  /** Opens the warm connection (an OpenSSH control master that lives in the background). */
  async openMaster(deadline: number): Promise<void> {
    const s = this.state;
    let last = '';
    while (Date.now() < deadline) {
      const res = await execa('ssh', [...this.sshArgsFor('master', 5), 'true'], { reject: false, timeout: 30_000, stdin: 'ignore' });
      if (res.exitCode === 0) return;
      last = `${String(res.stderr).trim()} (exit ${res.exitCode})`;
      if (!isOurQemu(s.qemuPid, s.stateDir)) break;
      await sleep(500);
    }
    throw new Error(`cannot open SSH to VM ${s.name} on 127.0.0.1:${s.port}: ${last}`);
  }

  async exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    const t0 = Date.now();
    const res = await execa('ssh', [...this.sshArgs(options), command], {
      reject: false,
      timeout: options.timeoutMs ?? 120_000,
      ...(options.input !== undefined ? { input: options.input } : { stdin: 'ignore' as const }),
    });
    return {
      code: typeof res.exitCode === 'number' ? res.exitCode : -1,
      stdout: String(res.stdout ?? ''),
      stderr: String(res.stderr ?? '') + (res.timedOut ? `\n(timed out after ${options.timeoutMs ?? 120_000} ms)` : ''),
      durationMs: Date.now() - t0,
    };
  }

  async run(command: string, options: ExecOptions = {}): Promise<string> {
    const r = await this.exec(command, options);
    if (r.code !== 0) throw new Error(`VM ${this.name}: \`${command}\` exited ${r.code}: ${r.stderr.trim()}`);
    return r.stdout;
  }

  async fill(scenario: FillScenario, options: { extraFlows?: number; flows?: number; tcpFlows?: number } = {}): Promise<FillResult> {
    const count = (v: number | undefined, fallback: number): string => String(Math.max(0, Math.floor(v ?? fallback)));
    const arg =
      scenario === 'offload'
        ? `${count(options.tcpFlows, 64)} ${count(options.flows, 64)}`
        : scenario === 'saturated'
        ? String(Math.max(0, Math.floor(options.extraFlows ?? 64)))
        : options.flows !== undefined
          ? String(Math.max(0, Math.floor(options.flows)))
          : '';
    return this.cto(`${scenario} ${arg}`.trim(), scenario);
  }

  status(): Promise<FillResult> {
    return this.cto('status', 'status');
  }

  stopTraffic(): Promise<FillResult> {
    return this.cto('stop', 'stop');
  }

  private async cto(args: string, scenario: FillResult['scenario']): Promise<FillResult> {
    const t0 = Date.now();
    const r = await this.exec(`/usr/local/sbin/cto-fill ${args}`, { timeoutMs: 240_000 });
    if (r.code !== 0) throw new Error(`VM ${this.name}: cto-fill ${args} exited ${r.code}: ${r.stdout}${r.stderr}`);
    return parseFill(scenario, r.stdout, Date.now() - t0);
  }

  disarmExitHook(): void {
    if (this.exitHook) {
      process.removeListener('exit', this.exitHook);
      this.exitHook = null;
    }
  }

  async down(): Promise<void> {
    this.disarmExitHook();
    await stopVm(this.state);
  }
}

async function stopVm(state: VmState): Promise<void> {
  if (existsSync(state.controlPath)) {
    await execa('ssh', ['-o', `ControlPath=${state.controlPath}`, '-O', 'exit', 'root@127.0.0.1'], {
      reject: false,
      timeout: 5000,
    });
  }
  if (isOurQemu(state.qemuPid, state.stateDir)) await killPid(state.qemuPid);
  await killPid(state.watchdogPid, 500);
  await rm(state.stateDir, { recursive: true, force: true });
}

/** The watchdog: kills QEMU when the owner dies (owner 0: never) or the deadline passes. */
function startWatchdog(qemuPid: number, ownerPid: number, ttlSeconds: number): number {
  const deadline = Math.floor(Date.now() / 1000) + ttlSeconds;
  const script = [
    `q=${qemuPid}; o=${ownerPid}; d=${deadline}`,
    'while kill -0 "$q" 2>/dev/null; do',
    '  if [ "$o" != 0 ] && ! kill -0 "$o" 2>/dev/null; then break; fi',
    '  if [ "$(date +%s)" -ge "$d" ]; then break; fi',
    '  sleep 1',
    'done',
    'kill "$q" 2>/dev/null; sleep 3; kill -9 "$q" 2>/dev/null',
  ].join('\n');
  const child = spawn('sh', ['-c', script, 'cto-vm-watchdog'], { detached: true, stdio: 'ignore' });
  child.unref();
  return child.pid ?? 0;
}

/** Boots a VM gateway and returns once root can log in over SSH with the pinned key. */
export async function vmUp(opts: VmUpOptions = {}): Promise<VmGateway> {
  const log = opts.log ?? (() => {});
  const name = opts.name ?? `vm-${randomBytes(3).toString('hex')}`;
  if (!/^[a-z0-9][a-z0-9._-]{0,40}$/i.test(name)) throw new Error(`bad VM name "${name}"`);
  const bootMax = opts.bootMax ?? 4096;
  const hashsize = opts.hashsize ?? 1024;
  // About 8 KiB per flow of a full table (conntrack entry, the generator's UDP socket and its
  // receive memory) on top of the base system.
  const memoryMb = opts.memoryMb ?? Math.max(512, 384 + Math.ceil((bootMax * 8) / 1024));
  const cpus = opts.cpus ?? 1;
  const ttl = opts.ttlSeconds ?? 3600;
  if (!Number.isInteger(bootMax) || bootMax < 64 || bootMax > 4_194_304) throw new Error(`bootMax ${bootMax} out of range`);
  if (!Number.isInteger(hashsize) || hashsize < 16) throw new Error(`hashsize ${hashsize} out of range`);

  await pruneStale().catch(() => {});
  const stateDir = stateDirOf(name);
  if (existsSync(join(stateDir, 'state.json'))) {
    const old = await readState(name);
    if (old && isOurQemu(old.qemuPid, old.stateDir)) throw new Error(`VM ${name} is already running (vmDown it first)`);
  }
  await rm(stateDir, { recursive: true, force: true });
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  try {
    return await boot(name, stateDir, { bootMax, hashsize, memoryMb, cpus, ttl }, opts, log);
  } catch (err) {
    // Whatever failed (prerequisites, image, boot), leave no half-made VM folder behind
    // unless asked to keep it for a post-mortem.
    if (!process.env.CTO_VM_KEEP_FAILED) await rm(stateDir, { recursive: true, force: true });
    throw err;
  }
}

async function boot(
  name: string,
  stateDir: string,
  p: { bootMax: number; hashsize: number; memoryMb: number; cpus: number; ttl: number },
  opts: VmUpOptions,
  log: (line: string) => void,
): Promise<VmGateway> {
  const { bootMax, hashsize, memoryMb, cpus, ttl } = p;
  const kernel = await ensureKernel(log);
  const base = await ensureInitramfs(kernel, log, opts.userland ?? 'debian');

  // Keys: the guest's host key (pinned) and root's authorized key.
  const hostKeyFile = join(stateDir, 'ssh_host_ed25519_key');
  const identityFile = join(stateDir, 'id_ed25519');
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `cto-vm-${name}-host`, '-f', hostKeyFile]);
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `cto-vm-${name}-client`, '-f', identityFile]);
  const hostKeyPub = await readFile(`${hostKeyFile}.pub`, 'utf8');
  const hostKey = await hostKeyFingerprint(`${hostKeyFile}.pub`);

  const initrd = join(stateDir, 'initrd.img');
  await copyFile(base.path, initrd);
  await appendFile(
    initrd,
    secretsCpio({
      hostKey: await readFile(hostKeyFile, 'utf8'),
      hostKeyPub,
      authorizedKeys: await readFile(`${identityFile}.pub`, 'utf8'),
    }),
  );

  const consoleLog = join(stateDir, 'console.log');
  const controlPath = stateDir.length < 80 ? join(stateDir, 'ctl') : `/tmp/cto-vm-${name}.ctl`;
  const knownHostsFile = join(stateDir, 'known_hosts');

  let lastErr = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    await writeFile(knownHostsFile, `[127.0.0.1]:${port} ${hostKeyPub.split(' ').slice(0, 2).join(' ')}\n`);
    const append = [
      'console=ttyS0', 'quiet', 'rdinit=/sbin/init', 'panic=-1', 'mitigations=off', 'no_timer_check',
      'random.trust_cpu=on', '8250.nr_uarts=1', `cto.max=${bootMax}`, `cto.hashsize=${hashsize}`,
      ...(opts.flowOffload ? ['cto.offload=1'] : []),
    ].join(' ');
    const args = [
      '-name', `cto-vm-${name}`,
      '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot',
      '-accel', cpus > 1 ? 'tcg,thread=multi' : 'tcg',
      '-machine', 'pc',
      '-cpu', 'max',
      '-smp', String(cpus),
      '-m', String(memoryMb),
      '-kernel', kernel.bootImage,
      '-initrd', initrd,
      '-append', append,
      '-serial', `file:${consoleLog}`,
      '-netdev', `user,id=n0,net=198.18.255.0/24,host=${VM_ADDRESSES.managementSource},dhcpstart=${VM_ADDRESSES.gatewayMgmt},restrict=on,hostfwd=tcp:127.0.0.1:${port}-:22`,
      '-device', 'virtio-net-pci,netdev=n0,romfile=',
      '-device', 'virtio-rng-pci',
    ];
    const qemuLog = join(stateDir, 'qemu.log');
    const fd = openSync(qemuLog, 'w');
    const t0 = Date.now();
    const child = spawn(QEMU, args, { detached: true, stdio: ['ignore', fd, fd] });
    closeSync(fd);
    child.unref();
    const qemuPid = child.pid ?? 0;
    const ownerPid = opts.detached ? 0 : process.pid;
    const watchdogPid = startWatchdog(qemuPid, ownerPid, ttl);
    const state: VmState = {
      name, stateDir, qemuPid, watchdogPid, port,
      kernel: { kver: kernel.kver, pkg: kernel.pkg },
      initramfs: { path: base.path, sizeBytes: base.sizeBytes },
      bootMax, hashsize, memoryMb, cpus, flowOffload: opts.flowOffload === true,
      identityFile, knownHostsFile, hostKey, controlPath, consoleLog,
      startedAt: new Date(t0).toISOString(), bootMs: 0, ownerPid,
    };
    await writeState(state);
    const vm = new Vm(state);
    if (!opts.detached) vm.armExitHook();

    try {
      state.bootMs = await waitForBoot(state, opts.bootTimeoutMs ?? 120_000);
      log(`VM ${name}: booted in ${(state.bootMs / 1000).toFixed(1)} s (kernel ${kernel.kver}), ssh 127.0.0.1:${port}`);
      await vm.openMaster(Date.now() + 60_000);
      await writeState(state);
      return vm;
    } catch (err) {
      lastErr = (err as Error).message;
      const qlog = existsSync(qemuLog) ? readFileSync(qemuLog, 'utf8') : '';
      const portTaken = /host forwarding|Address already in use/i.test(qlog);
      if (portTaken && attempt < 2) {
        // Keep keys and image; only QEMU goes.
        if (isOurQemu(qemuPid, stateDir)) await killPid(qemuPid);
        await killPid(watchdogPid, 500);
        vm.disarmExitHook();
        log(`VM ${name}: port ${port} was taken, retrying`);
        continue;
      }
      if (process.env.CTO_VM_KEEP_FAILED) {
        // Keep the state folder (console.log, qemu.log) for a post-mortem; QEMU still goes.
        vm.disarmExitHook();
        if (isOurQemu(qemuPid, stateDir)) await killPid(qemuPid);
        await killPid(watchdogPid, 500);
      } else {
        await vm.down().catch(() => {});
      }
      throw err;
    }
  }
  throw new Error(`VM ${name} did not start: ${lastErr}`);
}

async function waitForBoot(state: VmState, timeoutMs: number): Promise<number> {
  const t0 = Date.parse(state.startedAt);
  const deadline = t0 + timeoutMs;
  while (Date.now() < deadline) {
    const text = existsSync(state.consoleLog) ? readFileSync(state.consoleLog, 'utf8') : '';
    if (text.includes('CTO-VM-READY')) return Date.now() - t0;
    const failed = /CTO-VM-FAILED.*|Kernel panic.*/.exec(text);
    if (failed) throw new Error(`VM ${state.name} failed to boot: ${failed[0]}\n${text.slice(-3000)}`);
    if (!pidAlive(state.qemuPid)) {
      const qlog = readFileSync(join(state.stateDir, 'qemu.log'), 'utf8');
      throw new Error(`QEMU exited during boot: ${qlog.trim()}\n${text.slice(-3000)}`);
    }
    await sleep(100);
  }
  const text = existsSync(state.consoleLog) ? readFileSync(state.consoleLog, 'utf8') : '';
  throw new Error(`VM ${state.name} not ready after ${timeoutMs} ms; console:\n${text.slice(-3000)}`);
}

async function writeState(state: VmState): Promise<void> {
  const file = join(state.stateDir, 'state.json');
  await writeFile(`${file}.tmp`, `${JSON.stringify(state, null, 2)}\n`);
  await rename(`${file}.tmp`, file);
}

async function readState(name: string): Promise<VmState | null> {
  try {
    return JSON.parse(await readFile(join(stateDirOf(name), 'state.json'), 'utf8')) as VmState;
  } catch {
    return null;
  }
}

/** A running VM started by this or another process (e.g. `lab vm up`). */
export async function vmAttach(name: string): Promise<VmGateway> {
  const state = await readState(name);
  if (!state) throw new Error(`no VM named ${name} (no ${join(stateDirOf(name), 'state.json')})`);
  if (!isOurQemu(state.qemuPid, state.stateDir)) throw new Error(`VM ${name} is not running (QEMU ${state.qemuPid} is gone)`);
  return new Vm(state);
}

/** Stops a VM by name (from any process). Returns false when there was nothing to stop. */
export async function vmDown(name: string): Promise<boolean> {
  const state = await readState(name);
  if (!state) {
    const dir = stateDirOf(name);
    if (existsSync(dir)) await rm(dir, { recursive: true, force: true });
    return false;
  }
  const running = isOurQemu(state.qemuPid, state.stateDir);
  await stopVm(state);
  return running;
}

/**
 * Removes the state folders of VMs whose QEMU is gone (their owner died and the watchdog
 * killed them, or they reached their TTL). Folders without state.json are left alone for
 * 10 minutes (a VM may be booting in another process).
 */
async function pruneStale(): Promise<void> {
  const root = stateRoot();
  if (!existsSync(root)) return;
  for (const entry of await readdir(root)) {
    const dir = join(root, entry);
    const s = await readState(entry);
    if (s) {
      if (!isOurQemu(s.qemuPid, s.stateDir) && !pidAlive(s.watchdogPid)) await rm(dir, { recursive: true, force: true });
    } else {
      const { mtimeMs } = statSync(dir);
      if (Date.now() - mtimeMs > 10 * 60_000) await rm(dir, { recursive: true, force: true });
    }
  }
}

/** VMs with a state folder, and whether their QEMU still runs. */
export async function vmList(): Promise<Array<VmState & { running: boolean }>> {
  const root = stateRoot();
  if (!existsSync(root)) return [];
  const out: Array<VmState & { running: boolean }> = [];
  for (const entry of await readdir(root)) {
    const s = await readState(entry);
    if (s) out.push({ ...s, running: isOurQemu(s.qemuPid, s.stateDir) });
  }
  return out;
}
