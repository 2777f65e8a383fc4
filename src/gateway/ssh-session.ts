/**
 * One SSH connection to one gateway (ssh2), with a pinned host key,
 * connect / command timeouts and keepalive. Only `GatewayCommand`s (built from
 * fixed templates in commands.ts) can be run: no string from a user reaches a shell.
 */
import { readFile } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import ssh2 from 'ssh2';
import type { ClientChannel, ConnectConfig } from 'ssh2';
import type { GatewayConfig } from '../config/inventory.js';
import type { GatewayCommand } from './commands.js';
import { CommandFailedError, GatewayError, OutputTooLargeError, SATURATED_CONNECT_HINT } from './errors.js';
import { sameFingerprint, sshFingerprint } from './host-key.js';

const { Client } = ssh2;
type SshClient = InstanceType<typeof Client>;

export interface SessionOptions {
  /** How long the TCP connect + SSH handshake may take. */
  connectTimeoutMs?: number;
  /** Default limit for one command. */
  commandTimeoutMs?: number;
  keepaliveIntervalMs?: number;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  code: number | null;
  durationMs: number;
}

export interface StreamedExec {
  /** The command's stdout, to be consumed as a stream (never buffered whole). */
  stdout: Readable;
  /** Resolves when the command ends, with its exit code and (bounded) stderr. */
  done: Promise<{ code: number | null; stderr: string; durationMs: number }>;
  /** Stop the command (KILL, then close the channel): for a reader that has seen enough. */
  abort(): void;
}

const DEFAULTS = { connectTimeoutMs: 10_000, commandTimeoutMs: 60_000, keepaliveIntervalMs: 10_000 };
const STDERR_LIMIT = 64 * 1024;

export class GatewaySession {
  private closedFlag = false;
  private readonly closeListeners = new Set<() => void>();

  private constructor(
    readonly gatewayName: string,
    readonly config: GatewayConfig,
    private readonly client: SshClient,
    private readonly jump: SshClient | null,
    private readonly options: Required<SessionOptions>,
  ) {
    const markClosed = (): void => {
      if (this.closedFlag) return;
      this.closedFlag = true;
      // The gateway's connection is gone: its jump connection has nothing left to carry.
      this.jump?.end();
      for (const listener of this.closeListeners) listener();
    };
    client.on('close', markClosed);
    client.on('end', markClosed);
    // After 'ready', errors (e.g. keepalive timeout) close the session instead of crashing the process.
    client.on('error', markClosed);
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  onClose(listener: () => void): void {
    this.closeListeners.add(listener);
  }

  static async connect(gatewayName: string, config: GatewayConfig, options: SessionOptions = {}): Promise<GatewaySession> {
    const opts = {
      ...DEFAULTS,
      ...options,
      ...(config.connectTimeoutMs !== undefined ? { connectTimeoutMs: config.connectTimeoutMs } : {}),
      ...(config.commandTimeoutMs !== undefined ? { commandTimeoutMs: config.commandTimeoutMs } : {}),
    };
    // The gateway itself: directly, or over a channel forwarded by its jump host.
    const openGateway = async (sock?: ClientChannel): Promise<SshClient> =>
      openClient(gatewayName, {
        host: config.host,
        port: config.port,
        username: config.user,
        privateKey: await readKey(config.identityFile, gatewayName),
        expectedHostKey: config.hostKey,
        opts,
        ...(sock ? { sock } : {}),
      });
    if (!config.jumpHost) return new GatewaySession(gatewayName, config, await openGateway(), null, opts);
    const jh = config.jumpHost;
    const jump = await openClient(`${gatewayName} (jump host ${jh.host})`, {
      host: jh.host,
      port: jh.port,
      username: jh.user,
      privateKey: await readKey(jh.identityFile, `${gatewayName}'s jump host`),
      expectedHostKey: jh.hostKey,
      opts,
    });
    // From here every failure closes the jump connection: a failing gateway must not leak one per try.
    let sock: ClientChannel | null = null;
    try {
      sock = await forwardThrough(jump, jh.host, config.host, config.port, opts.connectTimeoutMs);
      return new GatewaySession(gatewayName, config, await openGateway(sock), jump, opts);
    } catch (err) {
      sock?.destroy();
      jump.end();
      throw err;
    }
  }

  /**
   * Run a command and collect its output, at most `command.maxOutputBytes` of it (or
   * `opts.maxOutputBytes`): past the cap the command is ended and OutputTooLargeError names
   * it and the cap. Large outputs (the table dump, the idle-entry listing) use `stream`.
   */
  async exec(
    command: GatewayCommand,
    opts: { timeoutMs?: number; allowFailure?: boolean; stdin?: string; maxOutputBytes?: number } = {},
  ): Promise<ExecResult> {
    const started = Date.now();
    const limit = opts.maxOutputBytes ?? command.maxOutputBytes;
    const { stdout, done, abort } = await this.stream(command, opts);
    const chunks: Buffer[] = [];
    let bytes = 0;
    const overflow = new Promise<never>((_, reject) => {
      const onData = (chunk: Buffer): void => {
        bytes += chunk.length;
        if (bytes <= limit) {
          chunks.push(chunk);
          return;
        }
        stdout.off('data', onData);
        stdout.resume(); // whatever is still in flight is read and dropped
        chunks.length = 0;
        abort();
        reject(new OutputTooLargeError(command.label, this.gatewayName, limit));
      };
      stdout.on('data', onData);
    });
    const { code, stderr } = await Promise.race([done, overflow]);
    const result = { stdout: Buffer.concat(chunks).toString('utf8'), stderr, code, durationMs: Date.now() - started };
    if (code !== 0 && !opts.allowFailure) throw new CommandFailedError(command.label, code, stderr);
    return result;
  }

  /** Start a command and hand back its stdout as a stream. */
  async stream(command: GatewayCommand, opts: { timeoutMs?: number; stdin?: string } = {}): Promise<StreamedExec> {
    if (this.closedFlag) throw new GatewayError('unreachable', `SSH session to ${this.gatewayName} is closed`);
    const line = this.lineFor(command);
    const started = Date.now();
    const channel = await new Promise<ClientChannel>((resolve, reject) => {
      this.client.exec(line, (err, ch) => (err ? reject(new GatewayError('unreachable', `cannot start "${command.label}" on ${this.gatewayName}: ${err.message}`)) : resolve(ch)));
    });
    if (opts.stdin !== undefined) channel.end(opts.stdin);
    else channel.end();
    const timeoutMs = opts.timeoutMs ?? this.options.commandTimeoutMs;
    const done = new Promise<{ code: number | null; stderr: string; durationMs: number }>((resolve, reject) => {
      let stderr = '';
      channel.stderr.on('data', (chunk: Buffer) => {
        if (stderr.length < STDERR_LIMIT) stderr += chunk.toString('utf8');
      });
      const timer = setTimeout(() => {
        channel.signal('KILL');
        channel.close();
        reject(new GatewayError('command-timeout', `"${command.label}" on ${this.gatewayName} did not finish within ${timeoutMs} ms`));
      }, timeoutMs);
      // 'close' fires only once stdout and stderr are consumed (design.md).
      channel.on('close', (code: number | null) => {
        clearTimeout(timer);
        resolve({ code: code ?? null, stderr, durationMs: Date.now() - started });
      });
    });
    // Keep an unobserved rejection from crashing the process; callers await `done`.
    done.catch(() => undefined);
    const abort = (): void => {
      channel.signal('KILL');
      channel.close();
    };
    return { stdout: channel, done, abort };
  }

  /**
   * What runs: the template's line, or for a privileged command on a `sudo: true` gateway the
   * same operation through the root-owned helper (`sudo -n <helper> <verb> <args>`), the
   * only sudo entry the shipped sudoers allows.
   */
  private lineFor(command: GatewayCommand): string {
    if (!this.config.sudo || !command.privileged) return command.shell;
    if (command.sudoShell === null) throw new GatewayError('config', `"${command.label}" needs a root session on ${this.gatewayName}; it has no sudo helper verb`);
    return command.sudoShell;
  }

  close(): void {
    this.client.end();
    this.jump?.end();
  }
}

/** The path stays in the error's message (logs, terminal); the channel reads only whose identity file it is. */
async function readKey(path: string, whose: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new GatewayError(
      'config',
      `cannot read SSH identity file ${path}: ${code ?? String(err)}`,
      undefined,
      `the identity file of ${whose} cannot be read${code && /^E[A-Z]+$/.test(code) ? ` (${code})` : ''}`,
    );
  }
}

/**
 * A TCP channel from the jump host to the gateway (`direct-tcpip`), within `timeoutMs`: a
 * jump host whose connect to a blackholed gateway hangs (the kernel's SYN retries last
 * about two minutes) is given up on, and a channel that opens after that is closed.
 */
function forwardThrough(jump: SshClient, jumpName: string, host: string, port: number, timeoutMs: number): Promise<ClientChannel> {
  return new Promise<ClientChannel>((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => {
      settled = true;
      reject(new GatewayError('timeout', `jump host ${jumpName} did not reach ${host}:${port} within ${timeoutMs} ms`, SATURATED_CONNECT_HINT));
    }, timeoutMs);
    const closed = (): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(new GatewayError('unreachable', `jump host ${jumpName} closed the connection before reaching ${host}:${port}`));
    };
    jump.once('close', closed);
    jump.forwardOut('127.0.0.1', 0, host, port, (err, stream) => {
      jump.off('close', closed);
      clearTimeout(timer);
      if (settled) {
        stream?.destroy();
        return;
      }
      settled = true;
      if (err) reject(new GatewayError('unreachable', `jump host ${jumpName} cannot reach ${host}:${port}: ${err.message}`));
      else resolve(stream);
    });
  });
}

interface OpenOptions {
  host: string;
  port: number;
  username: string;
  privateKey: Buffer;
  expectedHostKey: string;
  opts: Required<SessionOptions>;
  sock?: ConnectConfig['sock'];
}

function openClient(label: string, o: OpenOptions): Promise<SshClient> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    let presented: string | null = null;
    let settled = false;
    const fail = (err: GatewayError): void => {
      if (settled) return;
      settled = true;
      client.end();
      reject(err);
    };
    // Nagle off (as OpenSSH does): with it, each exec after the first waited ~40 ms for the
    // gateway's delayed ACK before its channel-open left this host (measured: 44 ms vs 2 ms
    // for `true`); the handshake's small packets pay it too. ssh2 leaves it on by default.
    client.once('connect', () => client.setNoDelay(true));
    client.once('ready', () => {
      if (settled) return;
      settled = true;
      resolve(client);
    });
    client.on('error', (err: Error & { level?: string; code?: string }) => {
      if (presented !== null && !sameFingerprint(presented, o.expectedHostKey)) {
        fail(
          new GatewayError(
            'host-key-mismatch',
            `host key of ${label} (${o.host}:${o.port}) is ${presented}, but the inventory pins ${o.expectedHostKey}; refusing to connect`,
            'If the gateway was rebuilt, verify the new key out of band (console: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub) and update hostKey in the inventory.',
          ),
        );
        return;
      }
      if (err.level === 'client-authentication') {
        fail(new GatewayError('auth', `${label}: SSH authentication as ${o.username} failed (key rejected)`));
        return;
      }
      if (err.level === 'client-timeout' || /Timed out while waiting for handshake/i.test(err.message)) {
        fail(new GatewayError('timeout', `${label}: no SSH handshake from ${o.host}:${o.port} within ${o.opts.connectTimeoutMs} ms`, SATURATED_CONNECT_HINT));
        return;
      }
      if (err.code === 'ECONNREFUSED') {
        fail(new GatewayError('unreachable', `${label}: connection refused by ${o.host}:${o.port} (is sshd running?)`));
        return;
      }
      if (err.code === 'EHOSTUNREACH' || err.code === 'ENETUNREACH' || err.code === 'ETIMEDOUT') {
        fail(new GatewayError('unreachable', `${label}: ${o.host}:${o.port} is unreachable (${err.code})`, SATURATED_CONNECT_HINT));
        return;
      }
      fail(new GatewayError('unreachable', `${label}: SSH connection to ${o.host}:${o.port} failed: ${err.message}`));
    });
    client.connect({
      host: o.host,
      port: o.port,
      username: o.username,
      privateKey: o.privateKey,
      sock: o.sock,
      readyTimeout: o.opts.connectTimeoutMs,
      keepaliveInterval: o.opts.keepaliveIntervalMs,
      keepaliveCountMax: 3,
      hostVerifier: (key: Buffer) => {
        presented = sshFingerprint(key);
        return sameFingerprint(presented, o.expectedHostKey);
      },
    });
  });
}
