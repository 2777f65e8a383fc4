/**
 * Contents of the managed persistence files, rebuilt from the plan step's typed
 * values (never copied as free text), each marked with the plan that wrote it.
 */
import { z } from 'zod';
import { netfilterKeySchema } from '../core/model.js';

export const MANAGED_MARK = '# managed by conntrack-ops';

export function header(planId: string): string {
  return `${MANAGED_MARK}, plan ${planId}`;
}

const valueSchema = z.coerce.number().int().min(0).max(2 ** 31 - 1);

/** `net.netfilter.<key> = <int>` lines of a sysctl.d text (comments and blank lines ignored). */
export function parseSysctlText(text: string): Map<string, number> {
  const values = new Map<string, number>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const m = /^-?\s*net\.netfilter\.([a-z0-9_]+)\s*=\s*(\d+)$/.exec(line);
    if (!m) throw new Error(`unexpected line in a conntrack sysctl file: "${line.slice(0, 80)}"`);
    values.set(netfilterKeySchema.parse(m[1]), valueSchema.parse(m[2]));
  }
  return values;
}

export function sysctlFileFor(planId: string, values: ReadonlyMap<string, number>): string {
  const lines = [...values].map(([k, v]) => `net.netfilter.${k} = ${v}`);
  return [header(planId), '# Changes approved in chat; edit through the bot (a roll back restores the previous file).', ...lines, ''].join('\n');
}

export function modprobeFileFor(planId: string, hashsize: number): string {
  return `${header(planId)}\noptions nf_conntrack hashsize=${hashsize}\n`;
}

/** The hashsize option of a modprobe.d text, or null. */
export function parseModprobeHashsize(text: string | null): number | null {
  if (!text) return null;
  const m = /^\s*options\s+nf_conntrack\s+(?:.*\s)?hashsize=(\d+)/m.exec(text);
  return m ? Number(m[1]) : null;
}
