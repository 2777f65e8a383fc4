/**
 * Sessions for checks and applies.
 *
 * A gateway whose table is full of assured entries drops new SSH connections, while an
 * already open session keeps working (design.md). So the pool keeps ONE warm,
 * health-checked session per watched gateway, re-established with backoff, and checks
 * and applies reuse it. Unwatched gateways get a fresh connection per lease.
 */
import type { GatewayConfig } from '../config/inventory.js';
import type { SessionLease, SessionProvider } from './session-provider.js';
import { commands } from './commands.js';
import { GatewayError } from './errors.js';
import { GatewaySession, type SessionOptions } from './ssh-session.js';

export interface PoolOptions extends SessionOptions {
  /** How often a warm session is probed. */
  healthIntervalMs?: number;
  /** Backoff for re-connecting a watched gateway: initial and maximum delay. */
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  onEvent?: (event: PoolEvent) => void;
}

export type PoolEvent =
  | { type: 'connected'; gateway: string }
  | { type: 'lost'; gateway: string; reason: string }
  | { type: 'reconnect-failed'; gateway: string; attempt: number; nextInMs: number; reason: string };

interface Watched {
  config: GatewayConfig;
  session: GatewaySession | null;
  /** The one connect in flight for this gateway (single flight: never two at once). */
  connecting: Promise<GatewaySession> | null;
  attempt: number;
  timer: NodeJS.Timeout | null;
  lastError: string | null;
}

const HEALTH_PROBE = commands.script('health probe', 'echo ok');

/** A provider that opens a new connection for every lease and closes it afterwards. */
export function freshSessions(options: SessionOptions = {}): SessionProvider {
  return async (name, config) => {
    const session = await GatewaySession.connect(name, config, options);
    return { session, reused: false, release: () => session.close() };
  };
}

export class SessionPool {
  private readonly watched = new Map<string, Watched>();
  private closed = false;
  private readonly opts: Required<Omit<PoolOptions, 'onEvent'>> & Pick<PoolOptions, 'onEvent'>;

  constructor(options: PoolOptions = {}) {
    this.opts = {
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
      commandTimeoutMs: options.commandTimeoutMs ?? 60_000,
      keepaliveIntervalMs: options.keepaliveIntervalMs ?? 5_000,
      healthIntervalMs: options.healthIntervalMs ?? 15_000,
      backoffInitialMs: options.backoffInitialMs ?? 1_000,
      backoffMaxMs: options.backoffMaxMs ?? 60_000,
      onEvent: options.onEvent,
    };
  }

  /** Keep a warm session to this gateway from now on. Resolves once the first connect settles. */
  async watch(name: string, config: GatewayConfig): Promise<void> {
    if (this.watched.has(name)) return;
    const entry: Watched = { config, session: null, connecting: null, attempt: 0, timer: null, lastError: null };
    this.watched.set(name, entry);
    try {
      await this.ensure(name, entry);
    } catch {
      // ensure() already scheduled a retry with backoff.
    }
  }

  /** Whether a warm session is open right now. */
  isWarm(name: string): boolean {
    const entry = this.watched.get(name);
    return Boolean(entry?.session && !entry.session.closed);
  }

  unwatch(name: string): void {
    const entry = this.watched.get(name);
    if (!entry) return;
    this.watched.delete(name);
    if (entry.timer) clearTimeout(entry.timer);
    entry.session?.close();
  }

  /** The SessionProvider: the warm session when watched, else a fresh connection. */
  readonly provider: SessionProvider = async (name, config): Promise<SessionLease> => {
    const entry = this.watched.get(name);
    if (!entry) return freshSessions(this.opts)(name, config);
    const session = await this.ensure(name, entry);
    return { session, reused: true, release: () => undefined };
  };

  close(): void {
    this.closed = true;
    for (const name of [...this.watched.keys()]) this.unwatch(name);
  }

  private ensure(name: string, entry: Watched): Promise<GatewaySession> {
    if (entry.session && !entry.session.closed) return Promise.resolve(entry.session);
    if (entry.connecting) return entry.connecting;
    entry.connecting = GatewaySession.connect(name, entry.config, this.opts)
      .then((session) => {
        entry.session = session;
        entry.attempt = 0;
        entry.lastError = null;
        this.opts.onEvent?.({ type: 'connected', gateway: name });
        session.onClose(() => {
          if (entry.session !== session) return;
          entry.session = null;
          this.opts.onEvent?.({ type: 'lost', gateway: name, reason: 'connection closed' });
          this.schedule(name, entry, this.opts.backoffInitialMs);
        });
        this.schedule(name, entry, this.opts.healthIntervalMs);
        return session;
      })
      .catch((err: unknown) => {
        entry.attempt += 1;
        entry.lastError = (err as Error).message;
        const delay = Math.min(this.opts.backoffMaxMs, this.opts.backoffInitialMs * 2 ** (entry.attempt - 1));
        this.opts.onEvent?.({ type: 'reconnect-failed', gateway: name, attempt: entry.attempt, nextInMs: delay, reason: entry.lastError });
        this.schedule(name, entry, delay);
        throw err instanceof GatewayError ? err : new GatewayError('unreachable', String(err));
      })
      .finally(() => {
        entry.connecting = null;
      });
    return entry.connecting;
  }

  /** One timer per gateway: a health probe when connected, a reconnect when not. */
  private schedule(name: string, entry: Watched, delayMs: number): void {
    if (this.closed || this.watched.get(name) !== entry) return;
    if (entry.timer) clearTimeout(entry.timer);
    entry.timer = setTimeout(() => void this.tick(name, entry), delayMs);
    entry.timer.unref();
  }

  private async tick(name: string, entry: Watched): Promise<void> {
    entry.timer = null;
    if (this.closed || this.watched.get(name) !== entry) return;
    const session = entry.session;
    if (!session || session.closed) {
      await this.ensure(name, entry).catch(() => undefined);
      return;
    }
    try {
      await session.exec(HEALTH_PROBE, { timeoutMs: Math.max(2_000, this.opts.keepaliveIntervalMs) });
      this.schedule(name, entry, this.opts.healthIntervalMs);
    } catch (err) {
      this.opts.onEvent?.({ type: 'lost', gateway: name, reason: `health probe failed: ${(err as Error).message}` });
      entry.session = null;
      session.close();
      await this.ensure(name, entry).catch(() => undefined);
    }
  }
}
