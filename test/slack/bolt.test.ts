/**
 * Bolt end to end against the local Slack API: signed slash commands and button clicks
 * built by test/support/slack-signing.ts reach Bolt's HTTP receiver, whose listeners
 * answer through respond() (response_url) and the WebClient (slackApiUrl).
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { App, LogLevel, verifySlackRequest } from '@slack/bolt';
import { startSlackApi, type SlackApiServer } from '../support/slack-api/index.js';
import { blockActionsPayload, buildBlockActionsBody, buildSlashCommandBody, signSlackRequest, signedFormHeaders } from '../support/slack-signing.js';

const SECRET = 'test-signing-secret-8f2e';

let slack: SlackApiServer;
let app: App;
let boltUrl: string;

beforeAll(async () => {
  slack = await startSlackApi({ users: [{ id: 'U0ALICE01', name: 'alice' }] });
  app = new App({
    token: slack.token,
    signingSecret: SECRET,
    logLevel: LogLevel.ERROR,
    clientOptions: { slackApiUrl: slack.apiUrl, retryConfig: { retries: 0 } },
  });
  app.command('/conntrack', async ({ ack, command, respond, client }) => {
    await ack();
    await respond({ response_type: 'ephemeral', text: `queued: ${command.text}` });
    await client.chat.postMessage({
      channel: command.channel_id,
      text: `Checking ${command.text}`,
      blocks: [
        { type: 'section', text: { type: 'mrkdwn', text: `Checking *${command.text}*` } },
        { type: 'actions', elements: [{ type: 'button', action_id: 'plan_approve', value: 'plan-0001', style: 'primary', text: { type: 'plain_text', text: 'Approve' } }] },
      ],
    });
  });
  app.action('plan_approve', async ({ ack, body, respond }) => {
    await ack();
    await respond({ replace_original: true, text: `approved by ${body.user.id}`, blocks: [{ type: 'section', text: { type: 'mrkdwn', text: `Approved by <@${body.user.id}>` } }] });
  });
  const server = (await app.start({ port: 0, host: '127.0.0.1' })) as Server;
  boltUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/slack/events`;
});

afterAll(async () => {
  await app.stop();
  await slack.close();
});

/** Bolt's verifier types the timestamp header as a number (it is one after its own parsing). */
function forBolt(h: { 'x-slack-signature': string; 'x-slack-request-timestamp': string }): { 'x-slack-signature': string; 'x-slack-request-timestamp': number } {
  return { 'x-slack-signature': h['x-slack-signature'], 'x-slack-request-timestamp': Number(h['x-slack-request-timestamp']) };
}

describe('signing helpers', () => {
  it('produce headers that Bolt\'s own verifier accepts, and only for the signed body', () => {
    const body = buildSlashCommandBody({ text: 'check gw-3' });
    const headers = signSlackRequest(SECRET, body);
    expect(headers['x-slack-signature']).toMatch(/^v0=[0-9a-f]{64}$/);
    expect(() => verifySlackRequest({ signingSecret: SECRET, body, headers: forBolt(headers) })).not.toThrow();
    expect(() => verifySlackRequest({ signingSecret: SECRET, body: `${body}x`, headers: forBolt(headers) })).toThrow(/signature mismatch/);
    expect(() => verifySlackRequest({ signingSecret: 'other', body, headers: forBolt(headers) })).toThrow(/signature mismatch/);
    const stale = signSlackRequest(SECRET, body, Math.floor(Date.now() / 1000) - 600);
    expect(() => verifySlackRequest({ signingSecret: SECRET, body, headers: forBolt(stale) })).toThrow(/stale/);
  });

  it('build bodies in Slack\'s form encoding', () => {
    const body = buildSlashCommandBody({ text: 'check gw-3', userId: 'U0ALICE01', channelId: 'C0OPS0001', responseUrl: 'http://x/response/1', triggerId: '1.2.3', teamId: 'T1' });
    const fields = new URLSearchParams(body);
    expect(body).toContain('command=%2Fconntrack');
    expect(body).toContain('text=check+gw-3');
    expect(Object.fromEntries(fields)).toMatchObject({ command: '/conntrack', text: 'check gw-3', user_id: 'U0ALICE01', channel_id: 'C0OPS0001', response_url: 'http://x/response/1', trigger_id: '1.2.3', team_id: 'T1' });
    const click = new URLSearchParams(buildBlockActionsBody({ actionId: 'plan_approve', value: 'plan-1', messageTs: '1.000001' }));
    const payload: unknown = JSON.parse(click.get('payload') ?? 'null');
    expect(payload).toMatchObject({ type: 'block_actions', actions: [{ type: 'button', action_id: 'plan_approve', value: 'plan-1' }], container: { message_ts: '1.000001' } });
  });
});

describe('Bolt against the local Slack API', () => {
  it('a signed slash command is acknowledged, answered through response_url and the Web API', async () => {
    const responseUrl = slack.responseUrl('cmd-1', { channel: 'C0OPS0001', user: 'U0ALICE01' });
    const body = buildSlashCommandBody({ text: 'check gw-3', userId: 'U0ALICE01', channelId: 'C0OPS0001', responseUrl });
    const res = await fetch(boltUrl, { method: 'POST', headers: signedFormHeaders(SECRET, body), body });
    expect(res.status).toBe(200);
    const eph = await slack.waitForResponse((p) => p.id === 'cmd-1');
    expect(eph).toMatchObject({ outcome: 'ephemeral', status: 200, body: { text: 'queued: check gw-3' } });
    const post = await slack.waitForCall('chat.postMessage');
    expect(post.response.ok).toBe(true);
    expect(slack.messages('C0OPS0001').at(-1)?.text).toBe('Checking check gw-3');
  });

  it('a bad signature or a stale timestamp is refused before any listener runs', async () => {
    const before = slack.calls().length;
    const body = buildSlashCommandBody({ text: 'check gw-9', responseUrl: slack.responseUrl('cmd-bad') });
    const forged = await fetch(boltUrl, { method: 'POST', headers: signedFormHeaders('wrong-secret', body), body });
    expect(forged.status).toBe(401);
    const stale = await fetch(boltUrl, { method: 'POST', headers: signedFormHeaders(SECRET, body, Math.floor(Date.now() / 1000) - 600), body });
    expect(stale.status).toBe(401);
    await new Promise((r) => setTimeout(r, 100));
    expect(slack.calls().length).toBe(before);
    expect(slack.responses('cmd-bad')).toEqual([]);
  });

  it('a signed button click replaces the original message through respond()', async () => {
    const posted = await app.client.chat.postMessage({ channel: 'C0OPS0001', text: 'plan', blocks: [{ type: 'section', text: { type: 'mrkdwn', text: 'plan' } }] });
    const ts = posted.ts ?? '';
    const responseUrl = slack.responseUrl('click-1', { channel: 'C0OPS0001', user: 'U0ALICE01', messageTs: ts });
    const payload = blockActionsPayload({ actionId: 'plan_approve', value: 'plan-0001', messageTs: ts, userId: 'U0ALICE01', responseUrl });
    const body = new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
    const res = await fetch(boltUrl, { method: 'POST', headers: signedFormHeaders(SECRET, body), body });
    expect(res.status).toBe(200);
    await slack.waitForResponse((p) => p.id === 'click-1');
    expect(slack.message('C0OPS0001', ts)).toMatchObject({ text: 'approved by U0ALICE01', blocks: [{ type: 'section', text: { type: 'mrkdwn', text: 'Approved by <@U0ALICE01>' } }] });
  });
});
