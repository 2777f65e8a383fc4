/**
 * Child process for the analyze memory test:
 *   node --import tsx test/cli/helpers/analyze-memory-probe.ts <saved file>
 * Analyses the saved file as `conntrack-ops analyze` does (a file stream into analyzeSaved)
 * and prints one JSON line: entries, lines, peak RSS (MB) and the time it took.
 */
import { createReadStream } from 'node:fs';
import { analyzeSaved } from '../../../src/check/analyze-saved.js';
import { thresholdsSchema } from '../../../src/config/inventory.js';

const file = process.argv[2] ?? '';
const started = performance.now();
const { report, lines } = await analyzeSaved(createReadStream(file), {
  gatewayName: 'memory-probe',
  config: { thresholds: thresholdsSchema.parse({}), port: 22, managementSource: undefined },
});
process.stdout.write(
  `${JSON.stringify({
    lines,
    entries: report.table.entries,
    unparsed: report.table.unparsed,
    findings: report.findings.map((f) => f.id),
    maxRssMb: Math.round((process.resourceUsage().maxRSS / 1024) * 10) / 10,
    ms: Math.round(performance.now() - started),
  })}\n`,
);
