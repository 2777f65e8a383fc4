/**
 * The one way this bot writes to Slack: post, update, "update it if it exists, else post
 * it", thread replies, pins, permalinks and file uploads. Every publisher and the button handlers go
 * through it; nothing else calls chat.* or files.* .
 *
 * Messages are our renderers' `{ text, blocks }` (src/slack/blocks), whose block types
 * are checked against @slack/types' KnownBlock once, here (`toSlackBlocks`).
 *
 * Uploads use Slack's current flow (files.upload is retired):
 *   files.getUploadURLExternal { filename, length, alt_txt?, snippet_type? } -> { upload_url, file_id }
 *   POST the bytes to upload_url (HTTP 200 when received)
 *   files.completeUploadExternal { files: [{ id, title }], channel_id, thread_ts?, initial_comment? }
 */
import type { types } from '@slack/bolt';
import type { WebClient } from '@slack/web-api';
import { z } from 'zod';
import { metrics } from '../../metrics/registry.js';
import type { SlackMessageRef } from '../../store/plan-store.js';
import type { Block, RenderedMessage } from '../blocks/index.js';

export type { SlackMessageRef } from '../../store/plan-store.js';

/** Where a new message goes: a channel, or a thread in it. */
export interface MessagePlace {
  channel: string;
  /** Post as a reply in this thread (the parent's ts). */
  threadTs?: string;
}

export interface FileToUpload {
  filename: string;
  bytes: Uint8Array;
  /** Shown above the file; default the file name. */
  title?: string;
  /** Description of an image for screen readers (at most 1,000 characters). */
  altText?: string;
  /** Syntax type of a text snippet, e.g. `text`. */
  snippetType?: string;
}

export interface FileShare extends MessagePlace {
  /** The message text introducing the file. */
  comment?: string;
}

export interface UploadedFileRef {
  id: string;
  title: string;
}

/** Slack's documented limit on `alt_txt` (files.getUploadURLExternal: alt_txt_too_large). */
export const ALT_TEXT_MAX = 1000;

/** A stuck upload must not hold a worker: give up after this long. */
const UPLOAD_TIMEOUT_MS = 120_000;

/** The one conversion of our block types to the SDK's: checked by the compiler, no cast. */
export function toSlackBlocks(blocks: readonly Block[]): types.KnownBlock[] {
  return [...blocks];
}

const postedSchema = z.object({ channel: z.string().min(1), ts: z.string().min(1) });
const uploadUrlSchema = z.object({ upload_url: z.url(), file_id: z.string().min(1) });
const completedSchema = z.object({ files: z.array(z.object({ id: z.string(), title: z.string().optional() })).min(1) });

export class SlackUploadError extends Error {
  override name = 'SlackUploadError';
}

/** Slack's error code of a failed Web API call (`channel_not_found`...), else the SDK's (`slack_webapi_rate_limited_error`...). */
export function slackErrorCode(err: unknown): string {
  const e = err as { code?: unknown; data?: { error?: unknown } };
  if (typeof e.data?.error === 'string') return e.data.error;
  return typeof e.code === 'string' ? e.code : 'unknown';
}

/** Runs one Slack API call; a failure is counted (method, error code) and rethrown. */
async function counted<T>(method: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    metrics.slackApiErrors.inc({ method, error: slackErrorCode(err) });
    throw err;
  }
}

export class SlackMessageWriter {
  constructor(private readonly client: WebClient) {}

  /** A new message (a thread reply when `place.threadTs` is set). `broadcast`: also show a reply in the channel. */
  async post(place: MessagePlace, message: RenderedMessage, opts: { broadcast?: boolean } = {}): Promise<SlackMessageRef> {
    const base = { channel: place.channel, text: message.text, blocks: toSlackBlocks(message.blocks) };
    const res = await counted('chat.postMessage', () => this.client.chat.postMessage(place.threadTs ? { ...base, thread_ts: place.threadTs, reply_broadcast: opts.broadcast ?? false } : base));
    const posted = postedSchema.safeParse(res);
    if (!posted.success) throw new Error('chat.postMessage answered without channel and ts');
    return posted.data;
  }

  /** A reply in the thread of `parent`. */
  reply(parent: SlackMessageRef, message: RenderedMessage, opts: { broadcast?: boolean } = {}): Promise<SlackMessageRef> {
    return this.post({ channel: parent.channel, threadTs: parent.ts }, message, opts);
  }

  /** Replace the text and blocks of a message the bot posted. */
  async update(ref: SlackMessageRef, message: RenderedMessage): Promise<SlackMessageRef> {
    await counted('chat.update', () => this.client.chat.update({ channel: ref.channel, ts: ref.ts, text: message.text, blocks: toSlackBlocks(message.blocks) }));
    return ref;
  }

  /** Pin a message to its channel (pins.add); a message already pinned is fine. */
  async pin(ref: SlackMessageRef): Promise<void> {
    try {
      await this.client.pins.add({ channel: ref.channel, timestamp: ref.ts });
    } catch (err) {
      if (slackErrorCode(err) === 'already_pinned') return;
      metrics.slackApiErrors.inc({ method: 'pins.add', error: slackErrorCode(err) });
      throw err;
    }
  }

  /** A link to a message (chat.getPermalink). */
  async permalink(ref: SlackMessageRef): Promise<string> {
    const res = await counted('chat.getPermalink', () => this.client.chat.getPermalink({ channel: ref.channel, message_ts: ref.ts }));
    const link = z.object({ permalink: z.url() }).safeParse(res);
    if (!link.success) throw new Error('chat.getPermalink answered without a permalink');
    return link.data.permalink;
  }

  /**
   * Update `ref` when there is one, else post at `place`; with neither, nothing is shown
   * (null). The live messages (progress, then findings or result) are written with this.
   */
  show(ref: SlackMessageRef | null, place: MessagePlace, message: RenderedMessage): Promise<SlackMessageRef>;
  show(ref: SlackMessageRef | null, place: MessagePlace | null, message: RenderedMessage): Promise<SlackMessageRef | null>;
  async show(ref: SlackMessageRef | null, place: MessagePlace | null, message: RenderedMessage): Promise<SlackMessageRef | null> {
    if (ref) return this.update(ref, message);
    return place ? this.post(place, message) : null;
  }

  /** Upload a file (an image, a text report) and share it in a channel or thread. */
  async upload(file: FileToUpload, share: FileShare): Promise<UploadedFileRef> {
    if (file.altText !== undefined && file.altText.length > ALT_TEXT_MAX) throw new SlackUploadError(`alt text of ${file.filename} is longer than ${ALT_TEXT_MAX} characters`);
    if (file.bytes.byteLength === 0) throw new SlackUploadError(`${file.filename} is empty: Slack refuses a length of 0`);
    // `alt_txt` is the name Slack documents; the SDK's typed arguments spell it alt_text.
    const asked = await counted('files.getUploadURLExternal', () =>
      this.client.apiCall('files.getUploadURLExternal', {
        filename: file.filename,
        length: file.bytes.byteLength,
        ...(file.altText !== undefined ? { alt_txt: file.altText } : {}),
        ...(file.snippetType !== undefined ? { snippet_type: file.snippetType } : {}),
      }),
    );
    const target = uploadUrlSchema.safeParse(asked);
    if (!target.success) throw new SlackUploadError('files.getUploadURLExternal answered without upload_url and file_id');
    // Raw bytes (Slack also takes multipart). Not through the WebClient: this is no API method.
    const sent = await fetch(target.data.upload_url, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: file.bytes,
      signal: AbortSignal.timeout(UPLOAD_TIMEOUT_MS),
    });
    if (sent.status !== 200) metrics.slackApiErrors.inc({ method: 'upload_url', error: `http_${sent.status}` });
    if (sent.status !== 200) throw new SlackUploadError(`uploading ${file.filename} (${file.bytes.byteLength} bytes) failed: HTTP ${sent.status} ${(await sent.text()).slice(0, 200)}`);
    const title = file.title ?? file.filename;
    const done = await counted('files.completeUploadExternal', () =>
      this.client.files.completeUploadExternal({
        files: [{ id: target.data.file_id, title }],
        channel_id: share.channel,
        ...(share.threadTs ? { thread_ts: share.threadTs } : {}),
        ...(share.comment !== undefined ? { initial_comment: share.comment } : {}),
      }),
    );
    const completed = completedSchema.safeParse(done);
    if (!completed.success) throw new SlackUploadError('files.completeUploadExternal answered without the file');
    return { id: target.data.file_id, title };
  }
}
