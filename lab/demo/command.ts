/**
 * `npm run demo`: a real lab NAT gateway (network namespaces, sshd inside), filled to
 * saturation with a heavy hitter, checked over SSH through the same queue Slack uses,
 * then approve -> apply -> verify -> roll back typed in the terminal; torn down at the end.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import { parseInventory } from '../../src/config/inventory.js';
import { describeFill } from '../cli.js';
import { fillScenario, labDown, labUp, type Lab } from '../index.js';
import { runCheckViaQueue, openCliRuntime } from '../../src/cli/check-command.js';
import { renderReportText } from '../../src/cli/render-text.js';
import { runDecisionInTerminal } from './decide.js';

interface DemoOptions {
  firewall: 'iptables' | 'nft';
  apply: boolean;
  yes: boolean;
}

const say = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description('build a saturated lab gateway, check it over SSH, approve/apply/verify/roll back, tear down')
    .option('--firewall <kind>', 'iptables or nft on the lab gateway', 'iptables')
    .option('--no-apply', 'stop after the check')
    .option('-y, --yes', 'answer the approval prompts as a second user without asking (also when stdin is not a terminal)')
    .action(async (opts: DemoOptions) => {
      const dir = await mkdtemp(join(tmpdir(), 'conntrack-ops-demo-'));
      let lab: Lab | null = null;
      const cleanup = async (): Promise<void> => {
        if (lab) {
          say(`\n== tearing down lab ${lab.name}`);
          await labDown(lab);
          lab = null;
        }
        await rm(dir, { recursive: true, force: true });
      };
      const onSignal = (): void => {
        void cleanup().finally(() => process.exit(130));
      };
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        say('== building a lab NAT gateway (client namespaces -> gateway with MASQUERADE + sshd -> server)');
        lab = await labUp({ firewall: opts.firewall === 'nft' ? 'nft' : 'iptables' });
        const gateway = lab.name;
        const inventoryPath = join(dir, 'inventory.yml');
        await lab.writeInventory(inventoryPath, { merge: false });
        say(`   gateway ${gateway} at ${lab.inventoryEntry.host}:${lab.inventoryEntry.port}, host key ${lab.inventoryEntry.hostKey}`);
        const inventory = parseInventory(lab.inventoryYaml(), inventoryPath);
        const cli = await openCliRuntime(inventory, inventoryPath);
        try {
          // A table full of assured entries drops new SSH connections: the bot keeps a warm session.
          await cli.workers?.pool.watch(gateway, lab.inventoryEntry);
          say(`   warm SSH session open: ${cli.workers?.pool.isWarm(gateway) ? 'yes' : 'no'}`);
          say('\n== filling the gateway\'s conntrack table: 20,000 ESTABLISHED entries of connections that died 25 h ago');
          say('   without a FIN (conntrack -I: a lab cannot wait 25 h), then real UDP traffic until it is full (saturated + heavy-hitter)');
          const fill = await fillScenario(lab, ['dead-established', 'saturated', 'heavy-hitter']);
          say(describeFill(fill));
          say('\n== /conntrack check (same queue job as Slack)');
          const { report, planId } = await runCheckViaQueue(cli.rt, gateway, {
            onProgress: (line) => say(`   ${line}`),
            requestedBy: 'demo-requester',
          });
          say('');
          process.stdout.write(renderReportText(report));
          if (opts.apply) {
            const interactive = Boolean(process.stdin.isTTY) && !opts.yes;
            const rl = interactive ? createInterface({ input: process.stdin, output: process.stdout }) : null;
            try {
              await runDecisionInTerminal(cli.rt, planId, {
                ask: async (question: string, fallback: string) => {
                  if (!rl) {
                    say(`${question} ${fallback}   (answered automatically: --yes or no terminal)`);
                    return fallback;
                  }
                  const answer = (await rl.question(`${question} `)).trim();
                  return answer || fallback;
                },
                say,
              });
            } finally {
              rl?.close();
            }
          }
        } finally {
          await cli.close();
        }
      } finally {
        process.removeListener('SIGINT', onSignal);
        process.removeListener('SIGTERM', onSignal);
        await cleanup();
      }
    });
}
