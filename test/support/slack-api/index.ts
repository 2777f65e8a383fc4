/**
 * Local Slack Web API for tests. Typical use:
 *
 *   const slack = await startSlackApi({ users: [{ id: 'U0ALICE01', name: 'alice' }] });
 *   const client = new WebClient(slack.token, { slackApiUrl: slack.apiUrl, retryConfig: { retries: 0 } });
 *   // or Bolt: new App({ token: slack.token, signingSecret, clientOptions: { slackApiUrl: slack.apiUrl } })
 *   const responseUrl = slack.responseUrl('cmd-1', { channel: 'C0OPS0001', user: 'U0ALICE01' });
 *   ... drive the bot (signed requests: test/support/slack-signing.ts) ...
 *   const post = await slack.waitForCall('chat.postMessage', (c) => c.response.ok);
 *   expect(slack.message('C0OPS0001', String(post.response['ts']))?.blocks).toEqual(...);
 *   await slack.close();
 */
export {
  FILE_LIMITS,
  SlackApiServer,
  startSlackApi,
  type ChannelInfo,
  type DownloadRecord,
  type EphemeralMessage,
  type InjectedFailure,
  type MessageVersion,
  type RecordedCall,
  type ResponseUrlContext,
  type ResponseUrlPost,
  type SlackApiServerOptions,
  type SlackArgs,
  type SharedFileInput,
  type SharedFileRecord,
  type SlackResponse,
  type StoredMessage,
  type UploadedFile,
  type UserInfo,
  type UsergroupInfo,
} from './server.js';
export {
  SLACK_DOCUMENTED_LIMITS,
  assertValidBlocks,
  formatIssueMessages,
  formatIssues,
  validateBlocks,
  validateMessage,
  type BlockKitIssue,
  type MessageCheck,
  type ValidateOptions,
} from './block-kit-validator.js';
export { joinedCodeBlocks } from './code-blocks.js';
export { SOCKET_MODE_ACK_DEADLINE_MS, SocketModeServer, type DisconnectReason, type EnvelopeOutcome, type EnvelopeRecord, type SocketConnectionRecord } from './socket-mode.js';
