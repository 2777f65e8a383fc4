/**
 * A saved file shared in Slack, end to end with real parts: the collect script run over real
 * OpenSSH on a filled lab gateway (`ssh root@gw sh -s < collect.sh > gw.saved`), the file shared
 * in a channel of the local Slack API server, a signed Events API `file_shared` delivery into the
 * real Bolt app (HTTP mode), a BullMQ job on real Redis, the worker's files.info and streamed
 * download with the bot token, and the posted report read back from the local server: the same
 * findings and plan as `conntrack-ops analyze` on the same file, marked OFFLINE, no buttons.
 * Also: a file named *.saved that is not one gets a clear reply; a screenshot is left alone (not
 * even downloaded); a file in a channel without the bot is not read; a file above
 * SAVED_FILE_MAX_BYTES is refused before its download; the download URL refuses a request
 * without the bot token. Figures (console): event -> report time and size; RSS growth of this
 * process (Bolt app + worker + local Slack server) while a large generated saved file streams.
 */
import { execFile } from 'node:child_process';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { App } from '@slack/bolt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { fillScenario, labDown, labUp, type Lab } from '../../lab/index.js';
import { collectOverSsh } from '../support/collect-over-ssh.js';
import { loadEnv } from '../../src/config/env.js';
import { parseInventory } from '../../src/config/inventory.js';
import { COLLECT_SCRIPT } from '../../src/diagnostics/collect-script.js';
import { savedFileJobId } from '../../src/queue/jobs.js';
import { openRuntime, type Runtime } from '../../src/runtime.js';
import { createSlackApp } from '../../src/slack/app.js';
import { esc } from '../../src/slack/blocks/kit.js';
import { slackPublishers } from '../../src/slack/publish/index.js';
import type { SavedFileResult } from '../../src/worker/saved-file-processor.js';
import { startWorkers, type RunningWorkers } from '../../src/worker/start.js';
import { writeGeneratedSaved } from '../cli/helpers/saved-file.js';
import { startSlackApi, type SharedFileRecord, type SlackApiServer, type StoredMessage } from '../support/slack-api/index.js';
import { buildEventBody, fileSharedEvent, signedJsonHeaders } from '../support/slack-signing.js';
import { waitUntil } from '../support/wait-until.js';

const SECRET = 'saved-file-signing-secret-7d2e';
const CHANNEL = 'C0OPS0001';
const ELSEWHERE = 'C0ELSE001'; // the bot is not a member
const ALICE = 'U0ALICE01';
const MAX_BYTES = 512 * 1024 * 1024;
const LARGE_LINES = Number(process.env['CTO_SAVED_LARGE_LINES'] ?? 2_000_000);

const execFileP = promisify(execFile);
let slack: SlackApiServer;
let lab: Lab;
let rt: Runtime;
let app: App;
let workers: RunningWorkers;
let url: string;
let dir: string;
let savedPath: string;
let inventoryPath: string;

interface CliFinding {
  id: string;
  severity: string;
  title: string;
}
interface CliOffline {
  offline: { collectedAt: string; lines: number; approvable: boolean };
  findings: CliFinding[];
  plan: { steps: { key: string; proposed: string }[] };
}

async function deliver(event: Record<string, unknown>): Promise<{ status: number; ms: number }> {
  const body = buildEventBody(event);
  const started = performance.now();
  const res = await fetch(url, { method: 'POST', headers: signedJsonHeaders(SECRET, body), body });
  await res.text();
  return { status: res.status, ms: performance.now() - started };
}

/** The event_ts of each file's (last) file_shared delivery, to find its job. */
const sharedAt = new Map<string, string>();

async function share(file: SharedFileRecord): Promise<{ status: number; ms: number }> {
  const eventTs = (Date.now() / 1000).toFixed(6);
  sharedAt.set(file.id, eventTs);
  return deliver(fileSharedEvent({ fileId: file.id, channelId: file.channel, userId: file.user, eventTs }));
}

async function jobResult(file: SharedFileRecord, timeoutMs = 120_000): Promise<SavedFileResult> {
  return waitUntil(
    `the saved-file job of ${file.name}`,
    async () => {
      const job = await rt.queues.saved.getJob(savedFileJobId({ fileId: file.id, channel: file.channel, eventTs: sharedAt.get(file.id) ?? '' }));
      if (!job) return undefined;
      if (job.failedReason && job.attemptsMade >= (job.opts.attempts ?? 1)) return { fileId: file.id, outcome: 'refused', reason: job.failedReason } satisfies SavedFileResult;
      return job.finishedOn ? (job.returnvalue as SavedFileResult) : undefined;
    },
    timeoutMs,
    { everyMs: 50 },
  );
}

function repliesTo(file: SharedFileRecord): StoredMessage[] {
  return slack.replies(file.channel, file.ts).filter((m) => m.user === slack.bot.userId);
}

const blockText = (m: StoredMessage): string => JSON.stringify(m.blocks);
const hasButtons = (m: StoredMessage): boolean =>
  (m.blocks as { type: string; elements?: { type: string }[] }[]).some((b) => b.type === 'actions' || (b.elements ?? []).some((e) => e.type === 'button'));


beforeAll(async () => {
  slack = await startSlackApi({
    channels: [
      { id: CHANNEL, name: 'ops' },
      { id: ELSEWHERE, name: 'elsewhere', botIsMember: false },
    ],
    users: [{ id: ALICE, name: 'alice' }],
  });
  dir = await mkdtemp(join(tmpdir(), 'cto-slack-saved-'));
  lab = await labUp({ clients: 2, sourcesPerClient: 4 });
  await fillScenario(lab, ['heavy-hitter', 'timewait'], { heavyHitterFlows: 4000, timewait: 4000 });
  const scriptPath = join(dir, 'collect.sh');
  await writeFile(scriptPath, COLLECT_SCRIPT);
  savedPath = join(dir, `${lab.name}.saved`);
  const collected = await collectOverSsh(lab.sshTarget, scriptPath, savedPath);
  if (collected.code !== 0) throw new Error(`collect over ssh exited ${collected.code}: ${collected.stderr}`);
  // warn from 1 %: the plan has steps with proposed values to compare (as `analyze --gateway` reads them)
  inventoryPath = join(dir, 'inventory.yml');
  const yaml = stringify({ gateways: { [lab.name]: { ...lab.inventoryEntry, thresholds: { warnPercent: 1 } } } });
  await writeFile(inventoryPath, yaml);
  const env = loadEnv({
    SLACK_MODE: 'http',
    SLACK_BOT_TOKEN: slack.token,
    SLACK_SIGNING_SECRET: SECRET,
    SLACK_API_URL: slack.apiUrl,
    INVENTORY: inventoryPath,
    SAVED_FILE_MAX_BYTES: String(MAX_BYTES),
    LOG_LEVEL: 'error',
    PATH: process.env.PATH,
  });
  rt = await openRuntime(env, { inventory: parseInventory(yaml, inventoryPath) });
  app = createSlackApp({ rt, env, clientOptions: { retryConfig: { retries: 0 } } });
  const server = (await app.start({ port: 0, host: '127.0.0.1' } as never)) as unknown as Server;
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/slack/events`;
  workers = startWorkers(rt, { publishers: slackPublishers(rt, env), concurrency: 1, only: ['saved'] });
}, 240_000);

afterAll(async () => {
  await workers?.close();
  await app?.stop();
  await rt?.close();
  await slack?.close();
  if (lab) await labDown(lab);
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('a saved file shared in Slack', () => {
  it('is analysed like `conntrack-ops analyze`: the report in its thread, OFFLINE with its time, no buttons', async () => {
    const content = await readFile(savedPath);
    const lines = content.toString('utf8').split('\n').length - 1;
    const file = await slack.shareFile({ name: `${lab.name}.saved`, channel: CHANNEL, user: ALICE, content, comment: 'from the customer site' });
    const t0 = performance.now();
    const ack = await share(file);
    expect(ack.status).toBe(200);
    expect(ack.ms).toBeLessThan(1000);
    const report = await waitUntil('the offline report in the file thread', () => repliesTo(file).find((m) => /OFFLINE/.test(blockText(m))), 60_000, { everyMs: 20 });
    const eventToReportMs = Math.round(performance.now() - t0);

    const { stdout } = await execFileP(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'analyze', savedPath, '--json', '--gateway', lab.name, '-i', inventoryPath], {
      maxBuffer: 64 * 1024 * 1024,
      env: { ...process.env, LOG_LEVEL: 'silent' },
    });
    const cli = JSON.parse(stdout) as CliOffline;
    console.log(
      `slack saved file: ${content.length.toLocaleString('en-US')} bytes, ${lines.toLocaleString('en-US')} lines; ack ${Math.round(ack.ms)} ms; event -> report posted ${eventToReportMs} ms; ` +
        `findings ${cli.findings.map((f) => f.id).join(',')}; plan ${cli.plan.steps.map((s) => s.key).join(',')}`,
    );

    // where: a reply in the thread of the file's message
    expect(report.threadTs).toBe(file.ts);
    const text = blockText(report);
    // OFFLINE, the time the file was taken (the gateway's clock), not approvable, no button
    expect(cli.offline.approvable).toBe(false);
    expect(text).toMatch(/OFFLINE/);
    expect(text).toMatch(/not approvable/);
    expect(text).toContain(new Date(cli.offline.collectedAt).toISOString().replace('.000Z', 'Z'));
    expect(text).toContain(cli.offline.lines.toLocaleString('en-US'));
    expect(hasButtons(report)).toBe(false);
    expect(report.text).toMatch(/^OFFLINE/);

    // the same findings as the terminal's analyze, in the same order
    expect(cli.findings.length).toBeGreaterThan(0);
    const findingBlocks = (report.blocks as { block_id?: string; text?: { text: string } }[]).filter((b) => /^finding_\d+$/.test(b.block_id ?? ''));
    expect(findingBlocks).toHaveLength(cli.findings.length);
    cli.findings.forEach((f, i) => expect(findingBlocks[i]?.text?.text).toContain(esc(f.title)));
    expect(cli.findings.some((f) => f.id === 'heavy-hitter')).toBe(true);
    // and the same plan steps
    expect(cli.plan.steps.length).toBeGreaterThan(0);
    for (const step of cli.plan.steps) {
      expect(text).toContain(esc(step.key));
      expect(text).toContain(esc(step.proposed.split('\n')[0] ?? '').slice(0, 20));
    }

    // Slack's retry of the same event (same event_ts) is the same job: no second download, no second report
    const retry = await deliver(fileSharedEvent({ fileId: file.id, channelId: file.channel, userId: file.user, eventTs: sharedAt.get(file.id) ?? '' }));
    expect(retry.status).toBe(200);
    expect((await jobResult(file)).outcome).toBe('analysed');
    await new Promise((r) => setTimeout(r, 500));
    expect(repliesTo(file).filter((m) => /OFFLINE/.test(blockText(m)))).toHaveLength(1);

    // the bot downloaded it once, with its token
    const downloads = slack.downloads(file.id);
    expect(downloads.map((d) => [d.status, d.token])).toEqual([[200, slack.token]]);
  }, 180_000);

  it('the download URL refuses a request without the bot token (so the bot must be sending it)', async () => {
    const file = await slack.shareFile({ name: 'any.saved', channel: CHANNEL, user: ALICE, content: Buffer.from('x\n') });
    const bare = await fetch(slack.downloadUrl(file));
    expect(bare.status).toBe(403);
    const wrong = await fetch(slack.downloadUrl(file), { headers: { authorization: 'Bearer xoxb-not-the-bot' } });
    expect(wrong.status).toBe(403);
    const right = await fetch(slack.downloadUrl(file), { headers: { authorization: `Bearer ${slack.token}` } });
    expect(right.status).toBe(200);
    expect(await right.text()).toBe('x\n');
  });

  it('a file named *.saved that is not a saved file gets a clear reply in its thread', async () => {
    const file = await slack.shareFile({ name: 'gw-notes.saved', channel: CHANNEL, user: ALICE, content: Buffer.from('conntrack count was 262144 at noon\n') });
    expect((await share(file)).status).toBe(200);
    const reply = await waitUntil('the refusal', () => repliesTo(file)[0], 30_000);
    expect(reply.text).toMatch(/Not analysed/);
    expect(blockText(reply)).toMatch(/not a conntrack-ops saved file/);
    expect(blockText(reply)).toMatch(/collect-script/);
    expect(hasButtons(reply)).toBe(false);
    expect((await jobResult(file)).outcome).toBe('refused');
  });

  it('a screenshot or a log shared in the channel is left alone (the screenshot not even downloaded)', async () => {
    const png = await slack.shareFile({ name: 'graph.png', channel: CHANNEL, user: ALICE, content: Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a]), mimetype: 'image/png' });
    const log = await slack.shareFile({ name: 'syslog.txt', channel: CHANNEL, user: ALICE, content: Buffer.from('Dec  4 kernel: nf_conntrack: table full, dropping packet\n') });
    await share(png);
    await share(log);
    expect((await jobResult(png)).outcome).toBe('ignored');
    expect((await jobResult(log)).outcome).toBe('ignored');
    expect(slack.downloads(png.id)).toEqual([]);
    expect(repliesTo(png)).toEqual([]);
    expect(repliesTo(log)).toEqual([]);
  });

  it('a saved file in a channel the bot is not in is not read, and nothing is posted there', async () => {
    const file = await slack.shareFile({ name: `${lab.name}.saved`, channel: ELSEWHERE, user: ALICE, content: await readFile(savedPath) });
    expect((await share(file)).status).toBe(200);
    const result = await jobResult(file);
    expect(result.outcome).toBe('ignored');
    expect(slack.downloads(file.id)).toEqual([]);
    expect(slack.messages(ELSEWHERE).filter((m) => m.user === slack.bot.userId)).toEqual([]);
  });

  it('a file above SAVED_FILE_MAX_BYTES is refused with a reply, before any download', async () => {
    const path = join(dir, 'huge.saved');
    await writeFile(path, '');
    await truncate(path, MAX_BYTES + 1); // sparse: no disk used
    const file = await slack.shareFile({ name: 'huge.saved', channel: CHANNEL, user: ALICE, content: { path } });
    await share(file);
    const reply = await waitUntil('the size refusal', () => repliesTo(file)[0], 30_000);
    expect(blockText(reply)).toMatch(/more than this bot reads/);
    expect(blockText(reply)).toContain(MAX_BYTES.toLocaleString('en-US'));
    expect(slack.downloads(file.id)).toEqual([]);
  });

  it('delivered over Socket Mode instead: the envelope is acked at once and the same report follows', async () => {
    const env = loadEnv({
      SLACK_MODE: 'socket',
      SLACK_BOT_TOKEN: slack.token,
      SLACK_APP_TOKEN: slack.appTokens[0],
      SLACK_API_URL: slack.apiUrl,
      INVENTORY: inventoryPath,
      LOG_LEVEL: 'error',
      PATH: process.env.PATH,
    });
    const socketApp = createSlackApp({ rt, env, clientOptions: { retryConfig: { retries: 0 } } });
    await socketApp.start({ port: 0, host: '127.0.0.1' } as never);
    try {
      await slack.socketMode.waitUntil('a Socket Mode connection', () => slack.socketMode.openConnections().some((c) => c.helloAt !== null));
      const file = await slack.shareFile({ name: `${lab.name}.saved`, channel: CHANNEL, user: ALICE, content: await readFile(savedPath) });
      const t0 = performance.now();
      const envelope = slack.socketMode.eventsApi(JSON.parse(buildEventBody(fileSharedEvent({ fileId: file.id, channelId: CHANNEL, userId: ALICE }))) as Record<string, unknown>);
      await slack.socketMode.waitUntil('the envelope acked', () => envelope.outcome !== 'pending');
      expect(envelope.outcome).toBe('acked');
      const ackMs = (envelope.ackAt ?? 0) - (envelope.deliveredAt ?? 0);
      const report = await waitUntil('the report', () => repliesTo(file).find((m) => /OFFLINE/.test(blockText(m))), 60_000, { everyMs: 20 });
      console.log(`slack saved file over Socket Mode: envelope acked ${ackMs} ms after delivery; event -> report ${Math.round(performance.now() - t0)} ms`);
      expect(ackMs).toBeLessThan(1000);
      expect(hasButtons(report)).toBe(false);
    } finally {
      await socketApp.stop();
    }
  });

  it(`a large saved file (${LARGE_LINES.toLocaleString('en-US')} generated lines) streams through in bounded memory`, async () => {
    const path = join(dir, 'big-gw.saved');
    await writeGeneratedSaved(path, LARGE_LINES);
    const bytes = (await stat(path)).size;
    const file = await slack.shareFile({ name: 'big-gw.saved', channel: CHANNEL, user: ALICE, content: { path } });
    global.gc?.();
    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 25);
    const t0 = performance.now();
    try {
      await share(file);
      const report = await waitUntil('the large file report', () => repliesTo(file).find((m) => /OFFLINE/.test(blockText(m))), 300_000, { everyMs: 50 });
      const ms = Math.round(performance.now() - t0);
      const result = await jobResult(file);
      console.log(
        `slack large saved file: ${bytes.toLocaleString('en-US')} bytes, ${result.lines?.toLocaleString('en-US')} lines; event -> report ${ms} ms ` +
          `(${Math.round(((result.lines ?? 0) / ms) * 1000).toLocaleString('en-US')} lines/s); RSS of this process ${Math.round(before / 2 ** 20)} MB before, peak +${Math.round((peak - before) / 2 ** 20)} MB`,
      );
      expect(result.outcome).toBe('analysed');
      expect(result.bytes).toBe(bytes);
      expect(hasButtons(report)).toBe(false);
      expect(result.lines).toBeGreaterThan(LARGE_LINES);
      // streamed, never held whole: the growth stays well under the file's size
      expect(peak - before).toBeLessThan(Math.max(150 * 2 ** 20, bytes / 2));
    } finally {
      clearInterval(sampler);
    }
  }, 400_000);
});
