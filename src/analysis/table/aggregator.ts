/**
 * Aggregation of a conntrack table dump, line by line, into a TableSummary.
 *
 * Memory stays flat whatever the table size: each line is parsed and counted, and the
 * top-k lists use bounded Space-Saving counters (exact while the distinct keys fit in
 * `capacity`, `approximate: true` beyond). Only counters are kept, never entries.
 */
import { tableSummarySchema, type ConntrackEntry, type TableSummary } from '../../core/model.js';
import { ESTABLISHED_TIMEOUT_HEADER, TABLE_DUMP_HEADERS } from '../../diagnostics/dump-format.js';
import { AddressCache } from '../../diagnostics/parsers/address-cache.js';
import { parseConntrackBytes, parseConntrackLine, scratchEntry } from '../../diagnostics/parsers/conntrack-line.js';
import { detachString } from './detach-string.js';
import { HeavyHitters, SpaceSaving } from './space-saving.js';
import { PortIndex, type PortKey } from './port-index.js';
import { ProfileTracker } from './source-profiles.js';
import { countState, flattenStates, type StateCounts } from './state-counts.js';

export interface AggregatorContext {
  /**
   * nf_conntrack_tcp_timeout_established in effect when the table was dumped (seconds).
   * A dump that starts with an `@@established-timeout N` header line (TABLE_DUMP_COMMAND)
   * overrides it: the value read at the moment of the dump.
   */
  establishedTimeout: number;
  /**
   * The kernel's short TCP timer (max of nf_conntrack_tcp_timeout_unacknowledged and
   * _max_retrans, 300 s by default; a dump's `@@short-timer` header overrides it). An
   * ESTABLISHED entry with no more than this left may be active with data in flight: it
   * is counted in `establishedIdle.shortTimer`, never as idle.
   */
  shortTimerSeconds?: number;
  /** Idle thresholds in seconds; each gets `establishedIdle.idleAtLeast[String(t)]`. */
  idleThresholds: number[];
  /** Length of each top list (default 10). */
  topK?: number;
  /** Counters per top list (default 20,000): exact while distinct keys stay within it. */
  capacity?: number;
  /** Sources profiled in detail for `sourceProfiles` (default 64; at least topK). */
  profileCapacity?: number;
}

export const DEFAULT_TOP_K = 10;
export const DEFAULT_CAPACITY = 20_000;
export const DEFAULT_PROFILE_CAPACITY = 64;
/** nf_conntrack_tcp_timeout_unacknowledged and _max_retrans default (seconds). */
export const DEFAULT_SHORT_TIMER_SECONDS = 300;
/** The state key offloaded entries are counted under ("tcp OFFLOAD"): the kernel prints none. */
export const OFFLOAD_STATE = 'OFFLOAD';
const UNPARSED_SAMPLE_MAX = 5;
/** What is decoded of a line that is not an entry (headers and conntrack's summary are short). */
const MAX_OTHER_LINE_BYTES = 4096;
const UNPARSED_SAMPLE_CHARS = 300;

/** Lines that are not entries and not errors: blanks and conntrack's stderr summary. */
function isIgnorable(line: string): boolean {
  const t = line.trim();
  return t.length === 0 || (t.startsWith('conntrack v') && t.endsWith('flow entries have been shown.'));
}

export class TableAggregator {
  private establishedTimeout: number;
  private shortTimer: number;
  private readonly topK: number;
  private readonly thresholds: number[];
  private readonly idleCounts: number[];
  private readonly deletableCounts: number[];
  private readonly startedAt = performance.now();
  private entries = 0;
  private unparsed = 0;
  private readonly unparsedSample: string[] = [];
  private readonly states: StateCounts = new Map();
  private assured = 0;
  private unreplied = 0;
  private offloaded = 0;
  private hardwareOffloaded = 0;
  private readonly sources: SpaceSaving;
  private readonly destinations: SpaceSaving;
  private readonly portUse: HeavyHitters<PortKey>;
  /** Reused lookup key (the store copies it when a new key is stored). */
  private readonly portKey: PortKey = { nat: '', dst: '', dport: 0, proto: '', protoNum: 0 };
  private readonly profiles: ProfileTracker;
  private establishedTotal = 0;
  private establishedAboveTimeout = 0;
  private establishedShortTimer = 0;
  /** Parsed into by addLine (entries are counted, never kept). */
  private readonly scratch = scratchEntry();
  /** Addresses of this table's lines (the same few repeat: no string per address). */
  private readonly addresses = new AddressCache();

  constructor(ctx: AggregatorContext) {
    if (!Number.isFinite(ctx.establishedTimeout) || ctx.establishedTimeout < 0) {
      throw new RangeError(`establishedTimeout must be a non-negative number, got ${ctx.establishedTimeout}`);
    }
    this.establishedTimeout = ctx.establishedTimeout;
    this.shortTimer = ctx.shortTimerSeconds ?? DEFAULT_SHORT_TIMER_SECONDS;
    this.topK = ctx.topK ?? DEFAULT_TOP_K;
    this.thresholds = [...new Set(ctx.idleThresholds)].filter((t) => Number.isFinite(t)).sort((a, b) => a - b);
    this.idleCounts = this.thresholds.map(() => 0);
    this.deletableCounts = this.thresholds.map(() => 0);
    const capacity = ctx.capacity ?? DEFAULT_CAPACITY;
    this.sources = new SpaceSaving(capacity);
    this.destinations = new SpaceSaving(capacity);
    this.portUse = new HeavyHitters(capacity, new PortIndex(capacity));
    this.profiles = new ProfileTracker(Math.max(ctx.profileCapacity ?? DEFAULT_PROFILE_CAPACITY, this.topK));
  }

  /** Parse and count one line; blank lines and conntrack's summary line are ignored. */
  addLine(line: string): void {
    const entry = parseConntrackLine(line, this.scratch);
    if (entry !== null) this.addEntry(entry);
    else this.addOther(line);
  }

  /**
   * The same for the line in buf[start, end) as it arrived (no newline): read in place, only
   * a line that is not an entry is decoded.
   */
  addLineBytes(buf: Buffer, start: number, end: number): void {
    const entry = parseConntrackBytes(buf, start, end, this.scratch, this.addresses);
    if (entry !== null) this.addEntry(entry);
    else this.addOther(buf.toString('utf8', start, Math.min(end, start + MAX_OTHER_LINE_BYTES)));
  }

  /** Count a "line" too long to be one (its first bytes, from the line splitter) as unparsed. */
  addUnparsedBytes(head: Buffer): void {
    this.addUnparsed(head.toString('utf8', 0, Math.min(head.length, UNPARSED_SAMPLE_CHARS)));
  }

  /** A line that is not an entry: a header, an ignorable line, or unparsed. */
  private addOther(line: string): void {
    if (isIgnorable(line)) return;
    if (this.entries === 0 && this.readHeader(line)) return;
    this.addUnparsed(line);
  }

  /**
   * The dump's own timeouts (TABLE_DUMP_COMMAND's header lines), read before any entry.
   * Values the gateway could not read are empty and keep the configured ones; anything
   * else that is not a number is counted as unparsed. False: not a header line.
   */
  private readHeader(line: string): boolean {
    const header = TABLE_DUMP_HEADERS.find((h) => line.startsWith(`${h} `) || line === h);
    if (header === undefined) return false;
    const values = line.slice(header.length).trim().split(/\s+/).filter((v) => v !== '');
    if (!values.every((v) => /^\d{1,9}$/.test(v))) {
      this.addUnparsed(line);
      return true;
    }
    if (values.length === 0) return true;
    const seconds = values.map(Number);
    if (header === ESTABLISHED_TIMEOUT_HEADER) this.establishedTimeout = seconds[0] as number;
    else this.shortTimer = Math.max(...seconds);
    return true;
  }

  /** Count a line that is not an entry (kept in a small sample). */
  addUnparsed(line: string): void {
    this.unparsed++;
    if (this.unparsedSample.length < UNPARSED_SAMPLE_MAX) {
      this.unparsedSample.push(detachString(line.length > UNPARSED_SAMPLE_CHARS ? line.slice(0, UNPARSED_SAMPLE_CHARS) : line));
    }
  }

  addEntry(entry: ConntrackEntry): void {
    this.entries++;
    const proto = entry.proto;
    if (entry.offload !== undefined) {
      // No timeout and no state: the flowtable keeps it alive. Its addresses and ports still count.
      this.offloaded++;
      if (entry.offload === 'hardware') this.hardwareOffloaded++;
      countState(this.states, proto, OFFLOAD_STATE);
    } else {
      countState(this.states, proto, entry.state ?? '');
    }
    if (entry.assured) this.assured++;
    if (entry.unreplied) this.unreplied++;
    const orig = entry.orig;
    const sourceCount = this.sources.add(orig.src);
    this.destinations.add(orig.dst);
    // NAT port use: source-NATed entries (the reply goes to another address than the
    // client) with ports; one port space per (NAT address, dst, dport, proto).
    if (orig.dport !== undefined && entry.reply.dst !== orig.src) {
      const k = this.portKey;
      k.nat = entry.reply.dst;
      k.dst = orig.dst;
      k.dport = orig.dport;
      k.proto = proto;
      k.protoNum = entry.protoNum;
      this.portUse.add(k);
    }
    this.profiles.add(entry, sourceCount);
    if (proto === 'tcp' && entry.state === 'ESTABLISHED' && entry.offload === undefined) {
      this.establishedTotal++;
      const idle = this.establishedTimeout - entry.timeout;
      if (idle < 0) {
        this.establishedAboveTimeout++;
        return;
      }
      // On the short timer (data in flight, retransmissions, zero window) the remaining time
      // says nothing about idleness: 20 live connections in a lab test showed it under load.
      if (entry.timeout <= this.shortTimer && this.shortTimer < this.establishedTimeout) {
        this.establishedShortTimer++;
        return;
      }
      const t = this.thresholds;
      for (let i = 0; i < t.length; i++) {
        const threshold = t[i] as number;
        if (idle < threshold) break;
        this.idleCounts[i] = (this.idleCounts[i] as number) + 1;
        // What a delete after lowering the timeout to `threshold` removes (idle-delete's
        // selectIdle): entries with no more than that left expire within it anyway, and after
        // the change a packet-refreshed entry also has no more than that left.
        if (entry.timeout > threshold) this.deletableCounts[i] = (this.deletableCounts[i] as number) + 1;
      }
    }
  }

  finish(): TableSummary {
    const topK = this.topK;
    const counted = (s: SpaceSaving) => s.top(topK).map(({ key, count }) => ({ key, count }));
    const topSources = counted(this.sources);
    const idleAtLeast: Record<string, number> = {};
    const deletable: Record<string, number> = {};
    this.thresholds.forEach((t, i) => {
      idleAtLeast[String(t)] = this.idleCounts[i] as number;
      deletable[String(t)] = this.deletableCounts[i] as number;
    });
    const byProto: Record<string, number> = {};
    for (const [proto, byState] of this.states) {
      let n = 0;
      for (const c of byState.values()) n += c.n;
      byProto[proto] = n;
    }
    const summary: TableSummary = {
      entries: this.entries,
      unparsed: this.unparsed,
      unparsedSample: [...this.unparsedSample],
      byProto,
      states: flattenStates(this.states),
      assured: this.assured,
      unreplied: this.unreplied,
      offloaded: { total: this.offloaded, hardware: this.hardwareOffloaded },
      topSources,
      topDestinations: counted(this.destinations),
      topPortUse: this.portUse
        .topCounters(topK)
        .map(({ key, count }) => ({ natSource: key.nat, dst: key.dst, dport: key.dport, proto: key.proto, count })),
      sourceProfiles: topSources.flatMap(({ key }) => {
        const p = this.profiles.profile(key);
        return p === undefined ? [] : [p];
      }),
      approximate: this.sources.approximate || this.destinations.approximate || this.portUse.approximate,
      establishedIdle: {
        timeoutUsed: this.establishedTimeout,
        total: this.establishedTotal,
        idleAtLeast,
        deletable,
        aboveTimeout: this.establishedAboveTimeout,
        shortTimer: this.establishedShortTimer,
        shortTimerSeconds: this.shortTimer,
      },
      durationMs: Math.round(performance.now() - this.startedAt),
    };
    return tableSummarySchema.parse(summary);
  }
}
