/** Constants of the plan computation, each with the reason it has this value. */

/**
 * Idle-time thresholds (seconds) the table aggregator counts ESTABLISHED
 * entries against (TableSummary.establishedIdle.idleAtLeast["3600"] = entries
 * idle >= 1 h). The check pipeline passes this list to the aggregator.
 */
export const IDLE_THRESHOLDS = [300, 600, 1800, 3600, 7200, 21_600, 86_400] as const;

/**
 * ESTABLISHED timeouts the plan may propose, largest (safest) first. Nothing
 * below 1 h: applications that never send keepalives would lose quiet NATed
 * connections in bulk, and Linux's default TCP keepalive fires after 2 h.
 */
export const ESTABLISHED_CANDIDATES = [86_400, 21_600, 7200, 3600] as const;
/** Entries idle this long are counted as dead (no keepalive of any kind for a day). */
export const DEAD_IDLE_SECONDS = 86_400;
/** Linux tcp_keepalive_time default: connections relying on it are silent for 2 h. */
export const TCP_KEEPALIVE_DEFAULT = 7200;
/** The timeout change should bring the table down to this share of max. */
export const TARGET_FILL_AFTER_RELIEF = 0.5;

/** New max = this x the observed need (then rounded up). */
export const HEADROOM_FACTOR = 2;
/** The whole table (entries + buckets) may use at most this share of MemTotal. */
export const MEMORY_BUDGET_FRACTION = 0.05;
/** Per-entry cost assumed when /proc/slabinfo could not be read (struct nf_conn with its slab overhead). */
export const ASSUMED_ENTRY_BYTES = 320;
/** Sizes up to this round to a power of two, above it to a multiple of it. */
export const SIZE_GRANULARITY = 65_536;

/** TIME_WAIT / CLOSE_WAIT timeouts proposed when they pile up. */
export const TIME_WAIT_TARGET = 30;
export const CLOSE_WAIT_TARGET = 30;

/** A heavy hitter is a "flow" when one destination holds at least this share of its entries. */
export const FLOW_DESTINATION_SHARE = 0.5;
