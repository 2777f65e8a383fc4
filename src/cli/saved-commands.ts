/**
 * Checks without SSH, for gateways the bot cannot reach:
 *   `conntrack-ops collect-script`  prints the read-only collect script (facts + table dump);
 *   `conntrack-ops analyze <file>`  reads its saved output and prints the same report, findings
 *                                   and plan as a live check, marked offline (never approvable).
 */
import { createReadStream } from 'node:fs';
import { basename } from 'node:path';
import type { Command } from 'commander';
import { findGateway, gatewayNameSchema, loadInventory, thresholdsSchema, type GatewayConfig } from '../config/inventory.js';
import { analyzeSaved, SavedFileError, type SavedAnalysis } from '../check/analyze-saved.js';
import { COLLECT_SCRIPT } from '../diagnostics/collect-script.js';
import { toJsonReport } from './check-command.js';
import { renderReportText } from './render-text.js';
import { terminalSafe } from './terminal-safe.js';
import { CliError } from './errors.js';

export interface AnalyzeCliOptions {
  json?: boolean;
  gateway?: string;
  inventory: string;
}

/** What a user must know about an offline plan. */
export const OFFLINE_PLAN_NOTE =
  'This plan comes from a saved file: it cannot be approved or applied from here. Run `conntrack-ops check <gateway>` (or /conntrack check in Slack) where the bot reaches the gateway to get an approvable plan, or apply the steps by hand.';

type ReportConfig = Pick<GatewayConfig, 'thresholds' | 'managementSource' | 'port'>;

/** The name shown in the report: --gateway, else the file name without its extension ("gw-3.saved" -> "gw-3"). */
function reportName(file: string, gateway: string | undefined): string {
  if (gateway !== undefined) {
    const name = gatewayNameSchema.safeParse(gateway);
    if (!name.success) throw new CliError(`invalid gateway name "${gateway}": ${name.error.issues[0]?.message ?? ''}`, 2);
    return name.data;
  }
  const fromFile = gatewayNameSchema.safeParse(basename(file).replace(/\.[^.]*$/, ''));
  return fromFile.success ? fromFile.data : 'saved';
}

/** Thresholds, management source and SSH port: the inventory's for --gateway, else the defaults. */
async function reportConfig(opts: AnalyzeCliOptions): Promise<ReportConfig> {
  if (opts.gateway !== undefined) {
    const inventory = await loadInventory(opts.inventory);
    return findGateway(inventory, opts.gateway);
  }
  return { thresholds: thresholdsSchema.parse({}), port: 22, managementSource: undefined };
}

export function renderOfflineText(file: string, a: SavedAnalysis): string {
  const head = `OFFLINE: analysis of the saved file ${terminalSafe(file)} (collected on the gateway at ${a.collectedAt}, ${a.lines.toLocaleString('en-US')} lines); no SSH was used.\n\n`;
  return `${head}${renderReportText(a.report)}\n${OFFLINE_PLAN_NOTE}\n`;
}

export function toJsonOffline(file: string, a: SavedAnalysis): Record<string, unknown> {
  return {
    offline: { file, collectedAt: a.collectedAt, formatVersion: a.formatVersion, lines: a.lines, approvable: false, note: OFFLINE_PLAN_NOTE },
    ...toJsonReport(a.report),
  };
}

export function registerSavedCommands(program: Command): void {
  program
    .command('collect-script')
    .description('print the read-only POSIX sh script a check runs (facts and table dump), for `ssh root@gw sh -s < collect.sh > gw.saved`')
    .action(() => {
      process.stdout.write(COLLECT_SCRIPT);
    });

  program
    .command('analyze')
    .description('analyse a saved file from collect-script, without SSH: the same report, findings and plan as a live check (offline, not approvable)')
    .argument('<file>', 'the saved output ("-" for standard input)')
    .option('--json', 'print the report as one JSON object')
    .option('-g, --gateway <name>', 'name for the report; with the inventory, its thresholds, management source and SSH port')
    .option('-i, --inventory <file>', 'inventory file (YAML), read only with --gateway', process.env.INVENTORY ?? 'inventory.yml')
    .action(async (file: string, opts: AnalyzeCliOptions) => {
      const gatewayName = reportName(file, opts.gateway);
      const config = await reportConfig(opts);
      const input = file === '-' ? process.stdin : createReadStream(file);
      let analysis: SavedAnalysis;
      try {
        analysis = await analyzeSaved(input, { gatewayName, config });
      } catch (err) {
        if (err instanceof SavedFileError) throw new CliError(`${file}: ${err.message}`, 2);
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'EACCES' || code === 'EISDIR') throw new CliError(`cannot read ${file}: ${code}`, 2);
        throw err;
      }
      if (opts.json) process.stdout.write(`${JSON.stringify(toJsonOffline(file, analysis), null, 2)}\n`);
      else process.stdout.write(renderOfflineText(file, analysis));
    });
}
