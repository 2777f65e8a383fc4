/**
 * Slack's side of Socket Mode in the local Slack API server, driven by the real
 * @slack/socket-mode client: who may open a connection, and how each envelope ends
 * (acked in time, late, missing, or never delivered).
 */
import { SocketModeClient } from '@slack/socket-mode';
import { LogLevel } from '@slack/bolt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { slashCommandFields } from '../slack-signing.js';
import { startSlackApi, type SlackApiServer } from './index.js';

let slack: SlackApiServer;

beforeAll(async () => {
  slack = await startSlackApi({ users: [{ id: 'U0ALICE01', name: 'alice' }] });
});
afterAll(async () => {
  await slack.close();
});

async function open(token: string): Promise<Record<string, unknown>> {
  const res = await fetch(`${slack.apiUrl}apps.connections.open`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
  return (await res.json()) as Record<string, unknown>;
}

describe('apps.connections.open', () => {
  it('takes only an accepted app-level token', async () => {
    expect(await open(slack.token)).toEqual({ ok: false, error: 'not_allowed_token_type' });
    expect(await open('xapp-1-unknown')).toEqual({ ok: false, error: 'invalid_auth' });
    const ok = await open(slack.appTokens[0] ?? '');
    expect(ok['ok']).toBe(true);
    expect(String(ok['url'])).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/socket-mode\/[0-9a-f]+$/);
  });
});

describe('envelopes', () => {
  it('records each outcome: acked in time (its payload shown to the user), late, missing, and dispatch_failed with no connection', async () => {
    const lost = slack.socketMode.slashCommand(slashCommandFields({ text: 'before any connection' }));
    expect(lost.outcome).toBe('dispatch_failed');

    const client = new SocketModeClient({ appToken: slack.appTokens[0] ?? '', logLevel: LogLevel.ERROR, clientOptions: { slackApiUrl: slack.apiUrl } });
    client.on('slash_commands', ({ ack, body }: { ack: (r?: Record<string, unknown>) => Promise<void>; body: { text: string } }) => {
      if (body.text === 'fast') void ack({ text: 'on it' });
      if (body.text === 'slow') setTimeout(() => void ack(), 3300);
      // 'never': no ack at all.
    });
    await client.start();
    try {
      await slack.socketMode.waitUntil('hello', () => slack.socketMode.openConnections().length === 1);
      const fast = slack.socketMode.slashCommand(slashCommandFields({ text: 'fast' }));
      const slow = slack.socketMode.slashCommand(slashCommandFields({ text: 'slow' }));
      const never = slack.socketMode.slashCommand(slashCommandFields({ text: 'never' }));
      await slack.socketMode.waitUntil('every outcome', () => [fast, slow, never].every((e) => e.outcome !== 'pending') && slow.ackAt !== null, 6000);
      expect(fast.outcome).toBe('acked');
      expect(slow.outcome).toBe('late');
      expect(never.outcome).toBe('missing');
      expect(slack.ephemerals({ user: 'U0ALICE01' }).map((e) => e.text)).toEqual(['on it']);
      expect(slack.socketMode.strayMessages).toEqual([]);
    } finally {
      await client.disconnect();
    }
    await slack.socketMode.waitUntil('closed', () => slack.socketMode.connections().every((c) => c.closedAt !== null));
  }, 20_000);
});
