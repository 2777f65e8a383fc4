/**
 * `/conntrack` grammar, validated with zod. Anything else gets a short usage message;
 * the text never reaches a shell (gateway names must exist in the inventory, too).
 */
import { z } from 'zod';
import { gatewayNameSchema } from '../../config/inventory.js';

export const MAX_COMMAND_TEXT = 200;

export type ConntrackCommand =
  | { kind: 'check'; target: { all: true } | { all: false; gateway: string } }
  | { kind: 'status'; gateway: string | null }
  | { kind: 'history'; gateway: string }
  | { kind: 'watch'; target: { all: true } | { all: false; gateway: string }; intervalSeconds: number | null }
  | { kind: 'unwatch'; gateway: string }
  | { kind: 'incident'; gateway: string | null; action: 'show' | 'chart' | 'close' }
  | { kind: 'apply' }
  | { kind: 'help' };

export type ParseResult = { ok: true; command: ConntrackCommand } | { ok: false; error: string };

const textSchema = z
  .string()
  .max(MAX_COMMAND_TEXT, `command text is limited to ${MAX_COMMAND_TEXT} characters`)
  .transform((t) => t.trim().split(/\s+/).filter(Boolean));

function gateway(word: string | undefined, sub: string): { ok: true; name: string } | { ok: false; error: string } {
  if (!word) return { ok: false, error: `\`${sub}\` needs a gateway name` };
  const parsed = gatewayNameSchema.safeParse(word);
  if (!parsed.success) return { ok: false, error: `"${word.slice(0, 40)}" is not a valid gateway name` };
  return { ok: true, name: parsed.data };
}

export function parseConntrackCommand(text: string): ParseResult {
  const words = textSchema.safeParse(text);
  if (!words.success) return { ok: false, error: words.error.issues[0]?.message ?? 'invalid command text' };
  const [sub, arg, ...extra] = words.data;
  if (!sub) return { ok: false, error: 'no subcommand given' };
  const tooMany = extra.length > 0 ? { ok: false as const, error: `unexpected "${extra.join(' ').slice(0, 40)}"` } : null;
  switch (sub.toLowerCase()) {
    case 'help':
      return { ok: true, command: { kind: 'help' } };
    case 'check': {
      if (tooMany) return tooMany;
      if (arg?.toLowerCase() === 'all') return { ok: true, command: { kind: 'check', target: { all: true } } };
      const gw = gateway(arg, 'check');
      return gw.ok ? { ok: true, command: { kind: 'check', target: { all: false, gateway: gw.name } } } : gw;
    }
    case 'status': {
      if (tooMany) return tooMany;
      if (!arg) return { ok: true, command: { kind: 'status', gateway: null } };
      const gw = gateway(arg, 'status');
      return gw.ok ? { ok: true, command: { kind: 'status', gateway: gw.name } } : gw;
    }
    case 'history': {
      if (tooMany) return tooMany;
      const gw = gateway(arg, 'history');
      return gw.ok ? { ok: true, command: { kind: 'history', gateway: gw.name } } : gw;
    }
    case 'watch': {
      // watch <gw>|all [every 30s]
      const all = arg?.toLowerCase() === 'all';
      const gw = all ? null : gateway(arg, 'watch');
      if (gw && !gw.ok) return gw;
      const rest = extra.map((w) => w.toLowerCase());
      let intervalSeconds: number | null = null;
      if (rest.length > 0) {
        const every = rest[0] === 'every' ? rest.slice(1).join('') : null;
        const m = every === null ? null : /^(\d{1,4})(s|m)?$/.exec(every);
        if (!m) return { ok: false, error: 'use `watch <gateway>|all [every 30s]`' };
        intervalSeconds = Number(m[1]) * (m[2] === 'm' ? 60 : 1);
        if (intervalSeconds < 1 || intervalSeconds > 3600) return { ok: false, error: 'the interval is 1 s to 60 min' };
      }
      return { ok: true, command: { kind: 'watch', target: gw ? { all: false, gateway: gw.name } : { all: true }, intervalSeconds } };
    }
    case 'unwatch': {
      if (tooMany) return tooMany;
      const gw = gateway(arg, 'unwatch');
      return gw.ok ? { ok: true, command: { kind: 'unwatch', gateway: gw.name } } : gw;
    }
    case 'incident': {
      // incident [<gw>] [chart|close]
      if (extra.length > 1) return { ok: false, error: `unexpected "${extra.slice(1).join(' ').slice(0, 40)}"` };
      if (!arg) return { ok: true, command: { kind: 'incident', gateway: null, action: 'show' } };
      const lower = arg.toLowerCase();
      if (lower === 'close' || lower === 'chart') return { ok: false, error: `\`incident ${lower}\` needs a gateway name: \`incident <gateway> ${lower}\`` };
      const gw = gateway(arg, 'incident');
      if (!gw.ok) return gw;
      const action = extra[0]?.toLowerCase();
      if (action === undefined) return { ok: true, command: { kind: 'incident', gateway: gw.name, action: 'show' } };
      if (action === 'close' || action === 'chart') return { ok: true, command: { kind: 'incident', gateway: gw.name, action } };
      return { ok: false, error: 'use `incident [<gateway>]`, `incident <gateway> chart` or `incident <gateway> close`' };
    }
    case 'apply':
      return { ok: true, command: { kind: 'apply' } };
    default:
      return { ok: false, error: `unknown subcommand "${sub.slice(0, 30)}"` };
  }
}
