/**
 * Build and sign requests the way Slack sends them to the bot.
 *
 * Signing (docs.slack.dev "Verifying requests from Slack"; Bolt's receivers/verify-request.js):
 *   x-slack-request-timestamp: <unix seconds>
 *   x-slack-signature: v0=<hex HMAC-SHA256(signing secret, "v0:" + ts + ":" + raw body)>
 * Bolt rejects timestamps more than 5 minutes away from its clock.
 *
 * Payload shapes follow Bolt's own types (node_modules/@slack/bolt/dist/types/command and
 * types/actions/block-action.d.ts) and Slack's reference pages: a slash command is an
 * application/x-www-form-urlencoded body; an interaction is the same content type with a
 * single `payload` field holding the JSON.
 */
import { createHmac } from 'node:crypto';

export interface SlackSignatureHeaders {
  'x-slack-signature': string;
  'x-slack-request-timestamp': string;
}

/** Headers Slack would send with `body` (the exact raw body string). */
export function signSlackRequest(secret: string, body: string, timestamp: number = Math.floor(Date.now() / 1000)): SlackSignatureHeaders {
  const ts = String(Math.floor(timestamp));
  const hash = createHmac('sha256', secret).update(`v0:${ts}:${body}`).digest('hex');
  return { 'x-slack-signature': `v0=${hash}`, 'x-slack-request-timestamp': ts };
}

/** Signature headers plus the content type, ready for fetch(). */
export function signedFormHeaders(secret: string, body: string, timestamp?: number): Record<string, string> {
  return { 'content-type': 'application/x-www-form-urlencoded', ...signSlackRequest(secret, body, timestamp) };
}

export interface SlashCommandInput {
  text: string;
  command?: string;
  userId?: string;
  userName?: string;
  channelId?: string;
  channelName?: string;
  teamId?: string;
  teamDomain?: string;
  responseUrl?: string;
  triggerId?: string;
  apiAppId?: string;
  enterpriseId?: string;
  /** Deprecated verification token; Slack still sends it. */
  token?: string;
}

/** Fields of a slash command request, in the order Slack sends them. */
export function slashCommandFields(input: SlashCommandInput): Record<string, string> {
  const fields: Record<string, string> = {
    token: input.token ?? 'verification-token-unused',
    team_id: input.teamId ?? 'T0TEST001',
    team_domain: input.teamDomain ?? 'conntrack-test',
    channel_id: input.channelId ?? 'C0OPS0001',
    channel_name: input.channelName ?? 'ops',
    user_id: input.userId ?? 'U0ALICE01',
    user_name: input.userName ?? 'alice',
    command: input.command ?? '/conntrack',
    text: input.text,
    api_app_id: input.apiAppId ?? 'A0APP0001',
    is_enterprise_install: 'false',
    response_url: input.responseUrl ?? 'https://hooks.slack.com/commands/T0TEST001/1/unused',
    trigger_id: input.triggerId ?? `${Date.now()}.1.${Math.random().toString(16).slice(2, 18)}`,
  };
  if (input.enterpriseId !== undefined) fields['enterprise_id'] = input.enterpriseId;
  return fields;
}

/** The raw form body of a slash command (`command=%2Fconntrack&text=check+gw-3&...`). */
export function buildSlashCommandBody(input: SlashCommandInput): string {
  return new URLSearchParams(slashCommandFields(input)).toString();
}

export interface ButtonClickInput {
  actionId: string;
  value?: string;
  blockId?: string;
  buttonText?: string;
  userId?: string;
  userName?: string;
  channelId?: string;
  channelName?: string;
  teamId?: string;
  teamDomain?: string;
  /** ts of the message that holds the button. */
  messageTs: string;
  /** The message as Slack shows it to the app (text and blocks). */
  message?: { text?: string; blocks?: unknown[] };
  responseUrl?: string;
  triggerId?: string;
  apiAppId?: string;
  actionTs?: string;
  /** What the message's inputs hold when the button is clicked (block_id -> action_id -> value), e.g. ticked checkboxes. */
  stateValues?: Record<string, Record<string, unknown>>;
}

/** Subset of Slack's block_actions payload that Bolt reads (typed here, so tests can tweak it). */
export interface BlockActionsPayload {
  type: 'block_actions';
  user: { id: string; username: string; name: string; team_id: string };
  api_app_id: string;
  token: string;
  container: { type: 'message'; message_ts: string; channel_id: string; is_ephemeral: boolean };
  trigger_id: string;
  team: { id: string; domain: string };
  enterprise: null;
  is_enterprise_install: boolean;
  channel: { id: string; name: string };
  message: { type: 'message'; subtype?: string; text: string; user: string; ts: string; bot_id?: string; blocks: unknown[]; team: string };
  state: { values: Record<string, Record<string, unknown>> };
  response_url: string;
  actions: Array<{
    type: 'button';
    action_id: string;
    block_id: string;
    text: { type: 'plain_text'; text: string; emoji: boolean };
    value?: string;
    style?: 'primary' | 'danger';
    action_ts: string;
  }>;
}

/** A block_actions payload for a button click on a bot message. */
export function blockActionsPayload(input: ButtonClickInput): BlockActionsPayload {
  const teamId = input.teamId ?? 'T0TEST001';
  const userId = input.userId ?? 'U0ALICE01';
  const channelId = input.channelId ?? 'C0OPS0001';
  const action: BlockActionsPayload['actions'][number] = {
    type: 'button',
    action_id: input.actionId,
    block_id: input.blockId ?? 'actions',
    text: { type: 'plain_text', text: input.buttonText ?? input.actionId, emoji: true },
    action_ts: input.actionTs ?? `${(Date.now() / 1000).toFixed(6)}`,
  };
  if (input.value !== undefined) action.value = input.value;
  return {
    type: 'block_actions',
    user: { id: userId, username: input.userName ?? 'alice', name: input.userName ?? 'alice', team_id: teamId },
    api_app_id: input.apiAppId ?? 'A0APP0001',
    token: 'verification-token-unused',
    container: { type: 'message', message_ts: input.messageTs, channel_id: channelId, is_ephemeral: false },
    trigger_id: input.triggerId ?? `${Date.now()}.1.${Math.random().toString(16).slice(2, 18)}`,
    team: { id: teamId, domain: input.teamDomain ?? 'conntrack-test' },
    enterprise: null,
    is_enterprise_install: false,
    channel: { id: channelId, name: input.channelName ?? 'ops' },
    message: {
      type: 'message',
      subtype: 'bot_message',
      text: input.message?.text ?? '',
      user: 'U0BOT0001',
      ts: input.messageTs,
      bot_id: 'B0BOT0001',
      blocks: input.message?.blocks ?? [],
      team: teamId,
    },
    state: { values: input.stateValues ?? {} },
    response_url: input.responseUrl ?? 'https://hooks.slack.com/actions/T0TEST001/1/unused',
    actions: [action],
  };
}

/** The raw form body of an interaction: `payload=<url-encoded JSON>`. */
export function buildInteractionBody(payload: object): string {
  return new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
}

/** Shortcut: the raw body of a button click. */
export function buildBlockActionsBody(input: ButtonClickInput): string {
  return buildInteractionBody(blockActionsPayload(input));
}

export interface EventCallbackInput {
  teamId?: string;
  apiAppId?: string;
  eventId?: string;
  eventTime?: number;
}

/**
 * The raw JSON body of an Events API delivery (docs.slack.dev "Events API": the outer
 * `event_callback` envelope around the event), sent with `content-type: application/json`.
 */
export function buildEventBody(event: Record<string, unknown>, input: EventCallbackInput = {}): string {
  return JSON.stringify({
    token: 'verification-token-unused',
    team_id: input.teamId ?? 'T0TEST001',
    api_app_id: input.apiAppId ?? 'A0APP0001',
    event,
    type: 'event_callback',
    event_id: input.eventId ?? `Ev${Date.now().toString(36).toUpperCase()}${Math.random().toString(36).slice(2, 8).toUpperCase()}`,
    event_time: input.eventTime ?? Math.floor(Date.now() / 1000),
    authorizations: [{ enterprise_id: null, team_id: input.teamId ?? 'T0TEST001', user_id: 'U0BOT0001', is_bot: true, is_enterprise_install: false }],
    is_ext_shared_channel: false,
  });
}

/** Signature headers and the JSON content type of an Events API delivery. */
export function signedJsonHeaders(secret: string, body: string, timestamp?: number): Record<string, string> {
  return { 'content-type': 'application/json', ...signSlackRequest(secret, body, timestamp) };
}

/** A file_shared event as Slack sends it (docs.slack.dev/reference/events/file_shared). */
export function fileSharedEvent(input: { fileId: string; channelId: string; userId: string; eventTs?: string }): Record<string, unknown> {
  return {
    type: 'file_shared',
    channel_id: input.channelId,
    file_id: input.fileId,
    user_id: input.userId,
    file: { id: input.fileId },
    event_ts: input.eventTs ?? (Date.now() / 1000).toFixed(6),
  };
}
