/**
 * Words and numbers shared by the chart's drawing and its alt text: UTC times, percentages,
 * counts, durations, and the title.
 */

const pad2 = (n: number): string => String(n).padStart(2, '0');

export function utcDate(t: number): string {
  const d = new Date(t);
  return `${d.getUTCFullYear()}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())}`;
}

export function utcClock(t: number, seconds = false): string {
  const d = new Date(t);
  return `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}${seconds ? `:${pad2(d.getUTCSeconds())}` : ''}`;
}

/** "14:05" (with `seconds`, "14:05:09") when `t` is on the same UTC day as `ref`, else "2026-12-05 14:05". */
export function utcTime(t: number, ref: number, seconds = false): string {
  return utcDate(t) === utcDate(ref) ? utcClock(t, seconds) : `${utcDate(t)} ${utcClock(t, seconds)}`;
}

/** "2026-12-04 13:10–15:40" or "2026-12-04 13:10 – 2026-12-05 02:00". */
export function utcRange(from: number, to: number): string {
  if (utcDate(from) === utcDate(to) && utcClock(from) === utcClock(to)) return `${utcDate(from)} ${utcClock(from)}`;
  return utcDate(from) === utcDate(to)
    ? `${utcDate(from)} ${utcClock(from)}–${utcClock(to)}`
    : `${utcDate(from)} ${utcClock(from)} – ${utcDate(to)} ${utcClock(to)}`;
}

export function percentText(p: number): string {
  return `${p.toFixed(1)}%`;
}

export function countText(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** "42 min", "3 h 05 min", "2 d 4 h", "40 s". */
export function spanText(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const min = Math.round(s / 60);
  if (min < 60) return `${min} min`;
  const h = Math.floor(min / 60);
  if (h < 48) return `${h} h ${pad2(min % 60)} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

/** The gateway name as drawn: one line, at most `max` characters. */
export function shortName(name: string, max = 40): string {
  const oneLine = name.replace(/\s+/g, ' ').trim();
  return oneLine.length > max ? `${oneLine.slice(0, max - 1)}…` : oneLine;
}

export function chartTitle(gateway: string, from: number, to: number): string {
  return `${shortName(gateway)} — conntrack utilisation, ${utcRange(from, to)} UTC`;
}
