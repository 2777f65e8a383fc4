/**
 * What conntrack-ops owns on a gateway, declared once: the files it writes, the kernel
 * parameter the hash size is set through, the tags its firewall rules carry and the nft
 * table it keeps them in. The plan, the apply, the command templates, the sudo helper
 * and the parsers that recognise our own rules all import these.
 */

/** Paths of the files conntrack-ops manages on a gateway (fixed, never user given). */
export const MANAGED_FILES = {
  sysctl: '/etc/sysctl.d/90-conntrack-ops.conf',
  modprobe: '/etc/modprobe.d/conntrack-ops.conf',
} as const;
export type ManagedFile = keyof typeof MANAGED_FILES;

/** Suggested (never written by the bot): load nf_conntrack before systemd-sysctl runs. */
export const MODULES_LOAD_FILE = '/etc/modules-load.d/conntrack-ops.conf';

/** The kernel parameter the hash size is set through. */
export const HASHSIZE_PATH = '/sys/module/nf_conntrack/parameters/hashsize';

/** Comment tag carried by every firewall rule conntrack-ops adds (prefix of the NOTRACK tags). */
export const RULE_TAG = 'conntrack-ops';

/** Tags carried (as iptables/nft comments) by the NOTRACK rules conntrack-ops adds, per purpose. */
export const NOTRACK_TAG = {
  management: `${RULE_TAG}:mgmt-ssh`,
  flow: `${RULE_TAG}:flow`,
} as const;
export const NOTRACK_TAGS = [NOTRACK_TAG.management, NOTRACK_TAG.flow] as const;
export type NotrackTag = (typeof NOTRACK_TAGS)[number];

/** The nft table conntrack-ops owns (nothing else is ever added to or removed from it by the bot). */
export const NFT_TABLE_NAME = 'conntrack_ops';
/** Its family and name, as nft commands spell them. */
export const NFT_TABLE = `inet ${NFT_TABLE_NAME}`;
export const NFT_CHAINS = ['prerouting', 'output'] as const;
export type NftChain = (typeof NFT_CHAINS)[number];
