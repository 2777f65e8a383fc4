/**
 * The root cause line of an incident, built from a check's evidence, not from a template:
 * mechanism (what filled up) + trigger (who or what holds the entries) + numbers + scope, e.g.
 *
 *   table at max 262,144: heavy hitter 198.18.1.36 holds 56 % of entries (UDP to
 *   198.19.1.2:20000-20003), and 20,000 ESTABLISHED entries idle > 1 d under the 5-day timeout
 *
 * Each phrase appears only when its finding is in the report, with the finding's numbers.
 */
import { fmtDuration, fmtInt, hostPort } from '../analysis/format.js';
import type { CheckReport, Finding } from '../core/model.js';


function finding(report: CheckReport, id: Finding['id']): Finding[] {
  return report.findings.filter((f) => f.id === id);
}

function num(f: Finding, key: string): number | null {
  const v = f.evidence[key];
  return typeof v === 'number' ? v : null;
}

function str(f: Finding, key: string): string | null {
  const v = f.evidence[key];
  return typeof v === 'string' ? v : null;
}

/** What filled up. */
function mechanism(report: CheckReport): string | null {
  const { count, max, percent } = report.conntrack;
  const ports = finding(report, 'port-exhaustion-risk').filter((f) => (num(f, 'percentUsed') ?? 0) >= 100);
  if (finding(report, 'table-saturated').length > 0) return count >= max ? `table at max ${fmtInt(max)}` : `table at ${percent.toFixed(0)} % of max ${fmtInt(max)}`;
  if (ports.length > 0) {
    const p = ports[0]!;
    return `NAT source ports of ${str(p, 'natSource') ?? '?'} to ${str(p, 'destination') ?? '?'} exhausted (${fmtInt(num(p, 'entries') ?? 0)} of ${fmtInt(num(p, 'usablePorts') ?? 64_512)})`;
  }
  if (finding(report, 'table-high').length > 0) return `table at ${percent.toFixed(0)} % of max ${fmtInt(max)}`;
  if (finding(report, 'drops-observed').length > 0) return `drops while the table read ${percent.toFixed(0)} % of max ${fmtInt(max)}`;
  return null;
}

/** The destination ports a heavy hitter's destination is reached on with its protocol (from the busiest NAT port use), as "a-b" or "p". */
function portsOf(report: CheckReport, dst: string, proto: string | null): string | null {
  const ports = report.table.topPortUse.filter((p) => p.dst === dst && (proto === null || p.proto.toLowerCase() === proto)).map((p) => p.dport);
  if (ports.length === 0) return null;
  const lo = Math.min(...ports);
  const hi = Math.max(...ports);
  return lo === hi ? String(lo) : `${lo}-${hi}`;
}

function heavyHitter(report: CheckReport): string[] {
  return finding(report, 'heavy-hitter').map((f) => {
    const source = str(f, 'source') ?? '?';
    const share = num(f, 'sharePercent');
    const dst = str(f, 'topDestination');
    const state = str(f, 'dominantState');
    const proto = state ? state.split(' ')[0]!.toUpperCase() : null;
    const ports = dst ? portsOf(report, dst, proto?.toLowerCase() ?? null) : null;
    const to = dst ? ` (${proto ? `${proto} ` : ''}to ${ports ? hostPort(dst, ports) : dst})` : '';
    return `heavy hitter ${source} holds ${share !== null ? `${share.toFixed(0)} %` : fmtInt(num(f, 'entries') ?? 0)} of entries${to}`;
  });
}

function idleEstablished(report: CheckReport): string[] {
  return finding(report, 'established-timeout-long').flatMap((f) => {
    const timeout = num(f, 'timeoutSeconds');
    const day = num(f, 'idle>=86400s');
    const hour = num(f, 'idle>=3600s');
    const under = timeout !== null ? ` under the ${fmtDuration(timeout)} timeout` : '';
    if (day !== null && day > 0) return [`${fmtInt(day)} ESTABLISHED entries idle > 1 d${under}`];
    if (hour !== null && hour > 0) return [`${fmtInt(hour)} ESTABLISHED entries idle > 1 h${under}`];
    const stale = num(f, 'staleTimers');
    return stale !== null && stale > 0 ? [`${fmtInt(stale)} ESTABLISHED entries still on a timer from before the timeout was lowered`] : [];
  });
}

function timeWait(report: CheckReport): string[] {
  return finding(report, 'timewait-pile').map((f) => {
    const n = num(f, 'timeWait') ?? 0;
    const share = num(f, 'timeWaitPercent');
    const rate = num(f, 'closesPerSecond');
    return `${fmtInt(n)} TIME_WAIT entries${share !== null ? ` (${share.toFixed(0)} %)` : ''}${rate !== null && rate > 0 ? ` from ${fmtInt(rate)} closed connections/s` : ''}`;
  });
}

function joinPhrases(parts: string[]): string {
  if (parts.length <= 1) return parts.join('');
  return `${parts.slice(0, -1).join(', ')}, and ${parts[parts.length - 1]}`;
}

/**
 * The root cause line, or null when the report shows no trouble. `scope` (drops seen) is
 * appended when the counters show refused connections.
 */
export function rootCauseOf(report: CheckReport): string | null {
  const what = mechanism(report);
  const why = [...heavyHitter(report), ...idleEstablished(report), ...timeWait(report)];
  if (what === null && why.length === 0) return null;
  const refused = report.drops.drop - report.drops.insertFailed + report.drops.earlyDrop;
  const scope = refused > 0 ? `; ${fmtInt(refused)} new-connection packets dropped for lack of room when checked` : '';
  if (what === null) return `${joinPhrases(why)}${scope}`;
  return `${what}${why.length > 0 ? `: ${joinPhrases(why)}` : ''}${scope}`;
}
