/**
 * Where everything of the episode chart goes, in pixels: the title, the lanes that hold the
 * marks' labels (so no label ever overlaps another or the title), the utilisation panel and
 * the drops panel. Pure arithmetic; the spec (chart-spec.ts) draws what this places.
 */

export const CHART_WIDTH = 1000;
export const CHART_HEIGHT = 500;
export const FONT_FAMILY = 'DejaVu Sans';
export const LABEL_FONT_SIZE = 11;

const PLOT_LEFT = 64;
const PLOT_RIGHT_MARGIN = 92; // room for "crit 90%" beside the plot
const LANES_TOP = 54;
const LANE_HEIGHT = 15;
export const MAX_LANES = 4;
const DROPS_HEIGHT = 92;
const X_AXIS_ROOM = 36;
const PANEL_GAP = 26; // holds the drops legend

export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface ChartLayout {
  width: number;
  height: number;
  lanesTop: number;
  laneHeight: number;
  util: Box;
  drops: Box;
}

export function chartLayout(laneCount: number): ChartLayout {
  const plotWidth = CHART_WIDTH - PLOT_LEFT - PLOT_RIGHT_MARGIN;
  const dropsY = CHART_HEIGHT - X_AXIS_ROOM - DROPS_HEIGHT;
  const utilY = LANES_TOP + laneCount * LANE_HEIGHT + 8;
  return {
    width: CHART_WIDTH,
    height: CHART_HEIGHT,
    lanesTop: LANES_TOP,
    laneHeight: LANE_HEIGHT,
    util: { x: PLOT_LEFT, y: utilY, width: plotWidth, height: dropsY - PANEL_GAP - utilY },
    drops: { x: PLOT_LEFT, y: dropsY, width: plotWidth, height: DROPS_HEIGHT },
  };
}

/**
 * Width of `text` in DejaVu Sans at `size` px, a little generous (wide glyphs count wider), so
 * that labels placed by it never touch.
 */
export function textWidth(text: string, size: number): number {
  let em = 0;
  for (const ch of text) {
    if (/[mwMW@%]/.test(ch)) em += 0.95;
    else if (/[A-Z0-9_#&]/.test(ch)) em += 0.72;
    else if (/[ijlt.,:;'|!() ]/.test(ch)) em += 0.36;
    else em += 0.63;
  }
  return em * size;
}

/** A label on the lanes above the plot, at pixel `x` of the plot. */
export interface LaneLabel {
  x: number;
  text: string;
  /** Draw a vertical rule through the panels (a mark); the episode's edges have the shading instead. */
  rule: boolean;
}

export interface PlacedLabel extends LaneLabel {
  lane: number;
  align: 'left' | 'right';
  /** Where the text is anchored (plot pixels). */
  textX: number;
}

const LABEL_GAP = 10;
const LABEL_MAX_CHARS = 34;

function clip(text: string): string {
  return text.length > LABEL_MAX_CHARS ? `${text.slice(0, LABEL_MAX_CHARS - 1)}…` : text;
}

/** A rule (vertical line) runs from its label's lane down through every lane below it. */
function clashes(a: { lane: number; x: number; rule: boolean; span: Span }, b: { lane: number; x: number; rule: boolean; span: Span }): boolean {
  const overlaps = (s: Span, x: number): boolean => x >= s.left - 3 && x <= s.right + 3;
  if (a.lane === b.lane) return a.span.left < b.span.right + LABEL_GAP && b.span.left < a.span.right + LABEL_GAP;
  const [upper, lower] = a.lane < b.lane ? [a, b] : [b, a];
  return upper.rule && overlaps(lower.span, upper.x);
}

interface Span {
  left: number;
  right: number;
}

/**
 * Places labels on the fewest lanes (at most MAX_LANES) so that none overlaps another label
 * or another mark's rule: each goes right of its x, or left of it near the plot's right end,
 * on the first lane with room. Labels that fit nowhere are returned in `unplaced` (their rules
 * are still drawn).
 */
export function placeLabels(labels: readonly LaneLabel[], plotWidth: number): { placed: PlacedLabel[]; unplaced: LaneLabel[] } {
  const placed: (PlacedLabel & { span: Span })[] = [];
  const unplaced: LaneLabel[] = [];
  for (const label of [...labels].sort((a, b) => a.x - b.x)) {
    const text = clip(label.text);
    const w = textWidth(text, LABEL_FONT_SIZE);
    const fitsRight = label.x + 4 + w <= plotWidth;
    const fitsLeft = label.x - 4 - w >= -PLOT_LEFT;
    const aligns = (fitsRight || !fitsLeft ? ['left', 'right'] : ['right', 'left']) as ('left' | 'right')[];
    const spot = (lane: number, align: 'left' | 'right') => {
      const textX = align === 'right' ? label.x - 4 : label.x + 4;
      const span = align === 'right' ? { left: textX - w, right: textX } : { left: textX, right: textX + w };
      return { ...label, text, lane, align, textX, span };
    };
    let chosen: (PlacedLabel & { span: Span }) | undefined;
    for (let lane = 0; lane < MAX_LANES && !chosen; lane++) {
      chosen = aligns
        .map((align) => spot(lane, align))
        .find((c) => c.span.right <= plotWidth + PLOT_RIGHT_MARGIN && c.span.left >= -PLOT_LEFT && !placed.some((p) => clashes(p, c)));
    }
    if (chosen) placed.push(chosen);
    else unplaced.push(label);
  }
  return { placed: placed.map(({ span: _span, ...p }) => p), unplaced };
}
