/**
 * Lab terminal commands (`npm run lab -- ...`, see ./main.ts):
 *   up [--name N] [--firewall iptables|nft] [--without iptables[,conntrack]] [--ipv6 nat66|routed]
 *      [--clients N] [--sources N] [--inventory FILE] [--json]
 *   fill <name> <scenario...> [--json] [--heavy-hitter-share X] [--hold SECONDS]
 *   down <name> | --all [--orphans]
 *   list [--json]
 * Labs live on after the command exits (state in /tmp/conntrack-ops-lab/<name>/).
 */
import type { Command } from 'commander';
import { z } from 'zod';
import { hiddenToolSchema } from './hidden-tools.js';
import { print, positiveInt } from './cli-output.js';
import { labDown, labDownAll, labUp, listLabs, openLab } from './lab.js';
import { LAB_PREFIX } from './naming.js';
import { fillScenario, SCENARIOS, scenarioSchema, type FillResult } from './scenarios.js';

export function describeFill(r: FillResult): string {
  const lines = [
    `lab ${r.lab}: ${r.scenarios.join(' + ')} in ${(r.durationMs / 1000).toFixed(1)} s (generator ${r.generator ?? 'none'})`,
    `  table ${r.after.count} / ${r.after.max}; drop +${r.delta.drop}, early_drop +${r.delta.earlyDrop}, insert_failed +${r.delta.insertFailed}; table-full log lines +${r.tableFullLines}`,
    ...r.phases.map((p) => `  ${p.name}: ${p.flows ?? ''} flows in ${p.ms} ms ${p.detail ?? ''}`.trimEnd()),
  ];
  if (r.heavyHitter) lines.push(`  heavy hitter ${r.heavyHitter.ip}: ${r.heavyHitter.flows} flows`);
  if (r.portExhaustion) {
    lines.push(`  port exhaustion: ${r.portExhaustion.dst}:${r.portExhaustion.dport}/udp via ${r.portExhaustion.externalAddress}`);
  }
  if (r.tcp) lines.push(`  tcp: ${r.tcp.timewait} TIME_WAIT, ${r.tcp.established} idle ESTABLISHED, ${r.tcp.failed} failed`);
  if (r.dead) lines.push(`  dead ESTABLISHED: ${r.dead.entries} entries idle ${r.dead.idleSeconds} s, ${r.dead.remainingSeconds} s left on their timers`);
  if (r.hold) lines.push(`  held full until ${r.hold.until} by pids ${r.hold.pids.join(' ')}`);
  return lines.join('\n');
}

/** Adds up / fill / down / list to the lab's command. */
export function registerLabCommands(lab: Command): void {
  lab
    .command('up')
    .description('create a lab gateway (clients -> NAT gateway with sshd -> server)')
    .option('--name <name>', 'lab name (cto-<1-8 a-z0-9>); default random')
    .option('--firewall <backend>', 'iptables or nft', 'iptables')
    .option('--clients <n>', 'client namespaces', positiveInt, 2)
    .option('--sources <n>', 'source IPs per client', positiveInt, 4)
    .option('--without <tools>', 'tools the gateway lacks (comma list: iptables, conntrack); --firewall nft --without iptables is nft-only')
    .option('--ipv6 <mode>', 'IPv6 through the gateway (2001:2::/48): nat66 or routed')
    .option('--inventory <file>', 'write (merge) the gateway into this inventory YAML')
    .option('--json', 'print JSON')
    .action(async (opts: { name?: string; firewall: string; without?: string; ipv6?: string; clients: number; sources: number; inventory?: string; json?: boolean }) => {
      const firewall = opts.firewall === 'nft' ? 'nft' : opts.firewall === 'iptables' ? 'iptables' : null;
      if (!firewall) throw new Error(`--firewall must be iptables or nft, not ${opts.firewall}`);
      const withoutTools = z.array(hiddenToolSchema).parse(opts.without ? opts.without.split(',') : []);
      const ipv6 = z.enum(['nat66', 'routed']).optional().parse(opts.ipv6) ?? 'off';
      const l = await labUp({ name: opts.name, firewall, withoutTools, ipv6, clients: opts.clients, sourcesPerClient: opts.sources, keep: true });
      if (opts.inventory) await l.writeInventory(opts.inventory);
      print(
        !!opts.json,
        { name: l.name, inventoryEntry: l.inventoryEntry, clientIps: l.clientIps, serverAddress: l.serverAddress, externalAddress: l.externalAddress, namespaces: l.namespaces, stateDir: l.dir },
        [
          `lab ${l.name} is up (slot ${l.slot}, ${l.firewall}${l.withoutTools.length ? `, without ${l.withoutTools.join(', ')}` : ''}${l.ipv6 ? `, IPv6 ${l.ipv6.mode}` : ''})`,
          `  ssh: ssh -i ${l.inventoryEntry.identityFile} -o UserKnownHostsFile=${l.sshTarget.knownHostsFile} root@${l.inventoryEntry.host}`,
          `  host key ${l.inventoryEntry.hostKey}`,
          `  clients ${l.clientIps.join(' ')} -> external ${l.externalAddress} -> server ${l.serverAddress}`,
          ...(l.ipv6 ? [`  IPv6 clients ${l.clientIps6.join(' ')} -> external ${l.ipv6.externalAddress} -> server ${l.ipv6.serverAddress}`] : []),
          opts.inventory ? `  inventory written to ${opts.inventory}` : `  inventory:\n${l.inventoryYaml().replace(/^/gm, '    ')}`,
        ].join('\n'),
      );
    });

  lab
    .command('fill <name> <scenario...>')
    .description(`fill the gateway's conntrack table with real traffic: ${SCENARIOS.join(', ')}`)
    .option('--heavy-hitter-share <x>', 'share of UDP flows from the heavy hitter', Number)
    .option('--hold <seconds>', 'saturated: keep the table full this long (detached generators)', Number)
    .option('--json', 'print JSON')
    .action(async (name: string, scenarios: string[], opts: { heavyHitterShare?: number; hold?: number; json?: boolean }) => {
      const names = scenarios.map((s) => {
        const parsed = scenarioSchema.safeParse(s);
        if (!parsed.success) throw new Error(`unknown scenario "${s}"; scenarios: ${SCENARIOS.join(', ')}`);
        return parsed.data;
      });
      const r = await fillScenario(await openLab(name), names, {
        ...(opts.heavyHitterShare ? { heavyHitterShare: opts.heavyHitterShare } : {}),
        ...(opts.hold ? { holdMs: Math.round(opts.hold * 1000) } : {}),
      });
      print(!!opts.json, r, describeFill(r));
    });

  lab
    .command('down [name]')
    .description('remove a lab (namespaces, veth, processes, state); --all removes every lab')
    .option('--all', `every lab (${LAB_PREFIX}*) on this machine`)
    .option('--orphans', 'with --all: only labs whose creator is gone and that are not kept')
    .action(async (name: string | undefined, opts: { all?: boolean; orphans?: boolean }) => {
      if (opts.all) {
        const res = await labDownAll(LAB_PREFIX, { onlyOrphans: !!opts.orphans });
        process.stdout.write(res.length ? `${res.map((r) => `removed ${r.name}`).join('\n')}\n` : 'no labs\n');
        return;
      }
      if (!name) throw new Error('lab down needs a name or --all');
      const r = await labDown(name);
      process.stdout.write(`removed ${r.name} (${r.namespaces.length} namespaces, ${r.links.length} links, ${r.killed} processes)\n`);
    });

  lab
    .command('list')
    .description('list labs on this machine')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const labs = await listLabs();
      print(
        !!opts.json,
        labs,
        labs.length
          ? labs
              .map((l) => `${l.name}\t${l.phase}\t${l.gateway ?? '-'}\tnamespaces=${l.namespaces.length}\towner=${l.ownerPid ?? '-'}${l.ownerAlive ? '' : '(gone)'}${l.keep ? ' keep' : ''}`)
              .join('\n')
          : 'no labs',
      );
    });
}
