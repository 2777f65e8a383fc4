/**
 * How a sudo session calls the helper: `sudo -n <helper> <verb> <args>`. Verbs are the
 * helper's fixed words; arguments are values the command templates already validated
 * (keys, numbers, addresses, plan ids) and are checked once more here to be plain tokens,
 * so nothing needs quoting and nothing can be read by the shell as syntax.
 */
import { HELPER_PATH } from './policy.js';

export const HELPER_VERBS = [
  'ping',
  'stats',
  'dump',
  'list-established',
  'kernel-log',
  'slabinfo',
  'ip-tables-names',
  'ruleset',
  'writable',
  'writable-all',
  'set',
  'set-hashsize',
  'prepare-file',
  'write-file',
  'install-file',
  'remove-file',
  'load-sysctl',
  'iptables-notrack',
  'nft-list',
  'nft-add-table',
  'nft-add-chain',
  'nft-add-rule',
  'nft-delete-rule',
  'nft-delete-table',
  'conntrack-delete',
  'snapshot-write',
  'snapshot-read',
  'snapshot-remove',
] as const;
export type HelperVerb = (typeof HELPER_VERBS)[number];

const PLAIN_TOKEN = /^[A-Za-z0-9._:/-]{1,64}$/;

/** The helper as a sudo session runs it (used inside the facts, poll and dump scripts). */
export const SUDO_HELPER = `sudo -n ${HELPER_PATH}`;

/** `sudo -n <helper> <verb> <args>`; a missing value is passed as `-`. */
export function helperLine(verb: HelperVerb, ...args: ReadonlyArray<string | number | undefined>): string {
  const words = args.map((a) => (a === undefined ? '-' : String(a)));
  for (const w of words) {
    if (!PLAIN_TOKEN.test(w)) throw new Error(`helper argument "${w.slice(0, 40)}" is not a plain token`);
  }
  return [SUDO_HELPER, verb, ...words].join(' ');
}
