/**
 * Lab names, resource names and the address plan. Pure functions: everything a lab
 * owns is derived from its name (and its slot), so `labDown(name)` works after a crash.
 *
 * Addresses live only in 198.18.0.0/15 (RFC 2544 benchmarking range):
 *   198.18.S.0/30        management link: host end .1 (initial namespace), gateway .2
 *   198.18.S.(32c)/27    client c's LAN: gateway .32c+1, client sources .32c+2 ...
 *   198.19.S.0/24        "internet": gateway external (MASQUERADE) .1, server .2
 * S is the lab's slot (1..254), unique among the labs on this machine.
 */
import { randomBytes } from 'node:crypto';

export const LAB_PREFIX = 'cto-';
/** `cto-` + 1..8 lowercase letters/digits. Keeps `<name>-m` within IFNAMSIZ (15). */
export const LAB_NAME_RE = /^cto-[a-z0-9]{1,8}$/;
/** A resource (netns or link) that belongs to a lab, and which lab. */
const RESOURCE_RE = /^([a-z][a-z0-9]{0,7}-[a-z0-9]{1,8})-(gw|srv|c\d{1,2}|m)$/;

export const MAX_CLIENTS = 7;
export const MAX_SOURCES_PER_CLIENT = 29;
export const MIN_SLOT = 1;
export const MAX_SLOT = 254;

export function randomLabName(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  const bytes = randomBytes(6);
  let id = '';
  for (const b of bytes) id += alphabet[b % alphabet.length];
  return `${LAB_PREFIX}${id}`;
}

/** Accepts `cto-demo` or `demo`; throws on anything else. */
export function normalizeLabName(input: string): string {
  const name = input.startsWith(LAB_PREFIX) ? input : `${LAB_PREFIX}${input}`;
  if (!LAB_NAME_RE.test(name)) {
    throw new Error(`invalid lab name "${input}": use cto-<1-8 lowercase letters or digits>`);
  }
  return name;
}

export const resourceNames = {
  gateway: (lab: string) => `${lab}-gw`,
  server: (lab: string) => `${lab}-srv`,
  client: (lab: string, i: number) => `${lab}-c${i}`,
  /** The management veth end that lives in the initial namespace. */
  mgmtLink: (lab: string) => `${lab}-m`,
};

/** The lab a namespace or link name belongs to, or null when it is not a lab resource. */
export function labOfResource(resource: string): string | null {
  const m = RESOURCE_RE.exec(resource);
  return m ? (m[1] ?? null) : null;
}

export interface ClientPlan {
  index: number;
  namespace: string;
  /** Gateway's address on this client's LAN (the client's default route). */
  gatewayLan: string;
  /** Source addresses of this client (first one is the primary). */
  ips: string[];
  prefix: 27;
}

export interface AddressPlan {
  slot: number;
  mgmt: { hostAddress: string; gatewayAddress: string; prefix: 30 };
  clients: ClientPlan[];
  externalAddress: string;
  serverAddress: string;
  wanPrefix: 24;
}

export function planAddresses(lab: string, slot: number, clients: number, sourcesPerClient: number): AddressPlan {
  if (!Number.isInteger(slot) || slot < MIN_SLOT || slot > MAX_SLOT) throw new Error(`slot ${slot} out of range`);
  if (clients < 1 || clients > MAX_CLIENTS) throw new Error(`clients must be 1..${MAX_CLIENTS}`);
  if (sourcesPerClient < 1 || sourcesPerClient > MAX_SOURCES_PER_CLIENT) {
    throw new Error(`sourcesPerClient must be 1..${MAX_SOURCES_PER_CLIENT}`);
  }
  const inner = (host: number) => `198.18.${slot}.${host}`;
  const outer = (host: number) => `198.19.${slot}.${host}`;
  return {
    slot,
    mgmt: { hostAddress: inner(1), gatewayAddress: inner(2), prefix: 30 },
    clients: Array.from({ length: clients }, (_, c) => {
      const base = 32 * (c + 1);
      return {
        index: c,
        namespace: resourceNames.client(lab, c),
        gatewayLan: inner(base + 1),
        ips: Array.from({ length: sourcesPerClient }, (_, k) => inner(base + 2 + k)),
        prefix: 27 as const,
      };
    }),
    externalAddress: outer(1),
    serverAddress: outer(2),
    wanPrefix: 24,
  };
}

/** Parses a dotted quad; null when it is not one. */
export function ipv4ToInt(ip: string): number | null {
  const parts = ip.split('.');
  if (parts.length !== 4) return null;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return null;
    const v = Number(p);
    if (v > 255) return null;
    n = n * 256 + v;
  }
  return n;
}

const LAB_RANGE_START = ipv4ToInt('198.18.0.0')!;
const LAB_RANGE_END = ipv4ToInt('198.19.255.255')!;

/**
 * Slots a CIDR (address/prefix) touches inside 198.18.0.0/15; a route covering the whole
 * range marks every slot. Used to avoid any /24 something else on this machine already uses.
 */
export function slotsTouchedBy(cidr: string): number[] {
  const [addr, lenText] = cidr.split('/');
  const ip = ipv4ToInt(addr ?? '');
  const len = lenText === undefined ? 32 : Number(lenText);
  if (ip === null || !Number.isInteger(len) || len < 0 || len > 32) return [];
  const size = 2 ** (32 - len);
  const start = Math.floor(ip / size) * size;
  const end = start + size - 1;
  if (end < LAB_RANGE_START || start > LAB_RANGE_END) return [];
  const from = Math.max(start, LAB_RANGE_START);
  const to = Math.min(end, LAB_RANGE_END);
  const slots = new Set<number>();
  for (let block = Math.floor(from / 256); block <= Math.floor(to / 256); block++) {
    slots.add(block % 256);
  }
  return [...slots].sort((a, b) => a - b);
}

/** IPv6 in the lab: routed (the server sees the clients' addresses) or NAT66 (masquerade out of wan0). */
export type Ipv6Mode = 'routed' | 'nat66';

export interface AddressPlan6 {
  mode: Ipv6Mode;
  /** The lab's /56 inside 2001:2::/48 (RFC 5180 benchmarking prefix): every /64 below is the slot's. */
  labPrefix: string;
  clients: { index: number; gatewayLan: string; ips: string[]; prefix: 64 }[];
  externalAddress: string;
  serverAddress: string;
  wanPrefix: 64;
}

/**
 * IPv6 addresses of a lab, in 2001:2::/48 (the IPv6 benchmarking prefix; 198.18.0.0/15 is
 * IPv4 only). Slot S owns 2001:2:0:SS00::/56: the "internet" is 2001:2:0:SS00::/64 (gateway
 * ::1, server ::2), client c's LAN is 2001:2:0:SS(c+1)::/64 (gateway ::1, sources ::2 ...).
 * Management stays IPv4.
 */
export function planAddresses6(slot: number, clients: number, sourcesPerClient: number, mode: Ipv6Mode): AddressPlan6 {
  if (!Number.isInteger(slot) || slot < MIN_SLOT || slot > MAX_SLOT) throw new Error(`slot ${slot} out of range`);
  const net = (k: number) => `2001:2:0:${(slot * 256 + k).toString(16)}`;
  return {
    mode,
    labPrefix: `${net(0)}::/56`,
    clients: Array.from({ length: clients }, (_, c) => ({
      index: c,
      gatewayLan: `${net(c + 1)}::1`,
      ips: Array.from({ length: sourcesPerClient }, (_, k) => `${net(c + 1)}::${(2 + k).toString(16)}`),
      prefix: 64 as const,
    })),
    externalAddress: `${net(0)}::1`,
    serverAddress: `${net(0)}::2`,
    wanPrefix: 64,
  };
}
