/**
 * Gateway inventory: a YAML file listing the gateways the bot may reach.
 * Validated with zod; every error names the gateway and the field.
 */
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

/** Gateway names are also used in Slack commands and Redis keys: keep them tame. */
export const gatewayNameSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{0,62}$/i, 'gateway names are 1-63 letters, digits, ".", "_" or "-"');

const hostKeySchema = z
  .string()
  .regex(/^SHA256:[A-Za-z0-9+/]{43}=?$/, 'hostKey must be a SHA256 fingerprint as `ssh-keygen -lf` prints it (SHA256:...)');

const hostSchema = z.string().min(1).max(253).regex(/^[A-Za-z0-9.:_-]+$/, 'host must be a hostname or an IP address');

export const jumpHostSchema = z.object({
  host: hostSchema,
  port: z.number().int().min(1).max(65535).default(22),
  user: z.string().min(1).max(32),
  identityFile: z.string().min(1),
  hostKey: hostKeySchema,
});

export const thresholdsSchema = z.object({
  /** Percent of max at which the table is reported as high (warning). */
  warnPercent: z.number().min(1).max(100).default(80),
  /** Percent of max at which the table is reported as saturated (critical). */
  critPercent: z.number().min(1).max(100).default(95),
  /** Share of all entries one source may own before it is a heavy hitter. */
  heavyHitterShare: z.number().min(0.01).max(1).default(0.25),
});
export type Thresholds = z.infer<typeof thresholdsSchema>;

export const gatewayConfigSchema = z.object({
  host: hostSchema,
  port: z.number().int().min(1).max(65535).default(22),
  user: z.string().min(1).max(32).regex(/^[a-z_][a-z0-9_-]*$/i, 'user must be a plain login name'),
  identityFile: z.string().min(1),
  hostKey: hostKeySchema,
  /** Run privileged commands through `sudo -n` (user is not root). */
  sudo: z.boolean().default(false),
  jumpHost: jumpHostSchema.optional(),
  labels: z.record(z.string(), z.string()).default({}),
  thresholds: thresholdsSchema.default(thresholdsSchema.parse({})),
  /** SSH connect + handshake limit for this gateway. */
  connectTimeoutMs: z.number().int().min(500).max(120_000).optional(),
  /** Default limit for one command on this gateway. */
  commandTimeoutMs: z.number().int().min(1000).max(600_000).optional(),
  /**
   * The address the bot's SSH connections come from, as the gateway sees it.
   * Used for the management-SSH NOTRACK step; learned from $SSH_CONNECTION when absent.
   */
  managementSource: z.string().optional(),
  /** Other names this gateway goes by in alerts (Prometheus `instance` hosts), matched besides `host`. */
  aliases: z.array(hostSchema).default([]),
  /** The watch: poll interval for this gateway (default WATCH_INTERVAL_SECONDS, 30). */
  watch: z.object({ intervalSeconds: z.number().int().min(1).max(3600).optional() }).default({}),
});
export type GatewayConfig = z.infer<typeof gatewayConfigSchema>;

export const inventorySchema = z.object({
  gateways: z.record(gatewayNameSchema, gatewayConfigSchema),
});
export type Inventory = z.infer<typeof inventorySchema>;

export class InventoryError extends Error {
  override name = 'InventoryError';
}

function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => `  - ${issue.path.length ? issue.path.join('.') : '(top level)'}: ${issue.message}`)
    .join('\n');
}

export function parseInventory(text: string, source = 'inventory'): Inventory {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new InventoryError(`${source} is not valid YAML: ${(err as Error).message}`);
  }
  const result = inventorySchema.safeParse(raw);
  if (!result.success) {
    throw new InventoryError(`${source} is malformed:\n${describeIssues(result.error)}`);
  }
  return result.data;
}

export async function loadInventory(path: string): Promise<Inventory> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new InventoryError(`cannot read inventory ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return parseInventory(text, path);
}

export function findGateway(inventory: Inventory, name: string): GatewayConfig {
  const gw = inventory.gateways[name];
  if (!gw) {
    const known = Object.keys(inventory.gateways);
    throw new InventoryError(
      `unknown gateway "${name}"; the inventory has ${known.length ? known.join(', ') : 'no gateways'}`,
    );
  }
  return gw;
}
