/**
 * Socket Mode without a gap when Slack refreshes the connection.
 *
 * Slack sends `disconnect` (reason `warning` or `refresh_requested`) some seconds before it
 * closes a connection, and keeps delivering on it until then. @slack/socket-mode 3.1 closes
 * its socket the moment that message arrives and opens the next one only after
 * `clientPingTimeout` (5 s): a slash command typed in between finds no connection and the
 * user sees `dispatch_failed`. Here the old connection stays open while a new one is
 * opened (apps.connections.open, then `hello`), its envelopes still in flight are acked
 * on it, and only then is it closed. Other disconnect reasons, and a connection that
 * drops, keep the client's own reconnect.
 *
 * Bolt's SocketModeReceiver builds its one client itself, so this is a Bolt `Receiver`
 * of its own; events go to `app.processEvent` exactly as Bolt's receiver sends them.
 */
import { AuthorizationError, type App, type Receiver, type ReceiverEvent } from '@slack/bolt';
import { SocketModeClient, type SocketModeOptions } from '@slack/socket-mode';
import type { WebClientOptions } from '@slack/web-api';
import { logger } from '../infra/logger.js';

const HANDOVER_REASONS = new Set(['warning', 'refresh_requested']);
/** How long a replaced connection waits for its in-flight acks before it is closed. */
const DRAIN_MS = 3000;

/** Slack's `disconnect` reason in a raw frame, or null for any other message. */
function handoverReason(data: string | ArrayBuffer): string | null {
  const text = typeof data === 'string' ? data : new TextDecoder().decode(data);
  if (!text.includes('"disconnect"')) return null;
  try {
    const msg = JSON.parse(text) as { type?: unknown; reason?: unknown };
    return msg.type === 'disconnect' && typeof msg.reason === 'string' && HANDOVER_REASONS.has(msg.reason) ? msg.reason : null;
  } catch {
    return null;
  }
}

/** A client that reports a refresh (`handover` event) instead of closing its socket at once. */
class HandoverClient extends SocketModeClient {
  protected override async onWebSocketMessage(data: string | ArrayBuffer, isBinary: boolean): Promise<void> {
    const reason = isBinary ? null : handoverReason(data);
    if (reason !== null) {
      this.emit('handover', reason);
      return;
    }
    await super.onWebSocketMessage(data, isBinary);
  }
}

interface SocketModeEventArgs {
  ack: (response?: Record<string, unknown>) => Promise<void>;
  body: Record<string, unknown>;
  retry_num?: number;
  retry_reason?: string;
}

interface Connection {
  client: HandoverClient;
  /** Envelopes received and not yet acked on this connection. */
  inFlight: number;
  drained: Array<() => void>;
}

export interface HandoverReceiverOptions {
  appToken: string;
  logLevel?: SocketModeOptions['logLevel'];
  /** For apps.connections.open (slackApiUrl, timeout, retries). */
  clientOptions?: WebClientOptions;
}

export class HandoverSocketModeReceiver implements Receiver {
  private app: App | null = null;
  private current: Connection | null = null;
  private readonly retired = new Set<Connection>();
  private replacing = false;
  private stopping = false;
  /** Refreshes handed over to a new connection (for logs and tests). */
  handovers = 0;

  constructor(private readonly options: HandoverReceiverOptions) {}

  init(app: App): void {
    this.app = app;
  }

  async start(): Promise<unknown> {
    this.stopping = false;
    this.current = await this.connect();
    return undefined;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const all = [...this.retired, ...(this.current ? [this.current] : [])];
    this.current = null;
    this.retired.clear();
    await Promise.all(all.map((c) => c.client.disconnect()));
  }

  private async connect(): Promise<Connection> {
    // The client fills in retryConfig and fetch on the options it is given: a copy each time.
    const client = new HandoverClient({
      appToken: this.options.appToken,
      ...(this.options.logLevel !== undefined ? { logLevel: this.options.logLevel } : {}),
      clientOptions: { ...this.options.clientOptions },
    });
    const conn: Connection = { client, inFlight: 0, drained: [] };
    client.on('slack_event', (args: SocketModeEventArgs) => void this.dispatch(conn, args));
    client.on('handover', (reason: string) => void this.handover(conn, reason));
    await client.start();
    return conn;
  }

  /** Slack asked `old` to go: open the next connection first, then let `old` finish its acks and close. */
  private async handover(old: Connection, reason: string): Promise<void> {
    if (this.stopping || this.replacing || old !== this.current) return;
    this.replacing = true;
    logger.info({ reason }, 'Slack refreshes the Socket Mode connection: opening the next one before closing this one');
    try {
      const next = await this.connect();
      if (this.stopping) {
        await next.client.disconnect();
        return;
      }
      this.current = next;
      this.handovers += 1;
      this.retired.add(old);
      await this.drain(old);
      await old.client.disconnect();
      this.retired.delete(old);
    } catch (err) {
      // The old client still reconnects by itself when Slack closes its socket.
      logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'could not open the next Socket Mode connection');
    } finally {
      this.replacing = false;
    }
  }

  private drain(conn: Connection): Promise<void> {
    if (conn.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, DRAIN_MS);
      conn.drained.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private settle(conn: Connection): void {
    conn.inFlight -= 1;
    if (conn.inFlight > 0) return;
    for (const done of conn.drained.splice(0)) done();
  }

  private async dispatch(conn: Connection, args: SocketModeEventArgs): Promise<void> {
    conn.inFlight += 1;
    let settled = false;
    const settleOnce = (): void => {
      if (settled) return;
      settled = true;
      this.settle(conn);
    };
    let acked = false;
    const event: ReceiverEvent = {
      body: args.body,
      ack: async (response?: Record<string, unknown>) => {
        if (acked) return;
        acked = true;
        try {
          await args.ack(response);
        } finally {
          settleOnce();
        }
      },
      ...(args.retry_num !== undefined ? { retryNum: args.retry_num } : {}),
      ...(args.retry_reason !== undefined ? { retryReason: args.retry_reason } : {}),
      customProperties: {},
    };
    try {
      if (!this.app) throw new Error('the receiver was started before Bolt initialised it');
      await this.app.processEvent(event);
    } catch (err) {
      logger.error({ err: err instanceof Error ? err.message : String(err), type: args.body['type'] }, 'a Socket Mode event failed');
      // As Bolt's default: an authorization failure is acked (Slack would only retry it).
      if (err instanceof AuthorizationError) await event.ack().catch(() => undefined);
    } finally {
      settleOnce();
    }
  }
}
