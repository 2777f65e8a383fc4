/**
 * `vm` terminal commands of the lab (`npm run lab -- vm ...`; QEMU VM gateways, see ./gateway.ts):
 *   vm up [--name N] [--memory MB] [--boot-max N] [--hashsize N] [--ttl S] [--flow-offload] [--inventory FILE] [--json]
 *   vm fill <name> saturated|healthy|offload [--extra N] [--flows N] [--tcp-flows N] [--json]
 *   vm status <name> [--json]
 *   vm exec <name> <command...>
 *   vm down <name> | --all
 *   vm list [--json]
 * VMs started here outlive the command (until `down` or their TTL, default 1 h). `vm up`
 * fetches the VM's prerequisites (QEMU, Debian's kernel) when they are missing.
 */
import { print, positiveInt } from '../cli-output.js';
import { readFile, rename, writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { inventorySchema } from '../../src/config/inventory.js';
import { vmAttach, vmDown, vmList, vmUp, type FillResult, type VmGateway } from './gateway.js';

function nonNegativeInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`not a non-negative integer: ${v}`);
  return n;
}

/** Adds (or replaces) the VM's gateway in an inventory YAML file. */
export async function writeVmInventory(vm: VmGateway, path: string, gatewayName = vm.name): Promise<void> {
  let doc: { gateways: Record<string, unknown> } = { gateways: {} };
  try {
    const parsed = inventorySchema.safeParse(parseYaml(await readFile(path, 'utf8')));
    if (parsed.success) doc = { gateways: { ...parsed.data.gateways } };
  } catch {
    // no file yet
  }
  doc.gateways[gatewayName] = vm.inventoryEntry;
  inventorySchema.parse(doc);
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, stringifyYaml(doc), { mode: 0o644 });
  await rename(tmp, path);
}

export function describeVmFill(name: string, r: FillResult): string {
  const lines = [
    `vm ${name}: ${r.scenario} in ${(r.durationMs / 1000).toFixed(1)} s` +
      (r.fillSeconds ? ` (generator ${r.fillSeconds.toFixed(1)} s)` : ''),
    `  table ${r.count} / ${r.max} (hashsize ${r.hashsize}); drop ${r.dropBefore} -> ${r.drop}, early_drop ${r.earlyDrop}, insert_failed ${r.insertFailed}`,
    `  "table full" kernel log lines ${r.tableFullLinesBefore} -> ${r.tableFullLines}; generator ${r.generatorRunning ? 'running' : 'stopped'}` +
      (r.flows ? ` (${r.flows} flows, ${r.assured} assured)` : ''),
  ];
  if (r.probeSent) lines.push(`  new flows tried: ${r.probeSent}, answered: ${r.probeReplied}`);
  if (r.tcpFlows) lines.push(`  long-lived TCP connections: ${r.tcpFlows}, connected ${r.tcpConnected}, answered ${r.tcpAnswered}`);
  if (r.offloaded) lines.push(`  entries offloaded to the flowtable: ${r.offloaded}`);
  return lines.join('\n');
}

/** Adds `vm` and its commands to the lab's command. */
export function registerVmCommands(lab: Command): void {
  const vm = lab
    .command('vm')
    .description('NAT gateway in a QEMU VM (software emulation): nf_conntrack_max and hashsize are writable there');

  vm.command('up')
    .description('boot a VM gateway (prints its inventory entry)')
    .option('--name <name>', 'VM / gateway name; default vm-<random>')
    .option('--memory <mb>', 'guest memory (MiB)', positiveInt, 512)
    .option('--boot-max <n>', 'nf_conntrack_max at boot', positiveInt, 4096)
    .option('--hashsize <n>', 'nf_conntrack hashsize at boot', positiveInt, 1024)
    .option('--ttl <seconds>', 'stop the VM after this long whatever happens', positiveInt, 3600)
    .option('--flow-offload', 'an nft flowtable on lan0/wan0 (software flow offload; see `vm fill <name> offload`)')
    .option('--inventory <file>', 'write (merge) the gateway into this inventory YAML')
    .option('--json', 'print JSON')
    .action(
      async (opts: { name?: string; memory: number; bootMax: number; hashsize: number; ttl: number; flowOffload?: boolean; inventory?: string; json?: boolean }) => {
        const g = await vmUp({
          ...(opts.name ? { name: opts.name } : {}),
          flowOffload: opts.flowOffload === true,
          memoryMb: opts.memory,
          bootMax: opts.bootMax,
          hashsize: opts.hashsize,
          ttlSeconds: opts.ttl,
          detached: true,
          log: (line) => process.stderr.write(`${line}\n`),
        });
        if (opts.inventory) await writeVmInventory(g, opts.inventory);
        const s = g.state;
        print(
          !!opts.json,
          { name: g.name, inventoryEntry: g.inventoryEntry, bootMs: s.bootMs, kernel: s.kernel, stateDir: s.stateDir, qemuPid: s.qemuPid },
          [
            `vm ${g.name} is up in ${(s.bootMs / 1000).toFixed(1)} s (kernel ${s.kernel.kver}, nf_conntrack_max ${s.bootMax}, hashsize ${s.hashsize})`,
            `  ssh: ssh ${g.sshArgs({ newConnection: true }).map((a) => (/\s/.test(a) ? `'${a}'` : a)).join(' ')}`,
            `  stop: npm run lab -- vm down ${g.name} (or it stops by itself in ${opts.ttl} s)`,
            stringifyYaml({ gateways: { [g.name]: g.inventoryEntry } }).trimEnd(),
          ].join('\n'),
        );
      },
    );

  vm.command('fill')
    .description('saturated: table full of ASSURED flows, new flows dropped; healthy: a quarter full, no drops; offload: long-lived TCP + UDP flows offloaded to the flowtable (VM up with --flow-offload)')
    .argument('<name>')
    .argument('<scenario>', 'saturated | healthy | offload')
    .option('--extra <n>', 'saturated: flows tried beyond the max (they are dropped)', nonNegativeInt, 64)
    .option('--flows <n>', 'healthy: flows to hold (default max / 4); offload: UDP flows (default 64)', nonNegativeInt)
    .option('--tcp-flows <n>', 'offload: long-lived TCP connections (default 64)', nonNegativeInt)
    .option('--json', 'print JSON')
    .action(async (name: string, scenario: string, opts: { extra: number; flows?: number; tcpFlows?: number; json?: boolean }) => {
      if (scenario !== 'saturated' && scenario !== 'healthy' && scenario !== 'offload') {
        throw new Error(`scenario must be saturated, healthy or offload, not ${scenario}`);
      }
      const g = await vmAttach(name);
      const r = await g.fill(scenario, {
        extraFlows: opts.extra,
        ...(opts.flows !== undefined ? { flows: opts.flows } : {}),
        ...(opts.tcpFlows !== undefined ? { tcpFlows: opts.tcpFlows } : {}),
      });
      print(!!opts.json, r, describeVmFill(name, r));
    });

  vm.command('status')
    .description("the VM's table: count, max, drops, generator")
    .argument('<name>')
    .option('--json', 'print JSON')
    .action(async (name: string, opts: { json?: boolean }) => {
      const r = await (await vmAttach(name)).status();
      print(!!opts.json, r, describeVmFill(name, r));
    });

  vm.command('exec')
    .description('run a shell command in the VM as root (over the warm SSH connection)')
    .argument('<name>')
    .argument('<command...>')
    .action(async (name: string, command: string[]) => {
      const r = await (await vmAttach(name)).exec(command.join(' '));
      process.stdout.write(r.stdout);
      process.stderr.write(r.stderr);
      if (r.code !== 0) throw new Error(`exit ${r.code}`);
    });

  vm.command('down')
    .description('stop a VM gateway (kills QEMU, removes its state)')
    .argument('[name]')
    .option('--all', 'every VM with a state folder')
    .action(async (name: string | undefined, opts: { all?: boolean }) => {
      const names = opts.all ? (await vmList()).map((v) => v.name) : name ? [name] : [];
      if (!names.length) throw new Error(opts.all ? 'no VMs' : 'give a name or --all');
      for (const n of names) {
        const wasRunning = await vmDown(n);
        process.stdout.write(`vm ${n}: ${wasRunning ? 'stopped' : 'was not running; state removed'}\n`);
      }
    });

  vm.command('list')
    .description('VM gateways with a state folder')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const all = await vmList();
      print(
        !!opts.json,
        all,
        all.length
          ? all
              .map((v) => `${v.name}\t${v.running ? 'running' : 'stopped'}\t127.0.0.1:${v.port}\tqemu ${v.qemuPid}\tmax ${v.bootMax}\tstarted ${v.startedAt}`)
              .join('\n')
          : 'no VM gateways',
      );
    });
}
