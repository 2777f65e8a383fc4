/**
 * The bot token goes with a file download only to Slack (https, slack.com and its subdomains)
 * or to the Slack API server the bot is configured with (SLACK_API_URL: tests, local
 * development): a file object whose url_private_download points anywhere else is not fetched.
 */
import { describe, expect, it } from 'vitest';
import { trustedDownload } from '../../../src/slack/files/shared-file-source.js';

describe('trustedDownload', () => {
  it('takes Slack file hosts over https', () => {
    expect(trustedDownload('https://files.slack.com/files-pri/T0-F1/download/gw-3.saved', undefined)).toBe(true);
    expect(trustedDownload('https://slack.com/files-pri/T0-F1/download/gw-3.saved', undefined)).toBe(true);
  });

  it('refuses plain http, look-alike hosts and anything else', () => {
    expect(trustedDownload('http://files.slack.com/files-pri/T0-F1/download/x', undefined)).toBe(false);
    expect(trustedDownload('https://files.slack.com.evil.example/x', undefined)).toBe(false);
    expect(trustedDownload('https://evilslack.com/x', undefined)).toBe(false);
    expect(trustedDownload('https://198.18.0.9/x', undefined)).toBe(false);
    expect(trustedDownload('not a url', undefined)).toBe(false);
  });

  it('takes the configured API server origin, and only its origin', () => {
    expect(trustedDownload('http://127.0.0.1:4321/files-pri/T0-F1/download/x', 'http://127.0.0.1:4321/api/')).toBe(true);
    expect(trustedDownload('http://127.0.0.1:4322/files-pri/T0-F1/download/x', 'http://127.0.0.1:4321/api/')).toBe(false);
  });
});
