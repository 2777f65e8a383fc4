/**
 * The contract for getting a session to a gateway: a fresh connection, or a warm one
 * from the pool (session-pool.ts). The check and the apply ask for one; the pool and
 * `freshSessions` supply it.
 */
import type { GatewayConfig } from '../config/inventory.js';
import type { GatewaySession } from './ssh-session.js';

/** A session handed out for one job, and whether to close it afterwards. */
export interface SessionLease {
  session: GatewaySession;
  /** True when the lease came from a warm pool (the session stays open afterwards). */
  reused: boolean;
  release(): void;
}

export type SessionProvider = (gatewayName: string, config: GatewayConfig) => Promise<SessionLease>;
