/**
 * The one Slack message writer against the local Slack Web API: post, update, "update,
 * else post", thread replies and the three-step file upload; and the upload flow's
 * refusals in the local server (wrong byte length, unknown file id, thread without
 * channel, alt text over Slack's limit, length 0, completing twice).
 */
import { createHash } from 'node:crypto';
import { crc32, deflateSync } from 'node:zlib';
import { webApi } from '@slack/bolt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SlackMessageWriter, SlackUploadError, ALT_TEXT_MAX } from '../../../src/slack/publish/message-writer.js';
import { renderProgress, type RenderedMessage } from '../../../src/slack/blocks/index.js';
import { FILE_LIMITS, startSlackApi, type SlackApiServer } from '../../support/slack-api/index.js';

const CHANNEL = 'C0OPS0001';
let slack: SlackApiServer;
let writer: SlackMessageWriter;

beforeAll(async () => {
  slack = await startSlackApi({ channels: [{ id: CHANNEL, name: 'ops' }, { id: 'C0QUIET01', name: 'quiet', botIsMember: false }] });
  writer = new SlackMessageWriter(new webApi.WebClient(slack.token, { slackApiUrl: slack.apiUrl, retryConfig: { retries: 0 } }));
});
afterAll(async () => {
  await slack.close();
});
afterEach(() => {
  slack.reset();
});

const note = (text: string): RenderedMessage => ({ text, blocks: [{ type: 'section', text: { type: 'mrkdwn', text } }] });

/** A real PNG (8-bit RGBA gradient): signature, IHDR, IDAT, IEND, each chunk with its CRC. */
function png(width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer): Buffer => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const out = Buffer.alloc(body.length + 8);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc32(body), body.length + 4);
    return out;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 6, 0, 0, 0], 8);
  const rows = Buffer.alloc(height * (1 + width * 4));
  for (let y = 0; y < height; y++) {
    const row = y * (1 + width * 4);
    for (let x = 0; x < width; x++) rows.set([(x * 255) / width, (y * 255) / height, (x * y) & 0xff, 0xff], row + 1 + x * 4);
  }
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(rows)), chunk('IEND', Buffer.alloc(0))]);
}

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

async function api(method: string, body: Record<string, unknown>): Promise<Record<string, unknown>> {
  const res = await fetch(`${slack.apiUrl}${method}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json; charset=utf-8', authorization: `Bearer ${slack.token}` },
    body: JSON.stringify(body),
  });
  return (await res.json()) as Record<string, unknown>;
}

describe('messages', () => {
  it('post, update, reply (broadcast or not): the server records each as Slack would show it', async () => {
    const ref = await writer.post({ channel: CHANNEL }, renderProgress('gw-3', [{ name: 'SSH connect', status: 'running' }]));
    expect(slack.message(CHANNEL, ref.ts)?.text).toBe('Checking gw-3: SSH connect (0/1)');
    expect(await writer.update(ref, note('done'))).toEqual(ref);
    expect(slack.message(CHANNEL, ref.ts)?.versions.map((v) => v.text)).toEqual(['Checking gw-3: SSH connect (0/1)', 'done']);
    const quiet = await writer.reply(ref, note('in the thread'));
    const loud = await writer.reply(ref, note('also in the channel'), { broadcast: true });
    expect(slack.replies(CHANNEL, ref.ts).map((m) => m.text)).toEqual(['in the thread', 'also in the channel']);
    expect(slack.calls('chat.postMessage').map((c) => [c.args['thread_ts'] ?? null, c.args['reply_broadcast'] ?? null])).toEqual([
      [null, null],
      [ref.ts, 'false'],
      [ref.ts, 'true'],
    ]);
    expect([quiet.channel, loud.channel]).toEqual([CHANNEL, CHANNEL]);
  });

  it('show: updates the message it is given, posts when there is none, shows nothing with neither', async () => {
    const first = await writer.show(null, { channel: CHANNEL }, note('posted'));
    expect(first).not.toBeNull();
    const again = await writer.show(first, { channel: CHANNEL }, note('updated'));
    expect(again).toEqual(first);
    expect(await writer.show(null, null, note('nowhere'))).toBeNull();
    expect(slack.messages(CHANNEL).map((m) => [m.text, m.versions.length])).toEqual([['updated', 2]]);
    expect(slack.calls().map((c) => c.method)).toEqual(['chat.postMessage', 'chat.update']);
  });

  it('Slack errors reach the caller', async () => {
    await expect(writer.update({ channel: CHANNEL, ts: '1.000001' }, note('x'))).rejects.toMatchObject({ data: { error: 'message_not_found' } });
    await expect(writer.post({ channel: 'C0QUIET01' }, note('x'))).rejects.toMatchObject({ data: { error: 'not_in_channel' } });
  });
});

describe('file upload (files.getUploadURLExternal -> POST bytes -> files.completeUploadExternal)', () => {
  it('an image arrives byte for byte and is shared in the thread with its comment, title and alt text', async () => {
    const parent = await writer.post({ channel: CHANNEL }, note('incident summary'));
    const image = png(64, 48);
    const file = await writer.upload(
      { filename: 'drops.png', bytes: image, title: 'Drops per minute', altText: 'Line chart of conntrack drops per minute, flat at zero after 14:12' },
      { channel: CHANNEL, threadTs: parent.ts, comment: 'Drops since the apply' },
    );
    expect(slack.calls().map((c) => c.method)).toEqual(['chat.postMessage', 'files.getUploadURLExternal', 'files.completeUploadExternal']);
    expect(slack.lastCall('files.getUploadURLExternal')?.args).toMatchObject({ filename: 'drops.png', length: String(image.length), alt_txt: expect.stringMatching(/^Line chart/) });
    const [stored] = slack.uploadedFiles();
    expect(stored).toMatchObject({ id: file.id, filename: 'drops.png', title: 'Drops per minute', declaredLength: image.length, completed: true, channel: CHANNEL, threadTs: parent.ts });
    expect(stored?.altText).toMatch(/^Line chart/);
    expect(sha256(stored?.content ?? Buffer.alloc(0))).toBe(sha256(image));
    expect(stored?.content?.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    const [reply] = slack.replies(CHANNEL, parent.ts);
    expect(reply).toMatchObject({ text: 'Drops since the apply', via: 'files', threadTs: parent.ts });
    expect(reply?.files.map((f) => f.id)).toEqual([file.id]);
  });

  it('shared in a channel without a thread: a top-level message carries the file', async () => {
    const text = new TextEncoder().encode('gw-3 full detail\n'.repeat(100));
    const file = await writer.upload({ filename: 'gw-3.txt', bytes: text, snippetType: 'text' }, { channel: CHANNEL });
    expect(file.title).toBe('gw-3.txt');
    const [m] = slack.messages(CHANNEL);
    expect(m).toMatchObject({ threadTs: null, via: 'files' });
    expect(m?.files[0]?.content?.toString('utf8')).toBe('gw-3 full detail\n'.repeat(100));
  });

  it('refuses alt text over Slack\'s limit and empty files before calling Slack', async () => {
    expect(ALT_TEXT_MAX).toBe(FILE_LIMITS.altText);
    await expect(writer.upload({ filename: 'a.png', bytes: png(2, 2), altText: 'x'.repeat(ALT_TEXT_MAX + 1) }, { channel: CHANNEL })).rejects.toBeInstanceOf(SlackUploadError);
    await expect(writer.upload({ filename: 'a.txt', bytes: new Uint8Array(0) }, { channel: CHANNEL })).rejects.toBeInstanceOf(SlackUploadError);
    expect(slack.calls()).toHaveLength(0);
  });

  it('Slack errors of the flow reach the caller: an unknown channel, a thread that does not exist', async () => {
    await expect(writer.upload({ filename: 'a.png', bytes: png(2, 2) }, { channel: 'C0NOPE001' })).rejects.toMatchObject({ data: { error: 'channel_not_found' } });
    await expect(writer.upload({ filename: 'a.png', bytes: png(2, 2) }, { channel: 'C0QUIET01' })).rejects.toMatchObject({ data: { error: 'not_in_channel' } });
    await expect(writer.upload({ filename: 'a.png', bytes: png(2, 2) }, { channel: CHANNEL, threadTs: '1.000009' })).rejects.toMatchObject({ data: { error: 'invalid_thread_ts' } });
    expect(slack.messages(CHANNEL)).toHaveLength(0);
    expect(slack.uploadedFiles().every((f) => !f.completed)).toBe(true);
  });
});

describe('the local server refuses what Slack would in the upload flow', () => {
  async function uploadUrl(length: number, extra: Record<string, unknown> = {}): Promise<{ url: string; id: string }> {
    const r = await api('files.getUploadURLExternal', { filename: 'x.bin', length, ...extra });
    expect(r).toMatchObject({ ok: true });
    return { url: String(r['upload_url']), id: String(r['file_id']) };
  }

  it('bytes that differ from the declared length: the upload is refused and the file cannot be completed', async () => {
    const { url, id } = await uploadUrl(10);
    const short = await fetch(url, { method: 'POST', body: new Uint8Array(9) });
    expect(short.status).toBe(400);
    expect(await short.text()).toMatch(/10 bytes declared, 9 received/);
    const long = await fetch(url, { method: 'POST', body: new Uint8Array(11) });
    expect(long.status).toBe(400);
    expect(await api('files.completeUploadExternal', { files: [{ id }], channel_id: CHANNEL })).toEqual({ ok: false, error: 'file_not_found' });
    expect((await fetch(url, { method: 'POST', body: new Uint8Array(10) })).status).toBe(200);
    expect(await api('files.completeUploadExternal', { files: [{ id }], channel_id: CHANNEL })).toMatchObject({ ok: true });
  });

  it('an unknown file id, a second completion, a thread without its channel, a title that is not text', async () => {
    expect(await api('files.completeUploadExternal', { files: [{ id: 'F0NOPE' }], channel_id: CHANNEL })).toEqual({ ok: false, error: 'file_not_found' });
    const { url, id } = await uploadUrl(3);
    expect((await fetch(url, { method: 'POST', body: new Uint8Array([1, 2, 3]) })).status).toBe(200);
    const parent = await writer.post({ channel: CHANNEL }, note('parent'));
    expect(await api('files.completeUploadExternal', { files: [{ id }], thread_ts: parent.ts })).toMatchObject({ ok: false, error: 'invalid_arguments' });
    expect(await api('files.completeUploadExternal', { files: [{ id, title: 42 }], channel_id: CHANNEL })).toMatchObject({ ok: false, error: 'invalid_arguments' });
    expect(await api('files.completeUploadExternal', { files: [{ id, title: 'three bytes' }], channel_id: CHANNEL, thread_ts: parent.ts })).toMatchObject({ ok: true, files: [{ id, title: 'three bytes', size: 3 }] });
    expect(await api('files.completeUploadExternal', { files: [{ id }], channel_id: CHANNEL })).toEqual({ ok: false, error: 'file_not_found' });
    expect((await fetch(url, { method: 'POST', body: new Uint8Array([1, 2, 3]) })).status).toBe(404);
    // Without a channel the file stays private: accepted, shared nowhere.
    const priv = await uploadUrl(1);
    await fetch(priv.url, { method: 'POST', body: new Uint8Array([7]) });
    expect(await api('files.completeUploadExternal', { files: [{ id: priv.id }] })).toMatchObject({ ok: true });
    expect(slack.uploadedFiles().find((f) => f.id === priv.id)).toMatchObject({ completed: true, channel: null });
    expect(slack.replies(CHANNEL, parent.ts)).toHaveLength(1);
  });

  it('length 0 is missing_argument; alt text over 1,000 characters is alt_txt_too_large (either spelling)', async () => {
    expect(await api('files.getUploadURLExternal', { filename: 'x', length: 0 })).toEqual({ ok: false, error: 'missing_argument' });
    expect(await api('files.getUploadURLExternal', { filename: 'x' })).toMatchObject({ ok: false, error: 'invalid_arguments' });
    expect(await api('files.getUploadURLExternal', { filename: 'x', length: 5, alt_txt: 'a'.repeat(FILE_LIMITS.altText + 1) })).toEqual({ ok: false, error: 'alt_txt_too_large' });
    expect(await api('files.getUploadURLExternal', { filename: 'x', length: 5, alt_text: 'a'.repeat(FILE_LIMITS.altText + 1) })).toEqual({ ok: false, error: 'alt_txt_too_large' });
    expect(await api('files.getUploadURLExternal', { filename: 'x', length: 5, alt_txt: 'a'.repeat(FILE_LIMITS.altText) })).toMatchObject({ ok: true });
  });
});
