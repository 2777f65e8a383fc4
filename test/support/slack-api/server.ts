/**
 * A local Slack Web API for tests: a real HTTP server on 127.0.0.1 that the bot's
 * `@slack/web-api` WebClient talks to through its `slackApiUrl` option, plus the
 * `response_url`s that Bolt's `respond()` posts to directly.
 *
 * What the real client sends (read from node_modules/@slack/web-api/dist/WebClient.js):
 *   POST <slackApiUrl><method>, `Authorization: Bearer <token>`,
 *   `Content-Type: application/x-www-form-urlencoded`, every non-scalar argument
 *   (blocks, attachments, files...) JSON-stringified into its form field; a Buffer
 *   argument switches the body to multipart/form-data (files.uploadV2's upload step).
 * Slack also accepts JSON bodies with the token in the header; both are handled here.
 *
 * File uploads follow Slack's current flow: files.getUploadURLExternal (filename, length > 0,
 * alt_txt at most 1,000 characters) -> POST of exactly `length` bytes to the upload_url ->
 * files.completeUploadExternal (known, uploaded, not yet completed file ids; thread_ts
 * only with channel_id); the shared file becomes a message (via 'files') in the channel
 * or thread. files.upload (retired) is not implemented.
 *
 * Files shared by users (`shareFile`: a message with the file in its channel, as Slack makes
 * one per share) are described by files.info (a bot token sees only files shared in a
 * conversation the bot is in; else file_not_found) with `url_private_download` on this server;
 * that download streams the content and refuses a request without an accepted bot token
 * (`Authorization: Bearer`), HTTP 403. Every download attempt is recorded (`downloads()`).
 *
 * It records every call, keeps messages by channel + ts (chat.update changes them),
 * and answers the way Slack does, errors included: HTTP 200 with
 * `{ ok: false, error, ... }` for API errors, Slack's `errors` / `response_metadata`
 * shape for invalid_blocks.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { formatIssueMessages, formatIssues, validateMessage, type BlockKitIssue } from './block-kit-validator.js';
import { SocketModeServer, type EnvelopeRecord } from './socket-mode.js';

export type SlackArgs = Record<string, unknown>;

/** A JSON object as Slack returns it. */
export interface SlackResponse {
  ok: boolean;
  error?: string;
  [key: string]: unknown;
}

export interface RecordedCall {
  seq: number;
  method: string;
  /** Arguments after decoding: form fields as strings, JSON fields (blocks, files...) parsed. */
  args: SlackArgs;
  contentType: 'form' | 'json' | 'multipart' | 'other';
  /** Token the call authenticated with (header or `token` field), null when none. */
  token: string | null;
  at: number;
  status: number;
  response: SlackResponse;
}

export interface MessageVersion {
  text: string;
  blocks: unknown[];
  at: number;
}

export interface StoredMessage {
  channel: string;
  ts: string;
  threadTs: string | null;
  /** Current text and blocks (after any chat.update / replace_original). */
  text: string;
  blocks: unknown[];
  attachments: unknown[];
  user: string;
  botId: string | null;
  files: UploadedFile[];
  /** Every version, oldest first; the last one is the current state. */
  versions: MessageVersion[];
  deleted: boolean;
  via: 'api' | 'response_url' | 'files';
  postedAt: number;
  /** Pinned to its channel (pins.add). */
  pinned: boolean;
}

export interface EphemeralMessage {
  channel: string;
  user: string;
  /** Slack's message_ts for ephemeral messages. */
  ts: string;
  threadTs: string | null;
  text: string;
  blocks: unknown[];
  via: 'api' | 'response_url';
  /** Replaced or deleted through its response_url. */
  replacedBy: EphemeralMessage | null;
  deleted: boolean;
  at: number;
}

export interface UploadedFile {
  id: string;
  filename: string;
  title: string | null;
  declaredLength: number;
  altText: string | null;
  snippetType: string | null;
  content: Buffer | null;
  completed: boolean;
  channel: string | null;
  threadTs: string | null;
}

/** A file a user shared in a channel (not uploaded by the bot). */
export interface SharedFileInput {
  name: string;
  channel: string;
  /** Who shared it. */
  user: string;
  /** The bytes, or a file on disk streamed at each download (large files). */
  content: Buffer | { path: string };
  mimetype?: string;
  /** The message text with the file. */
  comment?: string;
  /**
   * The size files.info reports, when it should differ from the content's (a file that grew, a
   * lying client): the download is then sent without content-length (chunked).
   */
  declaredSize?: number;
}

export interface SharedFileRecord {
  id: string;
  name: string;
  channel: string;
  user: string;
  size: number;
  mimetype: string;
  content: Buffer | { path: string };
  /** What files.info reports (default: size). */
  declaredSize: number;
  /** The share's message in the channel. */
  ts: string;
  created: number;
}

export interface DownloadRecord {
  fileId: string;
  /** The bearer token sent, null when none. */
  token: string | null;
  status: number;
  at: number;
}

export interface ResponseUrlContext {
  /** Channel of the interaction (slash command channel or the message's channel). */
  channel?: string;
  /** The user who triggered it; ephemeral responses go to them. */
  user?: string;
  /** For block_actions: the message the button was in (replace_original / delete_original act on it). */
  messageTs?: string;
  /** How many posts Slack allows on one response_url (5). */
  maxUses?: number;
}

export interface ResponseUrlPost {
  id: string;
  seq: number;
  at: number;
  body: SlackArgs;
  status: number;
  outcome: 'replaced' | 'deleted' | 'ephemeral' | 'in_channel' | 'rejected';
  error: string | null;
  errors: string[];
}

export interface ChannelInfo {
  id: string;
  name: string;
  /** Whether the bot is in the channel (else chat.postMessage answers not_in_channel). Default true. */
  botIsMember?: boolean;
  members?: string[];
}

export interface UserInfo {
  id: string;
  name: string;
  realName?: string;
  tz?: string;
  isBot?: boolean;
  deleted?: boolean;
}

export interface UsergroupInfo {
  id: string;
  handle: string;
  users: string[];
  disabled?: boolean;
}

export interface SlackApiServerOptions {
  /** Accepted bot tokens. Default ['xoxb-test-token']. */
  tokens?: string[];
  /** Accepted app-level tokens (Socket Mode's apps.connections.open). Default ['xapp-1-A0APP0001-test']. */
  appTokens?: string[];
  team?: { id: string; name: string; domain: string };
  bot?: { userId: string; botId: string; name: string; appId: string };
  channels?: ChannelInfo[];
  users?: UserInfo[];
  usergroups?: UsergroupInfo[];
}

/** A failure to inject on the next call(s) of a method. */
export interface InjectedFailure {
  /** Slack error code (HTTP 200, `{ ok: false, error }`). */
  error?: string;
  /** HTTP status instead (e.g. 429 with retryAfter, 500). */
  status?: number;
  /** Seconds, sent as Retry-After (with status 429). */
  retryAfter?: number;
  /** Extra fields merged into the error body. */
  extra?: Record<string, unknown>;
  /** How many calls fail (default 1). */
  times?: number;
}

type Waiter<T> = { predicate: (item: T) => boolean; resolve: (item: T) => void };

/** Documented limits of the upload flow (files.getUploadURLExternal: alt_txt_too_large). No title limit is documented. */
export const FILE_LIMITS = { altText: 1000 } as const;

const JSON_FIELDS = new Set(['blocks', 'attachments', 'files', 'metadata', 'unfurls', 'user_auth_blocks']);
const MAX_BODY_BYTES = 64 * 1024 * 1024;

class ApiError extends Error {
  constructor(
    readonly code: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(code);
  }
}

function invalidArguments(pointer: string, message: string): ApiError {
  return new ApiError('invalid_arguments', { response_metadata: { messages: [`[ERROR] ${message} [json-pointer:${pointer}]`] } });
}

function blocksError(code: string, issues: BlockKitIssue[]): ApiError {
  if (issues.length === 0) return new ApiError(code);
  return new ApiError(code, { errors: formatIssues(issues), response_metadata: { messages: formatIssueMessages(issues) } });
}

function str(args: SlackArgs, key: string): string | undefined {
  const v = args[key];
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return undefined;
}

function truthy(v: unknown): boolean {
  return v === true || v === 'true' || v === '1' || v === 1;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += buf.length;
    if (size > MAX_BODY_BYTES) throw new Error('request body too large');
    chunks.push(buf);
  }
  return Buffer.concat(chunks);
}

interface ParsedBody {
  args: SlackArgs;
  contentType: RecordedCall['contentType'];
  blocksFormatError: boolean;
}

async function parseBody(req: IncomingMessage, raw: Buffer): Promise<ParsedBody> {
  const ct = (req.headers['content-type'] ?? '').toLowerCase();
  let args: SlackArgs = {};
  let contentType: RecordedCall['contentType'] = 'other';
  if (ct.startsWith('application/x-www-form-urlencoded')) {
    contentType = 'form';
    for (const [k, v] of new URLSearchParams(raw.toString('utf8'))) args[k] = v;
  } else if (ct.startsWith('application/json')) {
    contentType = 'json';
    const text = raw.toString('utf8');
    if (text.trim() !== '') {
      const parsed: unknown = JSON.parse(text);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new ApiError('invalid_json');
      args = { ...(parsed as SlackArgs) };
    }
  } else if (ct.startsWith('multipart/form-data')) {
    contentType = 'multipart';
    const form = await new Response(raw, { headers: { 'content-type': ct } }).formData();
    for (const [k, v] of form.entries()) {
      args[k] = typeof v === 'string' ? v : Buffer.from(await v.arrayBuffer());
    }
  } else if (raw.length > 0) {
    args = { body: raw };
  }
  let blocksFormatError = false;
  for (const key of JSON_FIELDS) {
    const v = args[key];
    if (typeof v !== 'string') continue;
    if (v.trim() === '') {
      delete args[key];
      continue;
    }
    try {
      args[key] = JSON.parse(v) as unknown;
    } catch {
      if (key === 'blocks') blocksFormatError = true;
    }
  }
  return { args, contentType, blocksFormatError };
}

export class SlackApiServer {
  readonly tokens: readonly string[];
  readonly appTokens: readonly string[];
  /** Slack's side of Socket Mode (socket-mode.ts): connections, envelopes, acks, disconnects. */
  readonly socketMode: SocketModeServer;
  readonly team: { id: string; name: string; domain: string };
  readonly bot: { userId: string; botId: string; name: string; appId: string };

  private readonly server: Server;
  private port_ = 0;
  private seq = 0;
  private tsCounter = 0;
  private fileCounter = 0;
  private readonly recorded: RecordedCall[] = [];
  private readonly callWaiters = new Set<Waiter<RecordedCall>>();
  private readonly responseWaiters = new Set<Waiter<ResponseUrlPost>>();
  private readonly store = new Map<string, StoredMessage>();
  private readonly ephemeralStore: EphemeralMessage[] = [];
  private readonly responsePosts: ResponseUrlPost[] = [];
  private readonly responseContexts = new Map<string, ResponseUrlContext & { uses: number; lastEphemeral: EphemeralMessage | null }>();
  private readonly failures = new Map<string, InjectedFailure[]>();
  private readonly rateLimits = new Map<string, { until: number; retryAfter: number }>();
  private readonly channels = new Map<string, ChannelInfo>();
  private readonly users = new Map<string, UserInfo>();
  private readonly usergroups = new Map<string, UsergroupInfo>();
  private readonly files = new Map<string, UploadedFile>();
  private readonly sharedFiles = new Map<string, SharedFileRecord>();
  private readonly downloadLog: DownloadRecord[] = [];

  private constructor(opts: SlackApiServerOptions) {
    this.tokens = opts.tokens ?? ['xoxb-test-token'];
    this.appTokens = opts.appTokens ?? ['xapp-1-A0APP0001-test'];
    this.team = opts.team ?? { id: 'T0TEST001', name: 'Conntrack Test', domain: 'conntrack-test' };
    this.bot = opts.bot ?? { userId: 'U0BOT0001', botId: 'B0BOT0001', name: 'conntrack-ops', appId: 'A0APP0001' };
    for (const ch of opts.channels ?? [{ id: 'C0OPS0001', name: 'ops' }]) this.addChannel(ch);
    for (const u of opts.users ?? []) this.addUser(u);
    this.addUser({ id: this.bot.userId, name: this.bot.name, isBot: true });
    for (const g of opts.usergroups ?? []) this.addUsergroup(g);
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(err instanceof Error ? err.message : String(err));
        }
      });
    });
    this.socketMode = new SocketModeServer({
      appTokens: this.appTokens,
      appId: this.bot.appId,
      wsBase: () => `ws://127.0.0.1:${this.port_}`,
      onAckResponse: (envelope, payload) => this.ackResponse(envelope, payload),
    });
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const path = new URL(req.url ?? '/', this.baseUrl).pathname;
      if (path.startsWith('/socket-mode/')) return this.socketMode.upgrade(req, socket, head, decodeURIComponent(path.slice(13)));
      socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\n\r\n');
    });
  }

  /** A slash command's ack payload is shown to its user as an ephemeral message, when Slack would accept it. */
  private ackResponse(envelope: EnvelopeRecord, payload: Record<string, unknown>): void {
    const check = validateMessage({ text: payload['text'], blocks: payload['blocks'], attachments: payload['attachments'] });
    if (!check.ok) {
      this.socketMode.strayMessages.push(`rejected ack payload (${check.error}): ${JSON.stringify(payload).slice(0, 500)}`);
      return;
    }
    const channel = typeof envelope.payload['channel_id'] === 'string' ? envelope.payload['channel_id'] : '';
    const user = typeof envelope.payload['user_id'] === 'string' ? envelope.payload['user_id'] : '';
    this.addEphemeral({ channel, user }, str(payload, 'text') ?? '', this.blocksOf(payload));
  }

  /** Start on a random free port on 127.0.0.1. */
  static async start(opts: SlackApiServerOptions = {}): Promise<SlackApiServer> {
    const s = new SlackApiServer(opts);
    await new Promise<void>((resolve, reject) => {
      s.server.once('error', reject);
      s.server.listen(0, '127.0.0.1', () => {
        s.server.off('error', reject);
        resolve();
      });
    });
    s.port_ = (s.server.address() as AddressInfo).port;
    return s;
  }

  get port(): number {
    return this.port_;
  }
  get baseUrl(): string {
    return `http://127.0.0.1:${this.port_}`;
  }
  /** Pass as WebClient's `slackApiUrl` (Bolt: `clientOptions.slackApiUrl`). */
  get apiUrl(): string {
    return `${this.baseUrl}/api/`;
  }
  /** The first accepted token. */
  get token(): string {
    return this.tokens[0] ?? '';
  }

  async close(): Promise<void> {
    for (const w of this.callWaiters) this.callWaiters.delete(w);
    this.socketMode.close();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  // ---- workspace fixtures -------------------------------------------------

  addChannel(ch: ChannelInfo): void {
    this.channels.set(ch.id, { botIsMember: true, members: [], ...ch });
  }
  addUser(u: UserInfo): void {
    this.users.set(u.id, u);
  }
  addUsergroup(g: UsergroupInfo): void {
    this.usergroups.set(g.id, g);
  }
  setUsergroupUsers(id: string, users: string[]): void {
    const g = this.usergroups.get(id);
    if (!g) throw new Error(`unknown usergroup ${id}`);
    g.users = [...users];
  }

  /**
   * Rate-limit `method` for `forMs` from now: every call answers HTTP 429
   * `{ ok: false, error: 'ratelimited' }` with `Retry-After: retryAfter` (seconds), as Slack does.
   */
  rateLimit(method: string, forMs: number, retryAfter: number): void {
    this.rateLimits.set(method, { until: Date.now() + forMs, retryAfter });
  }

  /** Make the next call(s) of `method` fail (rate limits, outages, specific Slack errors). */
  failNext(method: string, failure: InjectedFailure): void {
    const list = this.failures.get(method) ?? [];
    for (let i = 0; i < (failure.times ?? 1); i++) list.push(failure);
    this.failures.set(method, list);
  }

  // ---- queries ------------------------------------------------------------

  calls(method?: string): RecordedCall[] {
    return this.recorded.filter((c) => method === undefined || c.method === method);
  }

  lastCall(method?: string): RecordedCall | undefined {
    const list = this.calls(method);
    return list[list.length - 1];
  }

  /** Resolve with the first call (already made or future) matching `predicate`. */
  waitFor(predicate: (call: RecordedCall) => boolean, timeoutMs = 5000): Promise<RecordedCall> {
    return this.waitOn(this.recorded, this.callWaiters, predicate, timeoutMs, () =>
      `recorded calls: ${this.recorded.map((c) => `${c.method}${c.response.ok ? '' : `(${c.response.error ?? ''})`}`).join(', ') || 'none'}`,
    );
  }

  /** Wait for a call of `method` (optionally matching `predicate`). */
  waitForCall(method: string, predicate: (call: RecordedCall) => boolean = () => true, timeoutMs = 5000): Promise<RecordedCall> {
    return this.waitFor((c) => c.method === method && predicate(c), timeoutMs);
  }

  /** Current state of a message; undefined when never posted. */
  message(channel: string, ts: string): StoredMessage | undefined {
    return this.store.get(`${channel}:${ts}`);
  }

  /** Messages (not deleted, top-level and replies), oldest first. */
  messages(channel?: string, opts: { includeDeleted?: boolean } = {}): StoredMessage[] {
    return [...this.store.values()].filter((m) => (channel === undefined || m.channel === channel) && (opts.includeDeleted || !m.deleted));
  }

  /** Thread replies under `threadTs`, oldest first. */
  replies(channel: string, threadTs: string): StoredMessage[] {
    return this.messages(channel).filter((m) => m.threadTs === threadTs && m.ts !== threadTs);
  }

  /** Pinned messages of a channel, oldest first. */
  pins(channel: string): StoredMessage[] {
    return this.messages(channel).filter((m) => m.pinned);
  }

  ephemerals(filter: { channel?: string; user?: string } = {}): EphemeralMessage[] {
    return this.ephemeralStore.filter((e) => (filter.channel === undefined || e.channel === filter.channel) && (filter.user === undefined || e.user === filter.user));
  }

  uploadedFiles(): UploadedFile[] {
    return [...this.files.values()];
  }

  /**
   * A user shares a file in a channel: the file, and its message (with `files`) in the channel,
   * as Slack makes them. Returns the file id and the message ts (the file's thread). The
   * test then sends the file_shared event itself (Events API or Socket Mode).
   */
  async shareFile(input: SharedFileInput): Promise<SharedFileRecord> {
    const ch = this.resolveChannel(input.channel);
    if (!ch) throw new Error(`unknown channel ${input.channel}`);
    const size = Buffer.isBuffer(input.content) ? input.content.length : (await stat(input.content.path)).size;
    const id = `F${String(++this.fileCounter).padStart(9, '0')}`;
    const m = this.storeMessage(ch, { text: input.comment ?? '' }, 'files');
    m.user = input.user;
    m.botId = null;
    const record: SharedFileRecord = {
      id,
      name: input.name,
      channel: ch.id,
      user: input.user,
      size,
      mimetype: input.mimetype ?? 'text/plain',
      content: input.content,
      declaredSize: input.declaredSize ?? size,
      ts: m.ts,
      created: Math.floor(Date.now() / 1000),
    };
    this.sharedFiles.set(id, record);
    return record;
  }

  /** The download URL files.info gives for a shared file (url_private_download). */
  downloadUrl(f: Pick<SharedFileRecord, 'id' | 'name'>): string {
    return `${this.baseUrl}/files-pri/${this.team.id}-${f.id}/download/${encodeURIComponent(f.name)}`;
  }

  /** Every request to a download URL, with the token it carried and the answer. */
  downloads(fileId?: string): DownloadRecord[] {
    return this.downloadLog.filter((d) => fileId === undefined || d.fileId === fileId);
  }

  /** A response_url for an interaction (slash command or button click). */
  responseUrl(id: string = randomBytes(6).toString('hex'), ctx: ResponseUrlContext = {}): string {
    this.responseContexts.set(id, { maxUses: 5, ...ctx, uses: 0, lastEphemeral: null });
    return `${this.baseUrl}/response/${encodeURIComponent(id)}`;
  }

  responses(id?: string): ResponseUrlPost[] {
    return this.responsePosts.filter((p) => id === undefined || p.id === id);
  }

  waitForResponse(predicate: (post: ResponseUrlPost) => boolean = () => true, timeoutMs = 5000): Promise<ResponseUrlPost> {
    return this.waitOn(this.responsePosts, this.responseWaiters, predicate, timeoutMs, () =>
      `response_url posts: ${this.responsePosts.map((p) => `${p.id}:${p.outcome}`).join(', ') || 'none'}`,
    );
  }

  /** Forget calls, messages and responses (fixtures stay). */
  reset(): void {
    this.recorded.length = 0;
    this.store.clear();
    this.ephemeralStore.length = 0;
    this.responsePosts.length = 0;
    this.files.clear();
    this.sharedFiles.clear();
    this.downloadLog.length = 0;
    this.failures.clear();
    this.rateLimits.clear();
  }

  private waitOn<T>(items: T[], waiters: Set<Waiter<T>>, predicate: (item: T) => boolean, timeoutMs: number, describe: () => string): Promise<T> {
    const found = items.find(predicate);
    if (found !== undefined) return Promise.resolve(found);
    return new Promise<T>((resolve, reject) => {
      const waiter: Waiter<T> = {
        predicate,
        resolve: (item) => {
          clearTimeout(timer);
          waiters.delete(waiter);
          resolve(item);
        },
      };
      const timer = setTimeout(() => {
        waiters.delete(waiter);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for a match; ${describe()}`));
      }, timeoutMs);
      waiters.add(waiter);
    });
  }

  private notify<T>(waiters: Set<Waiter<T>>, item: T): void {
    for (const w of [...waiters]) if (w.predicate(item)) w.resolve(item);
  }

  // ---- HTTP ---------------------------------------------------------------

  private send(res: ServerResponse, status: number, body: SlackResponse | string, headers: Record<string, string> = {}): void {
    const payload = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, {
      'content-type': typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json; charset=utf-8',
      ...headers,
    });
    res.end(payload);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.baseUrl);
    const raw = await readBody(req);
    if (url.pathname.startsWith('/api/')) return this.handleApi(req, res, decodeURIComponent(url.pathname.slice(5)), raw);
    if (url.pathname.startsWith('/response/')) return this.handleResponseUrl(req, res, decodeURIComponent(url.pathname.slice(10)), raw);
    if (url.pathname.startsWith('/upload/')) return this.handleUpload(req, res, decodeURIComponent(url.pathname.slice(8)), raw);
    if (url.pathname.startsWith('/files-pri/')) return this.handleDownload(req, res, url.pathname);
    this.send(res, 404, 'not found');
  }

  private async handleApi(req: IncomingMessage, res: ServerResponse, method: string, raw: Buffer): Promise<void> {
    const at = Date.now();
    let parsed: ParsedBody;
    try {
      parsed = await parseBody(req, raw);
    } catch (err) {
      const body: SlackResponse = { ok: false, error: err instanceof ApiError ? err.code : 'invalid_form_data' };
      this.record({ method, args: {}, contentType: 'other', token: null, at, status: 200, response: body });
      return this.send(res, 200, body);
    }
    const { args, contentType } = parsed;
    const header = req.headers['authorization'];
    const bearer = typeof header === 'string' && header.startsWith('Bearer ') ? header.slice(7).trim() : null;
    const token = bearer ?? str(args, 'token') ?? null;

    if (method === 'apps.connections.open' && !this.failures.get(method)?.length) {
      const opened = this.socketMode.open(token);
      this.record({ method, args, contentType, token, at, status: 200, response: opened });
      return this.send(res, 200, opened);
    }

    const window = this.rateLimits.get(method);
    if (window && at < window.until) {
      const body: SlackResponse = { ok: false, error: 'ratelimited' };
      this.record({ method, args, contentType, token, at, status: 429, response: body });
      return this.send(res, 429, body, { 'retry-after': String(window.retryAfter) });
    }

    const injected = this.failures.get(method)?.shift();
    if (injected) {
      const status = injected.status ?? 200;
      const body: SlackResponse = { ok: false, error: injected.error ?? (status === 429 ? 'ratelimited' : 'internal_error'), ...injected.extra };
      this.record({ method, args, contentType, token, at, status, response: body });
      const headers: Record<string, string> = injected.retryAfter !== undefined ? { 'retry-after': String(injected.retryAfter) } : {};
      return this.send(res, status, body, headers);
    }

    let response: SlackResponse;
    try {
      if (token === null) throw new ApiError('not_authed');
      if (!this.tokens.includes(token)) throw new ApiError('invalid_auth');
      if (parsed.blocksFormatError) throw new ApiError('invalid_blocks_format');
      response = this.dispatch(method, args);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      response = { ok: false, error: err.code, ...err.extra };
    }
    this.record({ method, args, contentType, token, at, status: 200, response });
    this.send(res, 200, response);
  }

  private record(call: Omit<RecordedCall, 'seq'>): void {
    const full: RecordedCall = { seq: ++this.seq, ...call };
    this.recorded.push(full);
    this.notify(this.callWaiters, full);
  }

  private nextTs(): string {
    this.tsCounter += 1;
    return `${Math.floor(Date.now() / 1000)}.${String(this.tsCounter).padStart(6, '0')}`;
  }

  private resolveChannel(raw: string): ChannelInfo | undefined {
    const byId = this.channels.get(raw);
    if (byId) return byId;
    const name = raw.replace(/^#/, '');
    for (const ch of this.channels.values()) if (ch.name === name) return ch;
    // A user id opens (or reuses) the bot's DM with that user.
    const user = this.users.get(raw);
    if (user && !user.isBot) {
      const dm: ChannelInfo = { id: `D${raw.slice(1)}`, name: `dm-${user.name}`, botIsMember: true, members: [raw] };
      if (!this.channels.has(dm.id)) this.channels.set(dm.id, dm);
      return this.channels.get(dm.id);
    }
    return undefined;
  }

  private requireChannel(args: SlackArgs, key = 'channel'): ChannelInfo {
    const raw = str(args, key);
    if (raw === undefined || raw === '') throw invalidArguments(`/${key}`, 'must provide a string');
    const ch = this.resolveChannel(raw);
    if (!ch) throw new ApiError('channel_not_found');
    return ch;
  }

  private checkContent(args: SlackArgs, requireContent = true): void {
    const check = validateMessage({ text: args['text'], blocks: args['blocks'], attachments: args['attachments'] }, { requireContent });
    if (!check.ok) throw blocksError(check.error, check.issues);
  }

  private blocksOf(args: SlackArgs): unknown[] {
    const b = args['blocks'];
    return Array.isArray(b) ? (b as unknown[]) : [];
  }

  private attachmentsOf(args: SlackArgs): unknown[] {
    const a = args['attachments'];
    return Array.isArray(a) ? (a as unknown[]) : [];
  }

  private messageJson(m: StoredMessage): SlackResponse {
    return {
      ok: true,
      type: 'message',
      subtype: m.botId ? 'bot_message' : undefined,
      text: m.text,
      user: m.user,
      bot_id: m.botId ?? undefined,
      ts: m.ts,
      thread_ts: m.threadTs ?? undefined,
      blocks: m.blocks,
      team: this.team.id,
    };
  }

  private storeMessage(ch: ChannelInfo, args: SlackArgs, via: StoredMessage['via'], files: UploadedFile[] = []): StoredMessage {
    const threadTs = str(args, 'thread_ts') ?? null;
    if (threadTs !== null && threadTs !== '') {
      const parent = this.store.get(`${ch.id}:${threadTs}`);
      if (!parent || parent.deleted) throw new ApiError('invalid_thread_ts');
    }
    const at = Date.now();
    const text = str(args, 'text') ?? str(args, 'initial_comment') ?? '';
    const blocks = this.blocksOf(args);
    const m: StoredMessage = {
      channel: ch.id,
      ts: this.nextTs(),
      threadTs: threadTs === '' ? null : threadTs,
      text,
      blocks,
      attachments: this.attachmentsOf(args),
      user: this.bot.userId,
      botId: this.bot.botId,
      files,
      versions: [{ text, blocks, at }],
      deleted: false,
      via,
      postedAt: at,
      pinned: false,
    };
    this.store.set(`${ch.id}:${m.ts}`, m);
    return m;
  }

  private dispatch(method: string, args: SlackArgs): SlackResponse {
    switch (method) {
      case 'api.test':
        return { ok: true, args };
      case 'auth.test':
        return {
          ok: true,
          url: `https://${this.team.domain}.slack.com/`,
          team: this.team.name,
          user: this.bot.name,
          team_id: this.team.id,
          user_id: this.bot.userId,
          bot_id: this.bot.botId,
          is_enterprise_install: false,
        };
      case 'chat.postMessage': {
        if (!str(args, 'channel')) throw invalidArguments('/channel', 'must provide a string');
        this.checkContent(args);
        const ch = this.requireChannel(args);
        if (ch.botIsMember === false) throw new ApiError('not_in_channel');
        const m = this.storeMessage(ch, args, 'api');
        return { ok: true, channel: ch.id, ts: m.ts, message: this.messageJson(m) };
      }
      case 'chat.update': {
        const ts = str(args, 'ts');
        if (ts === undefined || ts === '') throw invalidArguments('/ts', 'must provide a string');
        const hasText = str(args, 'text') !== undefined;
        const hasBlocks = args['blocks'] !== undefined;
        if (!hasText && !hasBlocks && args['attachments'] === undefined) throw new ApiError('no_text');
        this.checkContent(args, false);
        const ch = this.requireChannel(args);
        const m = this.store.get(`${ch.id}:${ts}`);
        if (!m || m.deleted) throw new ApiError('message_not_found');
        if (m.user !== this.bot.userId) throw new ApiError('cant_update_message');
        // Fields left out keep their previous value; `blocks: []` clears the blocks.
        const text = hasText ? (str(args, 'text') ?? '') : m.text;
        const blocks = hasBlocks ? this.blocksOf(args) : m.blocks;
        if (text.trim() === '' && blocks.length === 0 && m.attachments.length === 0 && m.files.length === 0) throw new ApiError('no_text');
        m.text = text;
        m.blocks = blocks;
        if (args['attachments'] !== undefined) m.attachments = this.attachmentsOf(args);
        m.versions.push({ text, blocks, at: Date.now() });
        return { ok: true, channel: ch.id, ts: m.ts, text: m.text, message: this.messageJson(m) };
      }
      case 'chat.delete': {
        const ts = str(args, 'ts');
        if (ts === undefined || ts === '') throw invalidArguments('/ts', 'must provide a string');
        const ch = this.requireChannel(args);
        const m = this.store.get(`${ch.id}:${ts}`);
        if (!m || m.deleted) throw new ApiError('message_not_found');
        if (m.user !== this.bot.userId) throw new ApiError('cant_delete_message');
        m.deleted = true;
        return { ok: true, channel: ch.id, ts };
      }
      case 'chat.postEphemeral': {
        const user = str(args, 'user');
        if (user === undefined || user === '') throw invalidArguments('/user', 'must provide a string');
        this.checkContent(args);
        const ch = this.requireChannel(args);
        if (!this.users.has(user)) throw new ApiError('user_not_found');
        if (ch.members && ch.members.length > 0 && !ch.members.includes(user)) throw new ApiError('user_not_in_channel');
        const e: EphemeralMessage = {
          channel: ch.id,
          user,
          ts: this.nextTs(),
          threadTs: str(args, 'thread_ts') ?? null,
          text: str(args, 'text') ?? '',
          blocks: this.blocksOf(args),
          via: 'api',
          replacedBy: null,
          deleted: false,
          at: Date.now(),
        };
        this.ephemeralStore.push(e);
        return { ok: true, message_ts: e.ts };
      }
      case 'chat.getPermalink': {
        const ch = this.requireChannel(args);
        const ts = str(args, 'message_ts');
        if (ts === undefined || ts === '') throw invalidArguments('/message_ts', 'must provide a string');
        const m = this.store.get(`${ch.id}:${ts}`);
        if (!m || m.deleted) throw new ApiError('message_not_found');
        const p = ts.replace('.', '');
        const thread = m.threadTs ? `?thread_ts=${m.threadTs}&cid=${ch.id}` : '';
        return { ok: true, channel: ch.id, permalink: `https://${this.team.domain}.slack.com/archives/${ch.id}/p${p}${thread}` };
      }
      case 'pins.add': {
        // Slack: a message (channel + timestamp) or nothing to pin; the channel must exist.
        const raw = str(args, 'channel');
        const ch = raw ? this.resolveChannel(raw) : undefined;
        if (!ch) throw new ApiError('channel_not_found');
        const ts = str(args, 'timestamp');
        if (ts === undefined || ts === '') throw new ApiError('no_item_specified');
        const m = this.store.get(`${ch.id}:${ts}`);
        if (!m || m.deleted) throw new ApiError('message_not_found');
        if (m.pinned) throw new ApiError('already_pinned');
        m.pinned = true;
        return { ok: true };
      }
      case 'users.info': {
        const id = str(args, 'user');
        if (id === undefined || id === '') throw invalidArguments('/user', 'must provide a string');
        const u = this.users.get(id);
        if (!u) throw new ApiError('user_not_found');
        return {
          ok: true,
          user: {
            id: u.id,
            team_id: this.team.id,
            name: u.name,
            real_name: u.realName ?? u.name,
            deleted: u.deleted ?? false,
            is_bot: u.isBot ?? false,
            tz: u.tz ?? 'Etc/UTC',
            profile: { real_name: u.realName ?? u.name, display_name: u.name },
          },
        };
      }
      case 'usergroups.users.list': {
        const id = str(args, 'usergroup');
        if (id === undefined || id === '') throw invalidArguments('/usergroup', 'must provide a string');
        const g = this.usergroups.get(id);
        if (!g) throw new ApiError('no_such_subteam');
        if (g.disabled && !truthy(args['include_disabled'])) throw new ApiError('subteam_disabled');
        return { ok: true, users: [...g.users] };
      }
      case 'conversations.info': {
        const ch = this.requireChannel(args);
        return { ok: true, channel: { id: ch.id, name: ch.name, is_member: ch.botIsMember !== false } };
      }
      case 'files.info': {
        const id = str(args, 'file');
        if (id === undefined || id === '') throw invalidArguments('/file', 'must provide a string');
        const f = this.sharedFiles.get(id);
        // A bot token sees the files of conversations it belongs to (files.info: "files appearing in the channels they belong to").
        const ch = f ? this.channels.get(f.channel) : undefined;
        if (!f || !ch || ch.botIsMember === false) throw new ApiError('file_not_found');
        const share = { ts: f.ts, channel_name: ch.name, team_id: this.team.id, share_user_id: f.user, reply_users: [], reply_users_count: 0, reply_count: 0 };
        const isPublic = ch.id.startsWith('C');
        return {
          ok: true,
          file: {
            id: f.id,
            created: f.created,
            timestamp: f.created,
            name: f.name,
            title: f.name,
            mimetype: f.mimetype,
            filetype: 'text',
            pretty_type: 'Plain Text',
            user: f.user,
            editable: false,
            size: f.declaredSize,
            mode: 'hosted',
            is_external: false,
            is_public: isPublic,
            url_private: `${this.baseUrl}/files-pri/${this.team.id}-${f.id}/${encodeURIComponent(f.name)}`,
            url_private_download: this.downloadUrl(f),
            channels: isPublic ? [ch.id] : [],
            groups: ch.id.startsWith('G') ? [ch.id] : [],
            ims: ch.id.startsWith('D') ? [ch.id] : [],
            shares: isPublic ? { public: { [ch.id]: [share] } } : { private: { [ch.id]: [share] } },
            has_more_shares: false,
          },
          comments: [],
          response_metadata: { next_cursor: '' },
        };
      }
      case 'files.getUploadURLExternal': {
        const filename = str(args, 'filename');
        const rawLength = str(args, 'length');
        if (filename === undefined || filename === '') throw invalidArguments('/filename', 'must provide a string');
        if (rawLength === undefined || rawLength === '') throw invalidArguments('/length', 'must provide an integer');
        const length = Number(rawLength);
        if (!Number.isInteger(length) || length < 0) throw invalidArguments('/length', 'must provide an integer');
        // Slack: "missing_argument ... typically only occurs when the `length` provided is 0".
        if (length === 0) throw new ApiError('missing_argument');
        // Slack documents `alt_txt`; @slack/web-api's uploadV2 sends `alt_text`. Both are read.
        const altText = str(args, 'alt_txt') ?? str(args, 'alt_text') ?? null;
        if (altText !== null && altText.length > FILE_LIMITS.altText) throw new ApiError('alt_txt_too_large');
        const id = `F${String(++this.fileCounter).padStart(9, '0')}`;
        this.files.set(id, {
          id,
          filename,
          title: null,
          declaredLength: length,
          altText,
          snippetType: str(args, 'snippet_type') ?? null,
          content: null,
          completed: false,
          channel: null,
          threadTs: null,
        });
        return { ok: true, upload_url: `${this.baseUrl}/upload/${id}`, file_id: id };
      }
      case 'files.completeUploadExternal': {
        const list = args['files'];
        if (!Array.isArray(list) || list.length === 0) throw invalidArguments('/files', 'must provide an array');
        const done: UploadedFile[] = [];
        const titles: (string | null)[] = [];
        for (const [i, entry] of list.entries()) {
          if (typeof entry !== 'object' || entry === null || typeof (entry as { id?: unknown }).id !== 'string') {
            throw invalidArguments(`/files/${i}/id`, 'must provide a string');
          }
          const { id, title } = entry as { id: string; title?: unknown };
          const f = this.files.get(id);
          // Unknown, never uploaded (or refused at the upload URL), or already completed ("can only be called once").
          if (!f || f.content === null || f.completed) throw new ApiError('file_not_found');
          if (title !== undefined && typeof title !== 'string') throw invalidArguments(`/files/${i}/title`, 'must provide a string');
          done.push(f);
          titles.push(typeof title === 'string' ? title : null);
        }
        const channelId = str(args, 'channel_id') ?? str(args, 'channels');
        const threadTs = str(args, 'thread_ts');
        // A thread reply needs its channel (the SDK's types require channel_id with thread_ts).
        if (threadTs !== undefined && threadTs !== '' && (channelId === undefined || channelId === '')) throw invalidArguments('/channel_id', 'must provide a string with thread_ts');
        if (channelId !== undefined && channelId !== '') {
          const ch = this.resolveChannel(channelId);
          if (!ch) throw new ApiError('channel_not_found');
          if (ch.botIsMember === false) throw new ApiError('not_in_channel');
          // "If the initial_comment field is provided, the blocks field is ignored."
          const share = str(args, 'initial_comment') !== undefined ? { ...args, blocks: undefined } : args;
          if (share['blocks'] !== undefined) this.checkContent(share, false);
          this.storeMessage(ch, share, 'files', done);
          for (const f of done) {
            f.channel = ch.id;
            f.threadTs = threadTs || null;
          }
        }
        done.forEach((f, i) => {
          f.title = titles[i] ?? f.filename;
          f.completed = true;
        });
        return { ok: true, files: done.map((f) => ({ id: f.id, name: f.filename, title: f.title, size: f.content?.length ?? 0 })) };
      }
      default:
        return { ok: false, error: 'unknown_method', req_method: method };
    }
  }

  /** GET url_private_download: the content, streamed; 403 without an accepted bot token. */
  private async handleDownload(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const m = /^\/files-pri\/[A-Z0-9]+-(F[A-Z0-9]+)\/download\/[^/]+$/.exec(path);
    const f = m ? this.sharedFiles.get(m[1] ?? '') : undefined;
    const header = req.headers['authorization'];
    const token = typeof header === 'string' && header.startsWith('Bearer ') ? header.slice(7).trim() : null;
    const log = (status: number): void => {
      this.downloadLog.push({ fileId: f?.id ?? path, token, status, at: Date.now() });
    };
    if (!f) {
      log(404);
      return this.send(res, 404, 'file not found');
    }
    if (token === null || !this.tokens.includes(token)) {
      log(403);
      return this.send(res, 403, 'not_authed: url_private_download needs Authorization: Bearer <token with files:read>');
    }
    const ch = this.channels.get(f.channel);
    if (!ch || ch.botIsMember === false) {
      log(404);
      return this.send(res, 404, 'file not found');
    }
    log(200);
    res.writeHead(200, { 'content-type': f.mimetype, ...(f.declaredSize === f.size ? { 'content-length': String(f.size) } : {}) });
    if (Buffer.isBuffer(f.content)) {
      res.end(f.content);
      return;
    }
    const stream = createReadStream(f.content.path);
    stream.pipe(res);
    // The client hanging up early (it read enough) stops the read.
    res.on('close', () => stream.destroy());
    await new Promise<void>((resolve) => {
      stream.on('close', () => resolve());
    });
  }

  private async handleUpload(req: IncomingMessage, res: ServerResponse, id: string, raw: Buffer): Promise<void> {
    const f = this.files.get(id);
    if (!f || f.completed) return this.send(res, 404, 'file not found');
    const ct = (req.headers['content-type'] ?? '').toLowerCase();
    let content = raw;
    // Raw bytes or multipart/form-data (the WebClient's uploadV2), as Slack accepts both.
    if (ct.startsWith('multipart/form-data')) {
      const form = await new Response(raw, { headers: { 'content-type': ct } }).formData();
      let found: Buffer | null = null;
      for (const [, v] of form.entries()) {
        if (typeof v !== 'string') {
          found = Buffer.from(await v.arrayBuffer());
          break;
        }
      }
      if (found === null) return this.send(res, 400, 'no file part');
      content = found;
    }
    // Not documented by Slack: bytes that differ from the `length` asked for are refused
    // here, and the file stays without content (completeUploadExternal: file_not_found).
    if (content.length !== f.declaredLength) return this.send(res, 400, `length mismatch: ${f.declaredLength} bytes declared, ${content.length} received`);
    f.content = content;
    this.send(res, 200, `OK - ${content.length}`);
  }

  private async handleResponseUrl(req: IncomingMessage, res: ServerResponse, id: string, raw: Buffer): Promise<void> {
    const ctx = this.responseContexts.get(id);
    const at = Date.now();
    const post = (status: number, outcome: ResponseUrlPost['outcome'], body: SlackArgs, error: string | null = null, errors: string[] = []): ResponseUrlPost => {
      const p: ResponseUrlPost = { id, seq: ++this.seq, at, body, status, outcome, error, errors };
      this.responsePosts.push(p);
      this.notify(this.responseWaiters, p);
      return p;
    };
    let body: SlackArgs;
    try {
      const parsed = await parseBody(req, raw);
      body = parsed.args;
      // Incoming-webhook style `payload=<json>` form posts are accepted too.
      if (parsed.contentType === 'form' && typeof body['payload'] === 'string') body = JSON.parse(body['payload']) as SlackArgs;
      if (parsed.blocksFormatError) {
        post(400, 'rejected', body, 'invalid_blocks_format');
        return this.send(res, 400, { ok: false, error: 'invalid_blocks_format' });
      }
    } catch {
      post(400, 'rejected', {}, 'invalid_payload');
      return this.send(res, 400, { ok: false, error: 'invalid_payload' });
    }
    if (!ctx) {
      post(404, 'rejected', body, 'expired_url');
      return this.send(res, 404, { ok: false, error: 'expired_url' });
    }
    if (ctx.uses >= (ctx.maxUses ?? 5)) {
      post(404, 'rejected', body, 'used_url');
      return this.send(res, 404, { ok: false, error: 'used_url' });
    }
    ctx.uses += 1;

    if (truthy(body['delete_original'])) {
      if (ctx.messageTs && ctx.channel) {
        const m = this.store.get(`${ctx.channel}:${ctx.messageTs}`);
        if (!m || m.deleted) {
          post(404, 'rejected', body, 'message_not_found');
          return this.send(res, 404, { ok: false, error: 'message_not_found' });
        }
        m.deleted = true;
      } else if (ctx.lastEphemeral) {
        ctx.lastEphemeral.deleted = true;
      }
      post(200, 'deleted', body);
      return this.send(res, 200, { ok: true });
    }

    const check = validateMessage({ text: body['text'], blocks: body['blocks'], attachments: body['attachments'] });
    if (!check.ok) {
      const errors = formatIssues(check.issues);
      post(400, 'rejected', body, check.error, errors);
      const resp: SlackResponse = { ok: false, error: check.error };
      if (errors.length > 0) {
        resp['errors'] = errors;
        resp['response_metadata'] = { messages: formatIssueMessages(check.issues) };
      }
      return this.send(res, 400, resp);
    }
    const text = str(body, 'text') ?? '';
    const blocks = this.blocksOf(body);

    if (truthy(body['replace_original'])) {
      if (ctx.messageTs && ctx.channel) {
        const m = this.store.get(`${ctx.channel}:${ctx.messageTs}`);
        if (!m || m.deleted) {
          post(404, 'rejected', body, 'message_not_found');
          return this.send(res, 404, { ok: false, error: 'message_not_found' });
        }
        m.text = text;
        m.blocks = blocks;
        m.versions.push({ text, blocks, at });
        post(200, 'replaced', body);
        return this.send(res, 200, { ok: true });
      }
      if (ctx.lastEphemeral) {
        const next = this.addEphemeral(ctx, text, blocks);
        ctx.lastEphemeral.replacedBy = next;
        ctx.lastEphemeral = next;
        post(200, 'replaced', body);
        return this.send(res, 200, { ok: true });
      }
    }

    if (body['response_type'] === 'in_channel') {
      const ch = ctx.channel ? this.channels.get(ctx.channel) : undefined;
      if (!ch) {
        post(404, 'rejected', body, 'channel_not_found');
        return this.send(res, 404, { ok: false, error: 'channel_not_found' });
      }
      const m = this.storeMessage(ch, { text, blocks, thread_ts: body['thread_ts'] }, 'response_url');
      m.user = this.bot.userId;
      post(200, 'in_channel', body);
      return this.send(res, 200, { ok: true });
    }

    ctx.lastEphemeral = this.addEphemeral(ctx, text, blocks);
    post(200, 'ephemeral', body);
    return this.send(res, 200, { ok: true });
  }

  private addEphemeral(ctx: ResponseUrlContext, text: string, blocks: unknown[]): EphemeralMessage {
    const e: EphemeralMessage = {
      channel: ctx.channel ?? '',
      user: ctx.user ?? '',
      ts: this.nextTs(),
      threadTs: null,
      text,
      blocks,
      via: 'response_url',
      replacedBy: null,
      deleted: false,
      at: Date.now(),
    };
    this.ephemeralStore.push(e);
    return e;
  }
}

/** Start a local Slack Web API on a random port of 127.0.0.1. */
export function startSlackApi(opts?: SlackApiServerOptions): Promise<SlackApiServer> {
  return SlackApiServer.start(opts);
}
