import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { webApi } from '@slack/bolt';
import { startSlackApi, type SlackApiServer } from './index.js';

const { WebClient, ErrorCode } = webApi;

let slack: SlackApiServer;

beforeAll(async () => {
  slack = await startSlackApi({
    channels: [
      { id: 'C0OPS0001', name: 'ops' },
      { id: 'C0QUIET01', name: 'quiet', botIsMember: false },
    ],
    users: [
      { id: 'U0ALICE01', name: 'alice', realName: 'Alice A.' },
      { id: 'U0BOB0001', name: 'bob' },
    ],
    usergroups: [{ id: 'S0APPROVE', handle: 'netops-approvers', users: ['U0ALICE01'] }],
  });
});
afterAll(async () => {
  await slack.close();
});
afterEach(() => {
  slack.reset();
});

function client(token = slack.token): InstanceType<typeof WebClient> {
  return new WebClient(token, { slackApiUrl: slack.apiUrl, retryConfig: { retries: 0 } });
}

/** A raw form POST, as the WebClient sends it. */
async function form(method: string, fields: Record<string, string>, token: string | null = slack.token): Promise<Record<string, unknown>> {
  const res = await fetch(`${slack.apiUrl}${method}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: new URLSearchParams(fields).toString(),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as Record<string, unknown>;
}

async function json(method: string, body: unknown, token: string | null = slack.token): Promise<Record<string, unknown>> {
  const res = await fetch(`${slack.apiUrl}${method}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json; charset=utf-8', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as Record<string, unknown>;
}

const section = (text: string) => ({ type: 'section', text: { type: 'mrkdwn', text } });

describe('local Slack Web API over raw HTTP', () => {
  it('listens on 127.0.0.1 with a random port', () => {
    expect(slack.apiUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/api\/$/);
    expect(slack.port).toBeGreaterThan(0);
  });

  it('accepts a form-encoded postMessage with JSON-stringified blocks and stores it', async () => {
    const res = await form('chat.postMessage', { channel: 'C0OPS0001', text: 'hello', blocks: JSON.stringify([section('*hi*')]) });
    expect(res).toMatchObject({ ok: true, channel: 'C0OPS0001' });
    const ts = String(res['ts']);
    expect(slack.message('C0OPS0001', ts)).toMatchObject({ text: 'hello', blocks: [section('*hi*')] });
    const call = slack.lastCall('chat.postMessage');
    expect(call).toMatchObject({ contentType: 'form', token: slack.token, args: { channel: 'C0OPS0001', blocks: [section('*hi*')] } });
  });

  it('accepts JSON bodies too, and a channel name', async () => {
    const res = await json('chat.postMessage', { channel: '#ops', text: 'json', blocks: [section('x')] });
    expect(res).toMatchObject({ ok: true, channel: 'C0OPS0001' });
    expect(slack.lastCall()?.contentType).toBe('json');
  });

  it('checks the token: not_authed without one, invalid_auth with a wrong one', async () => {
    expect(await form('chat.postMessage', { channel: 'C0OPS0001', text: 'x' }, null)).toEqual({ ok: false, error: 'not_authed' });
    expect(await form('chat.postMessage', { channel: 'C0OPS0001', text: 'x' }, 'xoxb-wrong')).toEqual({ ok: false, error: 'invalid_auth' });
    // A `token` form field is accepted, as Slack does.
    expect(await form('chat.postMessage', { channel: 'C0OPS0001', text: 'x', token: slack.token }, null)).toMatchObject({ ok: true });
    expect(slack.messages('C0OPS0001')).toHaveLength(1);
  });

  it('rejects what Slack rejects, in Slack\'s error shape', async () => {
    const long = await form('chat.postMessage', { channel: 'C0OPS0001', text: 'x', blocks: JSON.stringify([section('y'.repeat(3001))]) });
    expect(long).toEqual({
      ok: false,
      error: 'invalid_blocks',
      errors: ['failed to match all allowed schemas [json-pointer:/blocks/0/text]', 'must be less than 3001 characters [json-pointer:/blocks/0/text/text]'],
      response_metadata: {
        messages: ['[ERROR] failed to match all allowed schemas [json-pointer:/blocks/0/text]', '[ERROR] must be less than 3001 characters [json-pointer:/blocks/0/text/text]'],
      },
    });
    expect(await form('chat.postMessage', { channel: 'C0OPS0001', text: 'x', blocks: '[{"type":' })).toEqual({ ok: false, error: 'invalid_blocks_format' });
    expect(await form('chat.postMessage', { channel: 'C0OPS0001' })).toEqual({ ok: false, error: 'no_text' });
    expect(await form('chat.postMessage', { channel: 'C0OPS0001', text: 'z'.repeat(40_001) })).toEqual({ ok: false, error: 'msg_too_long' });
    expect(await form('chat.postMessage', { channel: 'C0NOPE001', text: 'x' })).toEqual({ ok: false, error: 'channel_not_found' });
    expect(await form('chat.postMessage', { channel: 'C0QUIET01', text: 'x' })).toEqual({ ok: false, error: 'not_in_channel' });
    expect(await form('chat.postMessage', { text: 'x' })).toEqual({
      ok: false,
      error: 'invalid_arguments',
      response_metadata: { messages: ['[ERROR] must provide a string [json-pointer:/channel]'] },
    });
    expect(await form('chat.postMessage', { channel: 'C0OPS0001', text: 'x', thread_ts: '1.000001' })).toEqual({ ok: false, error: 'invalid_thread_ts' });
    expect(slack.messages()).toEqual([]);
    expect(slack.calls('chat.postMessage').every((c) => c.response.ok === false)).toBe(true);
  });

  it('chat.update changes the stored message and keeps its history', async () => {
    const posted = await form('chat.postMessage', { channel: 'C0OPS0001', text: 'v1', blocks: JSON.stringify([section('one')]) });
    const ts = String(posted['ts']);
    const upd = await form('chat.update', { channel: 'C0OPS0001', ts, text: 'v2', blocks: JSON.stringify([section('two')]) });
    expect(upd).toMatchObject({ ok: true, ts, text: 'v2' });
    const m = slack.message('C0OPS0001', ts);
    expect(m?.text).toBe('v2');
    expect(m?.blocks).toEqual([section('two')]);
    expect(m?.versions.map((v) => v.text)).toEqual(['v1', 'v2']);
    // Text only: the blocks stay. blocks=[] clears them.
    await form('chat.update', { channel: 'C0OPS0001', ts, text: 'v3' });
    expect(slack.message('C0OPS0001', ts)?.blocks).toEqual([section('two')]);
    await form('chat.update', { channel: 'C0OPS0001', ts, text: 'v4', blocks: '[]' });
    expect(slack.message('C0OPS0001', ts)?.blocks).toEqual([]);
  });

  it('chat.update refuses unknown messages and invalid blocks, leaving the message alone', async () => {
    expect(await form('chat.update', { channel: 'C0OPS0001', ts: '123.456', text: 'x' })).toEqual({ ok: false, error: 'message_not_found' });
    const ts = String((await form('chat.postMessage', { channel: 'C0OPS0001', text: 'keep' }))['ts']);
    const bad = await form('chat.update', { channel: 'C0OPS0001', ts, text: 'x', blocks: JSON.stringify([{ type: 'header', text: { type: 'plain_text', text: 'h'.repeat(151) } }]) });
    expect(bad).toMatchObject({ ok: false, error: 'invalid_blocks', errors: ['must be less than 151 characters [json-pointer:/blocks/0/text/text]'] });
    expect(slack.message('C0OPS0001', ts)?.text).toBe('keep');
    expect(await form('chat.update', { channel: 'C0OPS0001', ts })).toEqual({ ok: false, error: 'no_text' });
  });

  it('threads, ephemerals, permalinks, delete', async () => {
    const parent = String((await form('chat.postMessage', { channel: 'C0OPS0001', text: 'parent' }))['ts']);
    const reply = await form('chat.postMessage', { channel: 'C0OPS0001', text: 'reply', thread_ts: parent });
    expect(reply).toMatchObject({ ok: true });
    expect(slack.replies('C0OPS0001', parent).map((m) => m.text)).toEqual(['reply']);
    const eph = await form('chat.postEphemeral', { channel: 'C0OPS0001', user: 'U0ALICE01', text: 'psst' });
    expect(eph).toMatchObject({ ok: true, message_ts: expect.any(String) });
    expect(slack.ephemerals({ user: 'U0ALICE01' }).map((e) => e.text)).toEqual(['psst']);
    expect(await form('chat.postEphemeral', { channel: 'C0OPS0001', user: 'U0NOBODY1', text: 'x' })).toEqual({ ok: false, error: 'user_not_found' });
    const link = await form('chat.getPermalink', { channel: 'C0OPS0001', message_ts: parent });
    expect(link['permalink']).toBe(`https://conntrack-test.slack.com/archives/C0OPS0001/p${parent.replace('.', '')}`);
    expect(await form('chat.delete', { channel: 'C0OPS0001', ts: parent })).toMatchObject({ ok: true });
    expect(slack.message('C0OPS0001', parent)?.deleted).toBe(true);
    expect(await form('chat.update', { channel: 'C0OPS0001', ts: parent, text: 'x' })).toEqual({ ok: false, error: 'message_not_found' });
  });

  it('pins.add pins a message once, with Slack\'s errors', async () => {
    const ts = String((await form('chat.postMessage', { channel: 'C0OPS0001', text: 'summary' }))['ts']);
    expect(await form('pins.add', { channel: 'C0OPS0001', timestamp: ts })).toEqual({ ok: true });
    expect(slack.pins('C0OPS0001').map((m) => m.ts)).toEqual([ts]);
    expect(await form('pins.add', { channel: 'C0OPS0001', timestamp: ts })).toEqual({ ok: false, error: 'already_pinned' });
    expect(await form('pins.add', { channel: 'C0OPS0001' })).toEqual({ ok: false, error: 'no_item_specified' });
    expect(await form('pins.add', { channel: 'C0OPS0001', timestamp: '1.000001' })).toEqual({ ok: false, error: 'message_not_found' });
    expect(await form('pins.add', { channel: 'C0NOPE001', timestamp: ts })).toEqual({ ok: false, error: 'channel_not_found' });
    expect(await form('pins.add', { timestamp: ts })).toEqual({ ok: false, error: 'channel_not_found' });
  });

  it('unknown methods answer unknown_method', async () => {
    expect(await form('chat.frobnicate', { x: '1' })).toEqual({ ok: false, error: 'unknown_method', req_method: 'chat.frobnicate' });
  });

  it('waitFor resolves on past and future calls and times out with a description', async () => {
    const later = slack.waitForCall('chat.postMessage', (c) => c.args['text'] === 'later', 2000);
    await form('chat.postMessage', { channel: 'C0OPS0001', text: 'later' });
    expect((await later).args['text']).toBe('later');
    expect((await slack.waitFor((c) => c.args['text'] === 'later', 10)).method).toBe('chat.postMessage');
    await expect(slack.waitForCall('users.info', () => true, 50)).rejects.toThrow(/timed out after 50 ms.*chat\.postMessage/);
  });
});

describe('the real @slack/web-api WebClient against the local API', () => {
  it('auth.test, users.info, usergroups.users.list', async () => {
    const c = client();
    expect(await c.auth.test()).toMatchObject({ ok: true, user_id: 'U0BOT0001', team_id: 'T0TEST001', bot_id: 'B0BOT0001' });
    expect((await c.users.info({ user: 'U0ALICE01' })).user).toMatchObject({ id: 'U0ALICE01', real_name: 'Alice A.' });
    expect((await c.usergroups.users.list({ usergroup: 'S0APPROVE' })).users).toEqual(['U0ALICE01']);
    slack.setUsergroupUsers('S0APPROVE', ['U0ALICE01', 'U0BOB0001']);
    expect((await c.usergroups.users.list({ usergroup: 'S0APPROVE' })).users).toEqual(['U0ALICE01', 'U0BOB0001']);
    await expect(c.usergroups.users.list({ usergroup: 'S0MISSING' })).rejects.toMatchObject({ code: ErrorCode.PlatformError, data: { error: 'no_such_subteam' } });
  });

  it('posts and updates; the client sends form bodies with a Bearer token', async () => {
    const c = client();
    const posted = await c.chat.postMessage({ channel: 'C0OPS0001', text: 'Checking gw-3', blocks: [{ type: 'section', text: { type: 'mrkdwn', text: ':hourglass: connecting' } }] });
    expect(posted.ok).toBe(true);
    const call = slack.lastCall('chat.postMessage');
    expect(call?.contentType).toBe('form');
    expect(call?.token).toBe(slack.token);
    expect(call?.args['blocks']).toEqual([{ type: 'section', text: { type: 'mrkdwn', text: ':hourglass: connecting' } }]);
    await c.chat.update({ channel: 'C0OPS0001', ts: posted.ts ?? '', text: 'gw-3 done', blocks: [{ type: 'section', text: { type: 'mrkdwn', text: ':white_check_mark: done' } }] });
    expect(slack.message('C0OPS0001', posted.ts ?? '')?.blocks).toEqual([{ type: 'section', text: { type: 'mrkdwn', text: ':white_check_mark: done' } }]);
  });

  it('surfaces invalid_blocks as a platform error with Slack\'s errors', async () => {
    // The client logs response_metadata.messages that start with [ERROR]: capturing them
    // proves the metadata is in the format the real client parses.
    const logged: string[] = [];
    const logger = {
      debug: () => undefined,
      info: () => undefined,
      warn: () => undefined,
      error: (...msg: unknown[]) => void logged.push(msg.map(String).join(' ')),
      setLevel: () => undefined,
      getLevel: () => webApi.LogLevel.ERROR,
      setName: () => undefined,
    };
    const c = new WebClient(slack.token, { slackApiUrl: slack.apiUrl, retryConfig: { retries: 0 }, logger });
    const err: unknown = await c.chat
      .postMessage({ channel: 'C0OPS0001', text: 'x', blocks: [{ type: 'section', text: { type: 'mrkdwn', text: 'y'.repeat(3001) } }] })
      .then(() => null, (e: unknown) => e);
    expect(err).toMatchObject({
      code: ErrorCode.PlatformError,
      data: { ok: false, error: 'invalid_blocks', errors: expect.arrayContaining(['must be less than 3001 characters [json-pointer:/blocks/0/text/text]']) },
    });
    expect(String(err)).toContain('invalid_blocks');
    expect(logged).toEqual(['failed to match all allowed schemas [json-pointer:/blocks/0/text]', 'must be less than 3001 characters [json-pointer:/blocks/0/text/text]']);
  });

  it('surfaces invalid_auth, message_not_found, channel_not_found', async () => {
    await expect(client('xoxb-wrong').auth.test()).rejects.toMatchObject({ data: { error: 'invalid_auth' } });
    await expect(client().chat.update({ channel: 'C0OPS0001', ts: '1.2', text: 'x' })).rejects.toMatchObject({ data: { error: 'message_not_found' } });
    await expect(client().chat.postMessage({ channel: 'C0NOPE001', text: 'x' })).rejects.toMatchObject({ data: { error: 'channel_not_found' } });
  });

  it('files.uploadV2 runs the three-step flow and posts into the thread', async () => {
    const c = client();
    const parent = await c.chat.postMessage({ channel: 'C0OPS0001', text: 'findings' });
    const content = 'line 1\nline 2 😀\n'.repeat(500);
    const res = await c.files.uploadV2({ channel_id: 'C0OPS0001', thread_ts: parent.ts ?? '', filename: 'gw-3-report.txt', title: 'Full report', content, initial_comment: 'Full detail' });
    expect(res.ok).toBe(true);
    const [file] = slack.uploadedFiles();
    expect(file).toMatchObject({ filename: 'gw-3-report.txt', title: 'Full report', completed: true, channel: 'C0OPS0001', threadTs: parent.ts });
    expect(file?.content?.toString('utf8')).toBe(content);
    expect(file?.declaredLength).toBe(Buffer.byteLength(content));
    const replies = slack.replies('C0OPS0001', parent.ts ?? '');
    expect(replies).toHaveLength(1);
    expect(replies[0]).toMatchObject({ text: 'Full detail', via: 'files' });
    expect(slack.calls().map((x) => x.method)).toEqual(['chat.postMessage', 'files.getUploadURLExternal', 'files.completeUploadExternal']);
  });

  it('injected failures: rate limits reach the client as Slack sends them', async () => {
    const c = new WebClient(slack.token, { slackApiUrl: slack.apiUrl, retryConfig: { retries: 0 }, rejectRateLimitedCalls: true });
    slack.failNext('chat.postMessage', { status: 429, retryAfter: 7 });
    await expect(c.chat.postMessage({ channel: 'C0OPS0001', text: 'x' })).rejects.toMatchObject({ code: ErrorCode.RateLimitedError, retryAfter: 7 });
    slack.failNext('chat.postMessage', { error: 'fatal_error' });
    await expect(c.chat.postMessage({ channel: 'C0OPS0001', text: 'x' })).rejects.toMatchObject({ data: { error: 'fatal_error' } });
    expect((await c.chat.postMessage({ channel: 'C0OPS0001', text: 'x' })).ok).toBe(true);
  });
});

describe('response_url', () => {
  it('records posts, validates blocks, and handles replace_original / delete_original / in_channel', async () => {
    const ts = String((await form('chat.postMessage', { channel: 'C0OPS0001', text: 'with buttons', blocks: JSON.stringify([section('plan')]) }))['ts']);
    const url = slack.responseUrl('click-1', { channel: 'C0OPS0001', user: 'U0ALICE01', messageTs: ts });
    expect(url).toBe(`${slack.baseUrl}/response/click-1`);
    const post = (body: unknown) => fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

    let res = await post({ response_type: 'ephemeral', replace_original: false, text: 'only you see this' });
    expect(res.status).toBe(200);
    expect(slack.ephemerals({ user: 'U0ALICE01' }).map((e) => e.text)).toEqual(['only you see this']);

    res = await post({ replace_original: true, text: 'decided', blocks: [section('approved by <@U0ALICE01>')] });
    expect(res.status).toBe(200);
    expect(slack.message('C0OPS0001', ts)).toMatchObject({ text: 'decided', blocks: [section('approved by <@U0ALICE01>')] });

    res = await post({ replace_original: true, text: 'x', blocks: [section('')] });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ ok: false, error: 'invalid_blocks', errors: expect.arrayContaining(['must be more than 0 characters [json-pointer:/blocks/0/text/text]']) });
    expect(slack.message('C0OPS0001', ts)?.text).toBe('decided');

    res = await post({ response_type: 'in_channel', text: 'everyone sees this' });
    expect(res.status).toBe(200);
    expect(slack.messages('C0OPS0001').map((m) => m.text)).toEqual(['decided', 'everyone sees this']);

    res = await post({ delete_original: true });
    expect(res.status).toBe(200);
    expect(slack.message('C0OPS0001', ts)?.deleted).toBe(true);

    expect(slack.responses('click-1').map((p) => p.outcome)).toEqual(['ephemeral', 'replaced', 'rejected', 'in_channel', 'deleted']);
    // Five uses per response_url, as Slack allows.
    res = await post({ text: 'sixth' });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ ok: false, error: 'used_url' });
  });

  it('unknown response urls are expired', async () => {
    const res = await fetch(`${slack.baseUrl}/response/nope`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"text":"x"}' });
    expect(res.status).toBe(404);
    expect(await slack.waitForResponse((p) => p.id === 'nope', 100)).toMatchObject({ outcome: 'rejected', error: 'expired_url' });
  });
});
