/**
 * The worker's Slack file source against the local Slack API server (files.info, the
 * authenticated download): what it reads of a shared file, where the answer goes (the share's
 * thread), files it cannot see, and the byte cap both ways: a declared size above the cap is
 * refused before a byte is read; a stream that runs past the cap (no content-length) is cut
 * there and the download cancelled.
 */
import { WebClient } from '@slack/web-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SlackSharedFileSource } from '../../../src/slack/files/shared-file-source.js';
import { SharedFileRefusal } from '../../../src/worker/saved-file-processor.js';
import { startSlackApi, type SlackApiServer } from '../../support/slack-api/index.js';

let slack: SlackApiServer;
let source: SlackSharedFileSource;

beforeAll(async () => {
  slack = await startSlackApi({ channels: [{ id: 'C0OPS0001', name: 'ops' }, { id: 'C0ELSE001', name: 'else', botIsMember: false }], users: [{ id: 'U0ALICE01', name: 'alice' }] });
  source = new SlackSharedFileSource(new WebClient(slack.token, { slackApiUrl: slack.apiUrl, retryConfig: { retries: 0 } }), slack.token, slack.apiUrl);
});
afterAll(async () => {
  await slack?.close();
});

async function readAll(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of it) parts.push(c);
  return Buffer.concat(parts);
}

describe('SlackSharedFileSource', () => {
  it('describes a file shared where the bot is (thread = the share message) and streams it with the bot token', async () => {
    const content = Buffer.from('@@conntrack-ops-saved 1@@\nline\n');
    const shared = await slack.shareFile({ name: 'gw-3.saved', channel: 'C0OPS0001', user: 'U0ALICE01', content });
    const file = await source.describe(shared.id, 'C0OPS0001');
    expect(file).toEqual({ id: shared.id, name: 'gw-3.saved', size: content.length, mimetype: 'text/plain', channel: 'C0OPS0001', threadTs: shared.ts });
    expect(await readAll(source.open(file!, 1024))).toEqual(content);
    expect(slack.downloads(shared.id)).toEqual([expect.objectContaining({ status: 200, token: slack.token })]);
  });

  it('sees nothing of a file in a channel without the bot, nor of a file asked about in another channel', async () => {
    const elsewhere = await slack.shareFile({ name: 'a.saved', channel: 'C0ELSE001', user: 'U0ALICE01', content: Buffer.from('x') });
    expect(await source.describe(elsewhere.id, 'C0ELSE001')).toBeNull();
    const here = await slack.shareFile({ name: 'b.saved', channel: 'C0OPS0001', user: 'U0ALICE01', content: Buffer.from('x') });
    expect(await source.describe(here.id, 'C0ELSE001')).toBeNull();
    expect(await source.describe('F999999999', 'C0OPS0001')).toBeNull();
  });

  it('refuses a declared size above the cap before reading, and cuts an undeclared stream at the cap', async () => {
    const honest = await slack.shareFile({ name: 'c.saved', channel: 'C0OPS0001', user: 'U0ALICE01', content: Buffer.alloc(5000, 0x61) });
    const f1 = await source.describe(honest.id, 'C0OPS0001');
    await expect(readAll(source.open(f1!, 1000))).rejects.toThrow(SharedFileRefusal);

    const lying = await slack.shareFile({ name: 'd.saved', channel: 'C0OPS0001', user: 'U0ALICE01', content: Buffer.alloc(3 * 1024 * 1024, 0x61), declaredSize: 10 });
    const f2 = await source.describe(lying.id, 'C0OPS0001');
    expect(f2?.size).toBe(10);
    let got = 0;
    const read = (async () => {
      for await (const c of source.open(f2!, 64 * 1024)) got += c.length;
    })();
    await expect(read).rejects.toThrow(/longer than this bot reads/);
    expect(got).toBeLessThanOrEqual(64 * 1024);
  });
});
