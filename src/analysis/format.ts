/** Number formatting for titles and plan text: what an SRE reads at 3 a.m. */

/** 262144 -> "262,144". */
export function fmtInt(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}

/** 0.9873 -> "98.7%". */
export function fmtPct(fraction: number): string {
  return `${(fraction * 100).toFixed(1)}%`;
}

/** A fraction as a percentage number with one decimal, for evidence: 0.9873 -> 98.7. */
export function pctNumber(fraction: number): number {
  return Math.round(fraction * 1000) / 10;
}

/** 432000 -> "5 d", 3600 -> "1 h", 300 -> "5 min", 45 -> "45 s". */
export function fmtDuration(seconds: number): string {
  if (seconds >= 86_400 && seconds % 86_400 === 0) return `${seconds / 86_400} d`;
  if (seconds >= 3_600 && seconds % 3_600 === 0) return `${seconds / 3_600} h`;
  if (seconds >= 60 && seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}

/** 80530636 -> "76.8 MiB". */
export function fmtBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${Math.round(value)} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** Safe ratio: 0 when the denominator is 0. */
export function ratio(part: number, whole: number): number {
  return whole > 0 ? part / whole : 0;
}

/** An address and a port as people write them: "198.19.1.2:443", "[2001:db8::2]:443" (an IPv6 address's own colons would swallow the port). */
export function hostPort(address: string, port: number | string): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}
