/**
 * Slack's side of Socket Mode, for the local Slack API server (docs.slack.dev "Socket
 * Mode" and "Using Socket Mode"; the client read is @slack/socket-mode 3.1 in node_modules):
 *
 *  - `apps.connections.open` with an app-level token (xapp-...) answers a single-use
 *    `ws://` URL on this server; a bot token gets `not_allowed_token_type`.
 *  - On connect the server sends `hello` (num_connections, debug_info, connection_info).
 *  - A user's slash command or button click becomes an envelope
 *    `{ envelope_id, type: 'slash_commands' | 'interactive', accepts_response_payload, payload }`
 *    sent to ONE open connection (one without a pending disconnect first). With no open
 *    connection the user gets `dispatch_failed` at once, as Slack shows for an app that
 *    is not connected: that command is lost.
 *  - The app acks with `{ envelope_id, payload? }` on the connection; an ack more than
 *    3 s after the user's submit is late (Slack has shown the user an error by then), none
 *    at all is missing. A slash command ack's payload (text/blocks) is shown to the user as
 *    an ephemeral message, validated like every other message.
 *  - `disconnect` (`warning`, `refresh_requested`): the server stops choosing that
 *    connection for new envelopes and closes it after a grace period (Slack: about 10 s
 *    for `warning`); acks still arrive on it until then.
 *  - The server pings every connection (the client gives up after 30 s without a ping).
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { ServerWebSocket } from './websocket.js';

export const SOCKET_MODE_ACK_DEADLINE_MS = 3000;

export type DisconnectReason = 'warning' | 'refresh_requested';

export interface SocketConnectionRecord {
  id: string;
  openedAt: number;
  helloAt: number | null;
  disconnect: { reason: DisconnectReason; at: number } | null;
  closedAt: number | null;
  /** Envelopes sent on this connection. */
  delivered: number;
}

export type EnvelopeOutcome = 'pending' | 'acked' | 'late' | 'missing' | 'dispatch_failed';

export interface EnvelopeRecord {
  envelopeId: string;
  type: 'slash_commands' | 'interactive' | 'events_api';
  payload: Record<string, unknown>;
  /** When the user pressed enter / clicked. */
  submittedAt: number;
  connectionId: string | null;
  deliveredAt: number | null;
  ackAt: number | null;
  ackConnectionId: string | null;
  ackPayload: Record<string, unknown> | null;
  outcome: EnvelopeOutcome;
  /** Acks of an envelope after the first (each one recorded, none counts twice). */
  duplicateAcks: number;
}

export interface SocketModeServerOptions {
  /** Accepted app-level tokens. */
  appTokens: readonly string[];
  appId: string;
  /** ws:// base of the HTTP server (`ws://127.0.0.1:<port>`), read when a URL is handed out. */
  wsBase: () => string;
  /** Called with an accepted slash-command ack payload: Slack shows it to the user (ephemeral). */
  onAckResponse: (envelope: EnvelopeRecord, payload: Record<string, unknown>) => void;
  /** Server ping interval (ms). */
  pingEveryMs?: number;
}

interface LiveConnection {
  record: SocketConnectionRecord;
  ws: ServerWebSocket;
  closeTimer: NodeJS.Timeout | null;
}

type Waiter = { predicate: () => boolean; resolve: () => void };

export class SocketModeServer {
  private readonly tickets = new Set<string>();
  private readonly live = new Map<string, LiveConnection>();
  private readonly records: SocketConnectionRecord[] = [];
  private readonly envelopeList: EnvelopeRecord[] = [];
  private readonly byId = new Map<string, EnvelopeRecord>();
  private readonly waiters = new Set<Waiter>();
  private readonly pinger: NodeJS.Timeout;
  private counter = 0;
  /** Messages from the app that are not acks of a known envelope (JSON or not). */
  readonly strayMessages: string[] = [];

  constructor(private readonly opts: SocketModeServerOptions) {
    this.pinger = setInterval(() => {
      for (const c of this.live.values()) c.ws.ping();
    }, opts.pingEveryMs ?? 10_000);
    this.pinger.unref();
  }

  // ---- Web API ------------------------------------------------------------

  /** apps.connections.open: `{ ok, url }` for an app token. */
  open(token: string | null): { ok: true; url: string } | { ok: false; error: string } {
    if (token === null) return { ok: false, error: 'not_authed' };
    if (!token.startsWith('xapp-')) return { ok: false, error: 'not_allowed_token_type' };
    if (!this.opts.appTokens.includes(token)) return { ok: false, error: 'invalid_auth' };
    const ticket = randomBytes(12).toString('hex');
    this.tickets.add(ticket);
    return { ok: true, url: `${this.opts.wsBase()}/socket-mode/${ticket}` };
  }

  /** HTTP upgrade on /socket-mode/<ticket>: a single-use ticket from open(). */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, ticket: string): void {
    if (!this.tickets.delete(ticket)) {
      socket.end('HTTP/1.1 401 Unauthorized\r\nconnection: close\r\n\r\n');
      return;
    }
    const record: SocketConnectionRecord = { id: `conn-${++this.counter}`, openedAt: Date.now(), helloAt: null, disconnect: null, closedAt: null, delivered: 0 };
    const ws = ServerWebSocket.accept(req, socket, head, {
      onText: (text) => this.onMessage(record.id, text),
      onClose: () => this.onClosed(record.id),
    });
    if (!ws) return;
    this.records.push(record);
    this.live.set(record.id, { record, ws, closeTimer: null });
    ws.sendText(
      JSON.stringify({
        type: 'hello',
        num_connections: this.live.size,
        debug_info: { host: 'applink-local', build_number: 1, approximate_connection_time: 18060 },
        connection_info: { app_id: this.opts.appId },
      }),
    );
    record.helloAt = Date.now();
    this.notify();
  }

  // ---- what a user does ---------------------------------------------------

  /** A user runs a slash command: its form fields (test/support/slack-signing.ts slashCommandFields) as the payload. */
  slashCommand(fields: Record<string, string>): EnvelopeRecord {
    return this.dispatch('slash_commands', fields, true);
  }

  /** A user clicks a button: the block_actions payload (slack-signing.ts blockActionsPayload). */
  interaction(payload: Record<string, unknown>): EnvelopeRecord {
    return this.dispatch('interactive', payload, false);
  }

  /** An Events API delivery (e.g. file_shared): the `event_callback` body (slack-signing.ts buildEventBody, parsed) as the payload. */
  eventsApi(payload: Record<string, unknown>): EnvelopeRecord {
    return this.dispatch('events_api', payload, false);
  }

  /** Slack asks the app to reconnect: `disconnect` on `connectionId` (default: the newest open one), closed after `graceMs`. */
  disconnect(reason: DisconnectReason, opts: { connectionId?: string; graceMs?: number } = {}): SocketConnectionRecord {
    const target = opts.connectionId ? this.live.get(opts.connectionId) : [...this.live.values()].filter((c) => !c.record.disconnect).at(-1);
    if (!target) throw new Error('no open Socket Mode connection to disconnect');
    target.record.disconnect = { reason, at: Date.now() };
    target.ws.sendText(JSON.stringify({ type: 'disconnect', reason, debug_info: { host: 'applink-local' } }));
    target.closeTimer = setTimeout(() => target.ws.close(1000), opts.graceMs ?? 10_000);
    target.closeTimer.unref();
    this.notify();
    return target.record;
  }

  /** Drop every connection at once, without a close frame. */
  terminateAll(): void {
    for (const c of this.live.values()) c.ws.terminate();
  }

  // ---- queries ------------------------------------------------------------

  connections(): SocketConnectionRecord[] {
    return [...this.records];
  }

  /** Open connections that have had `hello` and no `disconnect`. */
  openConnections(): SocketConnectionRecord[] {
    return [...this.live.values()].map((c) => c.record).filter((r) => r.helloAt !== null && r.disconnect === null);
  }

  envelopes(): EnvelopeRecord[] {
    return [...this.envelopeList];
  }

  /** Resolves when `predicate` holds (checked after every connection or ack change). */
  waitUntil(what: string, predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
    if (predicate()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        predicate,
        resolve: () => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          resolve();
        },
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; connections: ${JSON.stringify(this.records)}`));
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }

  /** Envelopes whose ack arrived in time / at all. */
  settled(): boolean {
    return this.envelopeList.every((e) => e.outcome !== 'pending');
  }

  close(): void {
    clearInterval(this.pinger);
    for (const c of this.live.values()) {
      if (c.closeTimer) clearTimeout(c.closeTimer);
      c.ws.terminate();
    }
    this.waiters.clear();
  }

  // ---- internals ----------------------------------------------------------

  private dispatch(type: EnvelopeRecord['type'], payload: Record<string, unknown>, acceptsResponse: boolean): EnvelopeRecord {
    const envelope: EnvelopeRecord = {
      envelopeId: randomBytes(16).toString('hex'),
      type,
      payload,
      submittedAt: Date.now(),
      connectionId: null,
      deliveredAt: null,
      ackAt: null,
      ackConnectionId: null,
      ackPayload: null,
      outcome: 'pending',
      duplicateAcks: 0,
    };
    this.envelopeList.push(envelope);
    this.byId.set(envelope.envelopeId, envelope);
    const candidates = [...this.live.values()].filter((c) => c.record.helloAt !== null && c.ws.isOpen);
    // Connections without a pending disconnect first; one that is going away only when nothing else is open.
    const target = candidates.find((c) => c.record.disconnect === null) ?? candidates[0];
    if (!target) {
      envelope.outcome = 'dispatch_failed';
      this.notify();
      return envelope;
    }
    target.ws.sendText(JSON.stringify({ envelope_id: envelope.envelopeId, type, accepts_response_payload: acceptsResponse, payload }));
    envelope.connectionId = target.record.id;
    envelope.deliveredAt = Date.now();
    target.record.delivered += 1;
    setTimeout(() => {
      if (envelope.outcome === 'pending') {
        envelope.outcome = 'missing';
        this.notify();
      }
    }, SOCKET_MODE_ACK_DEADLINE_MS).unref();
    return envelope;
  }

  private onMessage(connectionId: string, text: string): void {
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch {
      this.strayMessages.push(text);
      return;
    }
    const m = message as { envelope_id?: unknown; payload?: unknown };
    const envelope = typeof m.envelope_id === 'string' ? this.byId.get(m.envelope_id) : undefined;
    const payloadOk = m.payload === undefined || (typeof m.payload === 'object' && m.payload !== null && !Array.isArray(m.payload));
    if (!envelope || !payloadOk) {
      this.strayMessages.push(text);
      return;
    }
    if (envelope.ackAt !== null) {
      envelope.duplicateAcks += 1;
      return;
    }
    envelope.ackAt = Date.now();
    envelope.ackConnectionId = connectionId;
    envelope.ackPayload = (m.payload as Record<string, unknown> | undefined) ?? null;
    envelope.outcome = envelope.ackAt - envelope.submittedAt <= SOCKET_MODE_ACK_DEADLINE_MS ? 'acked' : 'late';
    const payload = envelope.ackPayload;
    if (envelope.outcome === 'acked' && envelope.type === 'slash_commands' && payload && (payload['text'] !== undefined || payload['blocks'] !== undefined)) {
      this.opts.onAckResponse(envelope, payload);
    }
    this.notify();
  }

  private onClosed(connectionId: string): void {
    const c = this.live.get(connectionId);
    if (!c) return;
    if (c.closeTimer) clearTimeout(c.closeTimer);
    c.record.closedAt = Date.now();
    this.live.delete(connectionId);
    this.notify();
  }

  private notify(): void {
    for (const w of [...this.waiters]) if (w.predicate()) w.resolve();
  }
}
