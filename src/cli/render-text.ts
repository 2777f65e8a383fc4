/**
 * The check report for a terminal: what is wrong, the evidence, and the plan
 * (current -> proposed), in the order an SRE reads them during an incident.
 */
import type { CheckReport, Finding, PlanStep, Severity } from '../core/model.js';
import { hostPort } from '../analysis/format.js';
import { terminalSafe } from './terminal-safe.js';

const MARK: Record<Severity, string> = { critical: 'CRIT', warning: 'WARN', info: 'INFO', ok: ' OK ' };
const n = (v: number): string => v.toLocaleString('en-US');

function table(rows: string[][], indent = '  '): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) => indent + r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ')).join('\n');
}

function renderFinding(f: Finding): string {
  const evidence = Object.entries(f.evidence)
    .map(([k, v]) => `${k}=${typeof v === 'number' ? n(v) : v}`)
    .join(', ');
  return `  [${MARK[f.severity]}] ${f.title}  (${f.id})\n         ${evidence}${f.detail ? `\n         ${f.detail}` : ''}`;
}

function renderStep(s: PlanStep, i: number): string {
  const flags = [s.optional ? 'optional' : '', s.writable ? '' : 'NOT WRITABLE HERE'].filter(Boolean).join(', ');
  const head = `  ${i + 1}. ${s.key}: ${s.current} -> ${s.proposed}${flags ? `   [${flags}]` : ''}`;
  const where = s.writable ? '' : `\n       change it at: ${s.whereToChange ?? 'the host that owns this setting'}`;
  return `${head}\n       why: ${s.why}${where}`;
}

/** ", offloaded N (M in hardware)": flowtable entries, counted with no timeout or state to judge. */
function offloadedText(r: CheckReport): string {
  const o = r.table.offloaded;
  if (o === undefined || o.total === 0) return '';
  return `, offloaded to a flowtable ${n(o.total)}${o.hardware > 0 ? ` (${n(o.hardware)} in hardware)` : ''}`;
}

export function renderReportText(r: CheckReport): string {
  const out: string[] = [];
  out.push(`conntrack-ops check: ${r.gateway}   (${r.checkedAt}, kernel ${r.facts.kernelRelease})`);
  out.push('');
  out.push(
    table([
      ['entries', `${n(r.conntrack.count)} / ${n(r.conntrack.max)} (${r.conntrack.percent}%)`, `buckets ${n(r.conntrack.buckets)}`],
      ['drops', `drop=${n(r.drops.drop)} early_drop=${n(r.drops.earlyDrop)} insert_failed=${n(r.drops.insertFailed)}`, `"table full" lines: ${r.drops.tableFullMessages}${r.drops.lastTableFullAt ? `, last ${r.drops.lastTableFullAt}` : ''}`],
      ['table read', `${n(r.table.entries)} entries, assured ${n(r.table.assured)}, unreplied ${n(r.table.unreplied)}${offloadedText(r)}`, r.table.approximate ? '(top lists approximate)' : ''],
    ]),
  );
  out.push('');
  out.push('Findings');
  out.push(...r.findings.map(renderFinding));
  out.push('');
  const top = (title: string, rows: { key: string; count: number }[]): void => {
    if (!rows.length) return;
    out.push(title);
    out.push(table(rows.slice(0, 10).map((x) => [n(x.count).padStart(9), x.key, `${((x.count / Math.max(1, r.table.entries)) * 100).toFixed(1)}%`])));
    out.push('');
  };
  top('Top sources', r.topSources);
  top('Top destinations', r.topDestinations);
  const states = Object.entries(r.states).sort((a, b) => b[1] - a[1]);
  if (states.length) {
    out.push('States');
    out.push(table(states.slice(0, 12).map(([k, v]) => [n(v).padStart(9), k])));
    out.push('');
  }
  const portUse = r.table.topPortUse.slice(0, 5);
  if (portUse.length) {
    out.push('Port use per NAT address -> destination');
    out.push(table(portUse.map((p) => [n(p.count).padStart(9), `${p.natSource} -> ${hostPort(p.dst, p.dport)}/${p.proto}`])));
    out.push('');
  }
  out.push('Timeouts (s)');
  const tk = ['nf_conntrack_tcp_timeout_established', 'nf_conntrack_tcp_timeout_time_wait', 'nf_conntrack_tcp_timeout_close_wait', 'nf_conntrack_udp_timeout', 'nf_conntrack_udp_timeout_stream'];
  out.push(table(tk.filter((k) => r.timeouts[k] !== undefined).map((k) => [k.replace('nf_conntrack_', ''), n(r.timeouts[k] ?? 0)])));
  out.push('');
  if (r.plan.steps.length) {
    out.push('Change plan (nothing is changed until someone approves it)');
    out.push(...r.plan.steps.map(renderStep));
  } else {
    out.push('Change plan: nothing to change.');
  }
  if (r.plan.notes.length) {
    out.push('');
    out.push('Notes');
    out.push(...r.plan.notes.map((x) => `  - ${x}`));
  }
  out.push('');
  out.push(`timings: ${Object.entries(r.timings).map(([k, v]) => `${k}=${v}`).join(' ')}`);
  // Much of the report is gateway text (addresses, sysctl values, notes): no control character reaches the terminal.
  return `${terminalSafe(out.join('\n'), { keepNewlines: true })}\n`;
}
