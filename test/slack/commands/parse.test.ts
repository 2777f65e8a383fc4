/** The `/conntrack` grammar: what a user may type, and the one-line reason when it is not. */
import { describe, expect, it } from 'vitest';
import { parseConntrackCommand } from '../../../src/slack/commands/parse.js';

describe('/conntrack grammar', () => {
  it('check, status, history, help', () => {
    expect(parseConntrackCommand('check gw-3')).toEqual({ ok: true, command: { kind: 'check', target: { all: false, gateway: 'gw-3' } } });
    expect(parseConntrackCommand('  CHECK   all ')).toEqual({ ok: true, command: { kind: 'check', target: { all: true } } });
    expect(parseConntrackCommand('status')).toEqual({ ok: true, command: { kind: 'status', gateway: null } });
    expect(parseConntrackCommand('history gw-3')).toEqual({ ok: true, command: { kind: 'history', gateway: 'gw-3' } });
  });

  it('watch <gw>|all [every 30s|2m|45], unwatch <gw>', () => {
    expect(parseConntrackCommand('watch gw-3')).toEqual({ ok: true, command: { kind: 'watch', target: { all: false, gateway: 'gw-3' }, intervalSeconds: null } });
    expect(parseConntrackCommand('watch all every 30s')).toEqual({ ok: true, command: { kind: 'watch', target: { all: true }, intervalSeconds: 30 } });
    expect(parseConntrackCommand('watch gw-3 every 2m')).toMatchObject({ ok: true, command: { intervalSeconds: 120 } });
    expect(parseConntrackCommand('watch gw-3 every 45')).toMatchObject({ ok: true, command: { intervalSeconds: 45 } });
    expect(parseConntrackCommand('watch gw-3 every 30 s')).toMatchObject({ ok: true, command: { intervalSeconds: 30 } });
    expect(parseConntrackCommand('unwatch gw-3')).toEqual({ ok: true, command: { kind: 'unwatch', gateway: 'gw-3' } });
  });

  it('incident [<gw>] [chart|close]', () => {
    expect(parseConntrackCommand('incident')).toEqual({ ok: true, command: { kind: 'incident', gateway: null, action: 'show' } });
    expect(parseConntrackCommand('incident gw-3')).toEqual({ ok: true, command: { kind: 'incident', gateway: 'gw-3', action: 'show' } });
    expect(parseConntrackCommand('Incident gw-3 CLOSE')).toEqual({ ok: true, command: { kind: 'incident', gateway: 'gw-3', action: 'close' } });
    expect(parseConntrackCommand('incident gw-3 chart')).toEqual({ ok: true, command: { kind: 'incident', gateway: 'gw-3', action: 'chart' } });
    expect(parseConntrackCommand('incident close')).toEqual({ ok: false, error: '`incident close` needs a gateway name: `incident <gateway> close`' });
    expect(parseConntrackCommand('incident gw-3 reopen')).toMatchObject({ ok: false, error: expect.stringContaining('incident <gateway> close') });
    expect(parseConntrackCommand('incident gw-3 close now')).toMatchObject({ ok: false, error: 'unexpected "now"' });
    expect(parseConntrackCommand('incident ;rm')).toMatchObject({ ok: false, error: expect.stringContaining('not a valid gateway name') });
  });

  it('refuses what it cannot read, with the reason', () => {
    expect(parseConntrackCommand('watch')).toEqual({ ok: false, error: '`watch` needs a gateway name' });
    expect(parseConntrackCommand('watch gw-3 often')).toMatchObject({ ok: false, error: expect.stringContaining('every 30s') });
    expect(parseConntrackCommand('watch gw-3 every 0s')).toMatchObject({ ok: false, error: 'the interval is 1 s to 60 min' });
    expect(parseConntrackCommand('watch gw-3 every 2h')).toMatchObject({ ok: false });
    expect(parseConntrackCommand('watch gw-3 every 61m')).toMatchObject({ ok: false, error: 'the interval is 1 s to 60 min' });
    expect(parseConntrackCommand('unwatch gw-3 now')).toMatchObject({ ok: false, error: expect.stringContaining('unexpected') });
    expect(parseConntrackCommand('watch ;rm -rf /')).toMatchObject({ ok: false, error: expect.stringContaining('not a valid gateway name') });
    expect(parseConntrackCommand('x'.repeat(201))).toMatchObject({ ok: false });
  });
});
