/** `--interval` of the terminal watch: `30s`, `1m` or a bare number of seconds, 1 s .. 60 min. */
import { z } from 'zod';

const UNIT_SECONDS = { s: 1, m: 60 } as const;

export const intervalSchema = z
  .string()
  .trim()
  .regex(/^\d{1,5}(s|m)?$/, 'use a number of seconds (5), seconds (30s) or minutes (1m)')
  .transform((v) => {
    const unit = (v.endsWith('m') ? 'm' : 's') as keyof typeof UNIT_SECONDS;
    return Number.parseInt(v, 10) * UNIT_SECONDS[unit];
  })
  .pipe(z.number().int().min(1, 'at least 1 s').max(3600, 'at most 60 min (3600 s)'));

/** Seconds, or an error message that fits on one line. */
export function parseInterval(raw: string): { ok: true; seconds: number } | { ok: false; error: string } {
  const r = intervalSchema.safeParse(raw);
  return r.success ? { ok: true, seconds: r.data } : { ok: false, error: `invalid --interval "${raw}": ${r.error.issues[0]?.message ?? 'not an interval'}` };
}
