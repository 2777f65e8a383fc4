/** heavy-hitter: one source owning at least heavyHitterShare of the table. */
import type { Counted, Finding, TableSummary } from '../../core/model.js';
import type { AnalysisContext } from '../context.js';
import { fmtInt, fmtPct, pctNumber, ratio } from '../format.js';

type SourceProfile = NonNullable<TableSummary['sourceProfiles']>[number];

function largest(record: Record<string, number>): Counted | undefined {
  let best: Counted | undefined;
  for (const [key, count] of Object.entries(record)) if (!best || count > best.count) best = { key, count };
  return best;
}

export interface HeavyHitter {
  source: string;
  count: number;
  share: number;
  profile: SourceProfile | undefined;
}

/** Sources at or above the share threshold, largest first. */
export function heavyHitters(table: TableSummary, share: number): HeavyHitter[] {
  return table.topSources
    .map((s) => ({
      source: s.key,
      count: s.count,
      share: ratio(s.count, table.entries),
      profile: table.sourceProfiles?.find((p) => p.source === s.key),
    }))
    .filter((h) => h.count > 0 && h.share >= share)
    .sort((a, b) => b.count - a.count);
}

export function heavyHitterFindings(ctx: AnalysisContext): Finding[] {
  const { table, thresholds } = ctx;
  return heavyHitters(table, thresholds.heavyHitterShare).map((h) => {
    const state = h.profile ? largest(h.profile.states) : undefined;
    const dest = h.profile?.topDestinations[0];
    const what = [
      state ? `mostly ${state.key} (${fmtInt(state.count)})` : '',
      dest ? `top destination ${dest.key} (${fmtInt(dest.count)})` : '',
    ]
      .filter(Boolean)
      .join(', ');
    const notes: string[] = [];
    if (!h.profile) notes.push('The table summary has no per-source breakdown: state and destination unknown.');
    if (state && /SYN_SENT|UNREPLIED/.test(state.key)) notes.push('Mostly unanswered connection attempts: a scan, a retry storm or a dead upstream.');
    if (table.approximate) notes.push('Top lists are approximate (more distinct keys than the tracker holds).');
    notes.push('Find out what this host does before raising limits for it.');
    return {
      id: 'heavy-hitter' as const,
      severity: ctx.pressure ? ('warning' as const) : ('info' as const),
      title: `Heavy hitter ${h.source}: ${fmtInt(h.count)} entries (${fmtPct(h.share)} of the table)${what ? `, ${what}` : ''}`,
      evidence: {
        source: h.source,
        entries: h.count,
        sharePercent: pctNumber(h.share),
        ...(state ? { dominantState: state.key, dominantStateEntries: state.count } : {}),
        ...(dest ? { topDestination: dest.key, topDestinationEntries: dest.count } : {}),
        ...(h.profile ? { nattedEntries: h.profile.natted } : {}),
      },
      detail: notes.join(' '),
    };
  });
}
