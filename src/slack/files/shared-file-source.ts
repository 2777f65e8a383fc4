/**
 * Files shared in Slack, as the saved-file worker reads them (SavedFileSource):
 *
 *   files.info { file }                         (scope files:read; a bot token sees only files in
 *                                                conversations it belongs to) -> name, size, mimetype,
 *                                                url_private_download, shares.{public,private}[channel][].ts
 *   GET url_private_download with `Authorization: Bearer <bot token>` (files:read), streamed.
 *
 * The token goes only to Slack's own hosts (*.slack.com) or the configured SLACK_API_URL's
 * origin (tests, local development): a file object pointing elsewhere is refused, not fetched.
 * The download is counted as it streams and cut at the byte cap; Slack's answer to a request
 * it does not accept (an HTML sign-in page, not the file) is named as such.
 */
import type { WebClient } from '@slack/web-api';
import { z } from 'zod';
import { slackErrorCode } from '../publish/message-writer.js';
import { SharedFileRefusal, type SavedFileSource, type SharedFile } from '../../worker/saved-file-processor.js';

const shareSchema = z.object({ ts: z.string().min(1) });
const sharesSchema = z.record(z.string(), z.array(shareSchema)).optional();

const fileInfoSchema = z.object({
  file: z.object({
    id: z.string().min(1),
    name: z.string().default(''),
    title: z.string().optional(),
    size: z.number().int().min(0),
    mimetype: z.string().default('application/octet-stream'),
    url_private_download: z.url().optional(),
    channels: z.array(z.string()).optional(),
    groups: z.array(z.string()).optional(),
    ims: z.array(z.string()).optional(),
    shares: z.object({ public: sharesSchema, private: sharesSchema }).optional(),
  }),
});
type FileInfo = z.infer<typeof fileInfoSchema>['file'];

/** The newest share of the file in `channel` (its message is the thread to answer in); undefined: not shared there. */
function shareIn(file: FileInfo, channel: string): { ts: string | null } | undefined {
  const shares = [...(file.shares?.public?.[channel] ?? []), ...(file.shares?.private?.[channel] ?? [])];
  if (shares.length > 0) return { ts: shares.map((s) => s.ts).sort((a, b) => Number(b) - Number(a))[0] ?? null };
  const listed = [...(file.channels ?? []), ...(file.groups ?? []), ...(file.ims ?? [])].includes(channel);
  return listed ? { ts: null } : undefined;
}

/** Hosts the bot token may be sent to: Slack's, and the API server the bot is configured with. */
export function trustedDownload(url: string, apiUrl: string | undefined): boolean {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return false;
  }
  if (u.protocol === 'https:' && (u.hostname === 'slack.com' || u.hostname.endsWith('.slack.com'))) return true;
  if (apiUrl === undefined) return false;
  return u.origin === new URL(apiUrl).origin;
}

export class SlackSharedFileSource implements SavedFileSource {
  private readonly urls = new Map<string, string>();

  constructor(
    private readonly client: WebClient,
    private readonly botToken: string,
    private readonly apiUrl: string | undefined,
  ) {}

  async describe(fileId: string, channel: string): Promise<SharedFile | null> {
    let raw: unknown;
    try {
      raw = await this.client.files.info({ file: fileId });
    } catch (err) {
      // Not visible to the bot (not a member of any conversation holding it), or deleted since.
      if (['file_not_found', 'file_deleted', 'channel_not_found', 'not_in_channel'].includes(slackErrorCode(err))) return null;
      throw err;
    }
    const parsed = fileInfoSchema.safeParse(raw);
    if (!parsed.success) throw new Error(`files.info answered an unexpected shape: ${parsed.error.issues[0]?.message ?? ''}`);
    const file = parsed.data.file;
    const share = shareIn(file, channel);
    if (!share) return null;
    if (file.url_private_download) this.urls.set(file.id, file.url_private_download);
    return { id: file.id, name: file.name || file.title || file.id, size: file.size, mimetype: file.mimetype, channel, threadTs: share.ts };
  }

  async *open(file: SharedFile, maxBytes: number): AsyncGenerator<Buffer> {
    const url = this.urls.get(file.id);
    if (!url) throw new SharedFileRefusal('Slack gave no download address for this file (an external or remote file?): upload the saved file itself.');
    if (!trustedDownload(url, this.apiUrl)) throw new SharedFileRefusal('the file\'s download address is not on Slack: not fetched (the bot token goes to Slack only).');
    const abort = new AbortController();
    try {
      const res = await fetch(url, { headers: { authorization: `Bearer ${this.botToken}` }, signal: abort.signal, redirect: 'follow' });
      if (res.status !== 200 || !res.body) throw new Error(`Slack answered HTTP ${res.status} to the file download`);
      if ((res.headers.get('content-type') ?? '').startsWith('text/html')) {
        throw new SharedFileRefusal('Slack answered the download with a web page, not the file: the app needs the files:read scope (reinstall it from manifest.yml).');
      }
      const declared = Number(res.headers.get('content-length') ?? NaN);
      if (Number.isFinite(declared) && declared > maxBytes) throw new SharedFileRefusal(`${declared.toLocaleString('en-US')} bytes is more than this bot reads (${maxBytes.toLocaleString('en-US')} bytes, SAVED_FILE_MAX_BYTES).`);
      let bytes = 0;
      for await (const chunk of res.body) {
        bytes += chunk.byteLength;
        if (bytes > maxBytes) throw new SharedFileRefusal(`the file is longer than this bot reads (${maxBytes.toLocaleString('en-US')} bytes, SAVED_FILE_MAX_BYTES): cut at that size.`);
        yield Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      }
    } finally {
      // Done, refused, or the reader stopped early (not a saved file): the rest is not downloaded.
      abort.abort();
    }
  }
}
