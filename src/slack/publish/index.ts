/**
 * Writing to Slack: the one message writer (message-writer.ts) and the publishers the
 * workers get for jobs that came from Slack (publishers.ts: check-message.ts, apply-message.ts).
 */
export { slackPublishers, slackWebClient } from './publishers.js';
export { SlackMessageWriter, SlackUploadError, toSlackBlocks, type FileShare, type FileToUpload, type MessagePlace, type UploadedFileRef } from './message-writer.js';
