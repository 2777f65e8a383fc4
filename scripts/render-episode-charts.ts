/**
 * Draws the two sample episode charts (a warning that resolved, a critical episode with a plan
 * applied and rolled back) into a folder, to look at them; docs/episode-chart.png is the second.
 *   npx tsx scripts/render-episode-charts.ts [dir]   (default: the system's temp dir)
 */
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderEpisodeChart } from '../src/incident/chart.js';
import { criticalWithPlan, warningResolved } from '../test/incident/chart-scenarios.js';

const dir = process.argv[2] ?? tmpdir();
for (const [name, input] of [
  ['episode-warning-resolved', warningResolved()],
  ['episode-critical-plan', criticalWithPlan()],
] as const) {
  const started = performance.now();
  const chart = await renderEpisodeChart(input);
  const file = join(dir, `${name}.png`);
  await writeFile(file, chart.png);
  console.log(`${file}: ${chart.width}x${chart.height}, ${chart.png.byteLength} bytes, ${(performance.now() - started).toFixed(0)} ms`);
  console.log(`  alt: ${chart.altText}`);
}
