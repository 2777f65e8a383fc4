/**
 * Fault: a compromised gateway (defect 6, and the terminal part of 19). A real lab gateway
 * whose `conntrack` is swapped, in the gateway's own mount namespace (the one its sshd and
 * every SSH session run in), for a wrapper that adds hostile entries to the real dump, or
 * fails with hostile stderr. The real check reads it over real SSH; the real check
 * publisher posts to the local Slack Web API. Every recorded Slack body (text, blocks,
 * file titles and comments, uploaded files) is scanned: no `<!…>` mention, `<@…>` or
 * `<http…>` link from the gateway may render, and no backtick may close a code fence.
 */
import { execFile } from 'node:child_process';
import { chmod, copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Redis } from 'ioredis';
import { webApi } from '@slack/bolt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labDown, labUp, type Lab } from '../../lab/index.js';
import { runCheck } from '../../src/check/run-check.js';
import { EpisodeLines } from '../../src/cli/episode-lines.js';
import { renderReportText } from '../../src/cli/render-text.js';
import type { CheckReport } from '../../src/core/model.js';
import { parseConntrackLine } from '../../src/diagnostics/parsers/conntrack-line.js';
import { channelText, GatewayError } from '../../src/gateway/errors.js';
import { SessionPool } from '../../src/gateway/session-pool.js';
import { openRedis, type RedisHandle } from '../../src/infra/redis.js';
import { SlackCheckPublisher } from '../../src/slack/publish/check-message.js';
import { SlackMessageWriter } from '../../src/slack/publish/message-writer.js';
import { PlanStore } from '../../src/store/plan-store.js';
import type { StepState } from '../../src/worker/ports.js';
import { hideProcNet } from '../support/gateway-mount-ns.js';
import { startSlackApi, type SlackApiServer } from '../support/slack-api/index.js';

const run = promisify(execFile);
const CHANNEL = 'C0OPS0001';
const EVIL = '<!channel> <!here> <!everyone> <@U0EVIL01> <https://evil.example/login|re-auth>';
const FENCE_BREAK = '``` *you have been logged out* ```';
const TERMINAL_ATTACK = '\u001b]0;pwned\u0007\u001b[2J\u009b31m';

/** Entries a hostile gateway adds to the dump: markup where addresses, states and protocols go. */
const HOSTILE_LINES = [
  'tcp      6 431999 ESTABLISHED src=<!channel> dst=198.18.9.2 sport=40000 dport=443 src=198.18.9.2 dst=<!channel> sport=443 dport=40000 [ASSURED] mark=0 use=1',
  'tcp      6 431999 ESTABLISHED src=<https://evil.example/login|re-auth> dst=198.18.9.2 sport=40001 dport=443 src=198.18.9.2 dst=198.18.9.1 sport=443 dport=40001 [ASSURED] mark=0 use=1',
  'udp      17 27 src=198.18.9.1 dst=<@U0EVIL01> sport=5353 dport=53 [UNREPLIED] src=<@U0EVIL01> dst=198.18.9.1 sport=53 dport=5353 mark=0 use=1',
  'tcp      6 431999 ESTABLISHED src=198.18.9.1``` dst=198.18.9.2 sport=40002 dport=443 src=198.18.9.2 dst=198.18.9.1 sport=443 dport=40002 [ASSURED] mark=0 use=1',
  'tcp      6 431999 <!here> src=198.18.9.1 dst=198.18.9.2 sport=40003 dport=443 src=198.18.9.2 dst=198.18.9.1 sport=443 dport=40003 [ASSURED] mark=0 use=1',
  'x<!channel> 200 30 src=198.18.9.1 dst=198.18.9.2 src=198.18.9.2 dst=198.18.9.1 mark=0 use=1',
  'tcp      6 431999 ESTABLISHED src=2001:db8::<!here> dst=2001:db8::2 sport=40004 dport=443 src=2001:db8::2 dst=2001:db8::1 sport=443 dport=40004 [ASSURED] mark=0 use=1',
  `tcp      6 431999 ESTABLISHED src=198.18.9.1${TERMINAL_ATTACK} dst=198.18.9.2 sport=40005 dport=443 src=198.18.9.2 dst=198.18.9.1 sport=443 dport=40005 [ASSURED] mark=0 use=1`,
];

let lab: Lab;
let pool: SessionPool;
let slack: SlackApiServer;
let writer: SlackMessageWriter;
let handle: RedisHandle;
let redis: Redis;
let plans: PlanStore;
let wrapperDir: string;

/** The gateway-side switch: `fail` present makes `conntrack -L` fail with hostile stderr. */
async function setFailing(on: boolean): Promise<void> {
  if (on) await writeFile(join(wrapperDir, 'fail'), '1');
  else await rm(join(wrapperDir, 'fail'), { force: true });
}

beforeAll(async () => {
  lab = await labUp({ clients: 1, sourcesPerClient: 1 });
  wrapperDir = await mkdtemp(join(tmpdir(), 'cto-hostile-'));
  await chmod(wrapperDir, 0o755);
  const { stdout } = await run('sh', ['-c', 'command -v conntrack']);
  const realPath = stdout.trim();
  await copyFile(realPath, join(wrapperDir, 'conntrack.real'));
  await chmod(join(wrapperDir, 'conntrack.real'), 0o755);
  await writeFile(join(wrapperDir, 'hostile-lines'), `${HOSTILE_LINES.join('\n')}\n`);
  await writeFile(join(wrapperDir, 'stderr'), `conntrack v1.4.7 (conntrack-tools): ${EVIL} ${FENCE_BREAK} ${TERMINAL_ATTACK}\n`);
  const D = wrapperDir;
  await writeFile(
    join(D, 'conntrack'),
    [
      '#!/bin/sh',
      'case " $* " in',
      `  *" -L "*) if [ -e ${D}/fail ]; then cat ${D}/stderr >&2; exit 1; fi`,
      `    ${D}/conntrack.real "$@"; rc=$?; cat ${D}/hostile-lines; exit $rc ;;`,
      `  *) exec ${D}/conntrack.real "$@" ;;`,
      'esac',
      '',
    ].join('\n'),
  );
  await chmod(join(D, 'conntrack'), 0o755);
  // Only in the gateway's mount namespace (its sshd and every session it forks): the host keeps its conntrack.
  const sshd = lab.pids['sshd'];
  if (!sshd) throw new Error('lab has no sshd pid');
  await run('nsenter', ['-t', String(sshd), '-m', '--', 'mount', '--bind', join(D, 'conntrack'), realPath]);
  // The dump reads /proc/net/nf_conntrack where it exists: hide it, so the hostile `conntrack -L` is what the check reads.
  hideProcNet(lab);
  pool = new SessionPool({ healthIntervalMs: 5_000 });
  slack = await startSlackApi({ channels: [{ id: CHANNEL, name: 'ops' }] });
  writer = new SlackMessageWriter(new webApi.WebClient(slack.token, { slackApiUrl: slack.apiUrl, retryConfig: { retries: 0 } }));
  handle = await openRedis(process.env['REDIS_URL']);
  redis = handle.connect();
  plans = new PlanStore(redis, `{cto-test-hostile-${process.pid}}`);
}, 120_000);

afterAll(async () => {
  pool?.close();
  await slack?.close();
  redis?.disconnect();
  await handle?.stop();
  if (lab) await labDown(lab);
  if (wrapperDir) await rm(wrapperDir, { recursive: true, force: true });
});

/** The check as the worker runs it, its progress kept as the Slack steps. */
async function check(steps: StepState[]): Promise<CheckReport> {
  return runCheck({
    gatewayName: lab.name,
    config: lab.inventoryEntry,
    sessions: pool.provider,
    onProgress: (ev) => {
      const s = steps.find((x) => x.name === ev.step);
      if (s) Object.assign(s, { status: ev.status, ...(ev.detail !== undefined ? { detail: ev.detail } : {}) });
      else steps.push({ name: ev.step, status: ev.status, ...(ev.detail !== undefined ? { detail: ev.detail } : {}) });
    },
  });
}

/** Every text Slack received: call arguments (text, blocks, titles, comments) and uploaded files. */
function slackBodies(): string[] {
  return [...slack.calls().map((c) => JSON.stringify(c.args)), ...slack.uploadedFiles().map((f) => f.content?.toString('utf8') ?? '')];
}

/** Markup that would render: a special mention (`<!date^…>` is ours and harmless), a user mention of the gateway's, a link. */
function unescapedMarkup(bodies: string[]): string[] {
  return bodies.flatMap((b) => b.match(/<!(?!date\^)[^>]*>?|<@U0EVIL[^>]*>?|<https?:[^>]*>?/g) ?? []);
}

/** Every string under a `text` key of a value (message text, block texts). */
function textsOf(v: unknown): string[] {
  if (Array.isArray(v)) return v.flatMap(textsOf);
  if (v === null || typeof v !== 'object') return [];
  return Object.entries(v).flatMap(([k, x]) => (k === 'text' && typeof x === 'string' ? [x] : textsOf(x)));
}

/** Texts whose code fences a backtick breaks: a body holding one, or a run longer than a fence. */
function brokenFences(): string[] {
  return slack.calls().flatMap((c) => textsOf(c.args)).filter((t) => /````/.test(t) || t.split('```').some((part, i) => i % 2 === 1 && part.includes('`')));
}

describe('a hostile gateway', () => {
  it('the parser turns every hostile entry away: each is counted as unparsed, none becomes an entry', () => {
    for (const line of HOSTILE_LINES) expect(parseConntrackLine(line), line).toBeNull();
  });

  it('hostile entries in the real dump: counted unparsed; nothing from them renders in Slack or moves the terminal', async () => {
    await setFailing(false);
    const steps: StepState[] = [];
    const report = await check(steps);
    expect(report.table.unparsed).toBe(HOSTILE_LINES.length);
    for (const k of [...report.topSources, ...report.topDestinations]) expect(k.key).not.toMatch(/[<>`|]/);
    const plan = await plans.create({ report, requestedBy: 'U0ALICE01', origin: { kind: 'slack', channel: CHANNEL }, ttlMinutes: 30 });
    await new SlackCheckPublisher(writer, { kind: 'slack', channel: CHANNEL }).findings(report, plan);
    expect(slack.calls().length).toBeGreaterThan(0);
    expect(slack.calls().every((c) => c.response.ok)).toBe(true);
    expect(unescapedMarkup(slackBodies())).toEqual([]);
    const text = renderReportText(report);
    expect(text).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/);
  }, 120_000);

  it('hostile stderr from a failing gateway command: the failure is posted escaped, fences intact, the terminal line inert', async () => {
    slack.reset();
    await setFailing(true);
    const steps: StepState[] = [];
    let error: unknown;
    try {
      await check(steps);
    } catch (err) {
      error = err;
    } finally {
      await setFailing(false);
    }
    expect(error).toBeInstanceOf(Error);
    // The gateway's text really is in the error: this is what a compromised gateway sends.
    expect((error as Error).message).toContain('<!channel>');
    const p = new SlackCheckPublisher(writer, { kind: 'slack', channel: CHANNEL });
    await p.progress(lab.name, steps);
    await p.failed(lab.name, steps, channelText(error), error instanceof GatewayError ? error.hint : undefined);
    const bodies = slackBodies();
    expect(bodies.join('\n')).toContain('&lt;!channel&gt;');
    expect(unescapedMarkup(bodies)).toEqual([]);
    expect(brokenFences()).toEqual([]);
    expect(slack.calls().every((c) => c.response.ok)).toBe(true);

    // The same text on a terminal (`conntrack-ops watch` lines): visible, but no control character.
    const out: string[] = [];
    const sink = { write: (s: string) => out.push(s) } as unknown as NodeJS.WritableStream;
    new EpisodeLines(sink, 'text', new Set([lab.name])).checkFailed(lab.name, (error as Error).message);
    const line = out.join('');
    expect(line).toContain('\\x1b');
    expect(line.slice(0, -1)).not.toMatch(/[\u0000-\u0008\u000a-\u001f\u007f-\u009f]/);
  }, 120_000);
});
