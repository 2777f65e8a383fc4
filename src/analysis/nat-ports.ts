/**
 * NAT source-port space. MASQUERADE and SNAT without --to-ports pick the
 * translated source port from 1024-65535 (ports below 1024 stay below 1024):
 * 64,512 ports per (NAT address, destination address, destination port,
 * protocol). ip_local_port_range only governs the gateway's own connections.
 */
export const NAT_PORT_MIN = 1024;
export const NAT_PORT_MAX = 65_535;
export const USABLE_NAT_PORTS = NAT_PORT_MAX - NAT_PORT_MIN + 1; // 64,512

/** Protocols whose NAT mapping is a port. */
export const PORT_PROTOCOLS: ReadonlySet<string> = new Set(['tcp', 'udp', 'udplite', 'sctp', 'dccp']);

/** Share of the port space at which a tuple is reported (warning) and critical. */
export const PORT_WARN_SHARE = 0.5;
export const PORT_CRIT_SHARE = 0.9;
