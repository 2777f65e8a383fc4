/**
 * delete-idle-entries: free ESTABLISHED TCP entries that have been idle longer than
 * the new timeout, by exact tuple, never a flush.
 *
 * Idle time = old timeout - remaining (the timer restarts at the old timeout on each
 * packet). After the timeout was lowered, an entry that saw a packet has remaining
 * <= new timeout: its "idle" computed with the old timeout would be huge and wrong.
 * So an entry is deleted only when
 *
 *     newTimeout < remaining <= oldTimeout - newTimeout
 *
 * i.e. it was last refreshed under the old timeout AND has been silent > newTimeout.
 *
 * Two ways to delete (measured on this 2-core machine, kernel 6.18, conntrack-tools 1.4.7):
 *   - netlink: a fixed python3 script, one IPCTNL_MSG_CT_DELETE per tuple + conntrack id
 *     (O(1) hash lookup, id-guarded). 100k deletions: 3.6 s on the gateway alone; 8-12 s
 *     end to end over SSH from a 200k table (list 200k + select + delete). Used when the
 *     session is root and python3 exists.
 *   - conntrack -R - with `-D ... --state ESTABLISHED` lines: 1.4.7 accepts -D in
 *     --load-file, but every -D line dumps the whole table and filters the tuple in user
 *     space: 40 ms per line at 200k entries run locally, 790 ms per line over SSH at 150k
 *     (test/apply/delete-throughput.test.ts), i.e. 1-20 h for 100k. Allow-listable for sudo,
 *     so it is the sudo path, bounded by maxSlowDeletes (default 500).
 */
import { z } from 'zod';
import { commands, entryTupleSchema, type EntryTuple } from '../gateway/commands.js';
import { CommandFailedError } from '../gateway/errors.js';
import type { GatewaySession } from '../gateway/ssh-session.js';
import { forEachLine } from '../gateway/stream-lines.js';
import type { DeleteReport } from './model.js';
import { readCount } from './gateway-io.js';

export interface ListedEntry extends EntryTuple {
  remaining: number;
}

const listedLineSchema = z.object({
  remaining: z.number().int().min(0),
  tuple: entryTupleSchema,
});

/** One `conntrack -L -p tcp --state ESTABLISHED -o id` line (the original direction comes first); null: not one. */
export function parseEstablishedLine(raw: string): ListedEntry | null {
  const line = raw.trim();
  if (!line) return null;
  const f = line.split(/\s+/);
  if (f[0] !== 'tcp' || f[1] !== '6' || f[3] !== 'ESTABLISHED') return null;
  const kv = (name: string): string | undefined => f.find((x) => x.startsWith(`${name}=`))?.slice(name.length + 1);
  const id = kv('id');
  const zone = kv('zone');
  const parsed = listedLineSchema.safeParse({
    remaining: Number(f[2]),
    tuple: {
      proto: 6,
      src: kv('src'),
      dst: kv('dst'),
      sport: Number(kv('sport')),
      dport: Number(kv('dport')),
      id: id === undefined ? null : Number(id),
      zone: zone === undefined ? null : Number(zone),
    },
  });
  return parsed.success ? { ...parsed.data.tuple, remaining: parsed.data.remaining } : null;
}

/** Parse a whole listing (recorded text; the gateway's own listing is streamed by `listIdleCandidates`). */
export function parseEstablished(text: string): { entries: ListedEntry[]; unparsed: number } {
  const entries: ListedEntry[] = [];
  let unparsed = 0;
  for (const raw of text.split('\n')) {
    if (!raw.trim()) continue;
    const entry = parseEstablishedLine(raw);
    if (entry) entries.push(entry);
    else unparsed += 1;
  }
  return { entries, unparsed };
}

/** Last refreshed under the old timeout and silent longer than the new one (the header's rule). */
export function isIdle(e: ListedEntry, oldTimeout: number, newTimeout: number): boolean {
  return e.remaining > newTimeout && e.remaining <= oldTimeout - newTimeout;
}

export function selectIdle(entries: readonly ListedEntry[], oldTimeout: number, newTimeout: number): ListedEntry[] {
  return entries.filter((e) => isIdle(e, oldTimeout, newTimeout));
}

export function selectionRule(oldTimeout: number, newTimeout: number): string {
  return `${newTimeout} s < remaining <= ${oldTimeout} - ${newTimeout} = ${oldTimeout - newTimeout} s (idle > ${newTimeout} s, last packet under the old ${oldTimeout} s timeout)`;
}

/**
 * The netlink deleter. Input lines: "<proto> <src> <dst> <sport> <dport> <id|-> <zone|->".
 * Output: "deleted=N missing=N failed=N". No single quote anywhere (it travels in '...').
 */
export const NETLINK_DELETE_SCRIPT = `
import socket, struct, sys
NLA_F_NESTED = 0x8000
MSG = (1 << 8) | 2
def attr(t, p):
    n = 4 + len(p)
    return struct.pack("=HH", n, t) + p + b"\\0" * ((4 - n % 4) % 4)
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
s.bind((0, 0))
res = {"deleted": 0, "missing": 0, "failed": 0}
batch = []
seq = 0
def flush():
    global batch
    if not batch:
        return
    s.send(b"".join(batch))
    want = len(batch)
    batch = []
    while want:
        data = s.recv(1 << 20)
        off = 0
        while off < len(data) and want:
            ln, typ = struct.unpack_from("=IH", data, off)
            if typ == 2:
                err = struct.unpack_from("=i", data, off + 16)[0]
                res["deleted" if err == 0 else ("missing" if err == -2 else "failed")] += 1
                want -= 1
            off += (ln + 3) & ~3
for line in sys.stdin:
    f = line.split()
    if len(f) != 7:
        continue
    fam = socket.AF_INET6 if ":" in f[1] else socket.AF_INET
    a = 3 if fam == socket.AF_INET6 else 1
    ip = attr(1 | NLA_F_NESTED, attr(a, socket.inet_pton(fam, f[1])) + attr(a + 1, socket.inet_pton(fam, f[2])))
    pr = attr(2 | NLA_F_NESTED, attr(1, struct.pack("B", int(f[0]))) + attr(2, struct.pack(">H", int(f[3]))) + attr(3, struct.pack(">H", int(f[4]))))
    body = attr(1 | NLA_F_NESTED, ip + pr)
    if f[5] != "-":
        body += attr(12, struct.pack(">I", int(f[5])))
    if f[6] != "-":
        body += attr(18, struct.pack(">H", int(f[6])))
    seq += 1
    msg = struct.pack("=BBH", fam, 0, 0) + body
    batch.append(struct.pack("=IHHII", 16 + len(msg), MSG, 5, seq, 0) + msg)
    if len(batch) >= 256:
        flush()
flush()
print("deleted=%d missing=%d failed=%d" % (res["deleted"], res["missing"], res["failed"]))
`;

const netlinkResultSchema = z
  .string()
  .regex(/deleted=(\d+) missing=(\d+) failed=(\d+)/)
  .transform((s) => {
    const m = /deleted=(\d+) missing=(\d+) failed=(\d+)/.exec(s)!;
    return { deleted: Number(m[1]), missing: Number(m[2]), failed: Number(m[3]) };
  });

function netlinkLine(e: EntryTuple): string {
  return `${e.proto} ${e.src} ${e.dst} ${e.sport} ${e.dport} ${e.id ?? '-'} ${e.zone ?? '-'}`;
}

function conntrackDeleteLine(e: EntryTuple): string {
  const zone = e.zone !== null ? ` -w ${e.zone}` : '';
  return `-D -p tcp -s ${e.src} -d ${e.dst} --sport ${e.sport} --dport ${e.dport} --state ESTABLISHED${zone}`;
}

export interface DeleteOptions {
  oldTimeout: number;
  newTimeout: number;
  /** Use the netlink script (root session with python3) — else conntrack -R. */
  method: 'netlink' | 'conntrack-R';
  /** The conntrack -R path walks the table per line: refuse more than this many (it would take too long). */
  maxSlowDeletes?: number;
}

/** The slow path costs one table walk per entry (0.04-0.8 s each measured): keep it to minutes. */
export const DEFAULT_MAX_SLOW_DELETES = 500;

export class TooManySlowDeletesError extends Error {
  override name = 'TooManySlowDeletesError';
}

/**
 * Bounds of the streamed listing. A real line is ~200 bytes and the listing holds only
 * ESTABLISHED TCP entries: a gateway that prints past these is not printing a conntrack table.
 */
export const LISTING_LIMITS = {
  /** Longest line kept (a real one is < 400 characters). */
  maxLineBytes: 4096,
  /** Lines that are not ESTABLISHED TCP entries before the listing is refused. */
  maxUnparsed: 10_000,
  /** Entries selected for deletion (each is held until the delete): 4x the largest max seen in the field. */
  maxCandidates: 4 * 1024 * 1024,
};

export class ListingRefusedError extends Error {
  override name = 'ListingRefusedError';
}

export interface IdleListing {
  /** Entries listed (ESTABLISHED TCP lines that parsed). */
  listed: number;
  /** The ones idle longer than the new timeout (selectIdle's rule), the only ones kept. */
  candidates: ListedEntry[];
  unparsed: number;
  bytes: number;
}

/**
 * Stream `conntrack -L -p tcp --state ESTABLISHED -o id` through the parser and keep only
 * the entries to delete: memory is bounded by the candidates, not by what the gateway prints.
 */
export async function listIdleCandidates(session: GatewaySession, oldTimeout: number, newTimeout: number, limits = LISTING_LIMITS): Promise<IdleListing> {
  const cmd = commands.listEstablished();
  const { stdout, done, abort } = await session.stream(cmd, { timeoutMs: 180_000 });
  const candidates: ListedEntry[] = [];
  let listed = 0;
  let unparsed = 0;
  const stop: { reason: string | null } = { reason: null };
  const read = await forEachLine(
    stdout,
    (line) => {
      if (!line.trim()) return true;
      const entry = parseEstablishedLine(line);
      if (!entry) {
        unparsed += 1;
        if (unparsed > limits.maxUnparsed) stop.reason = `more than ${limits.maxUnparsed.toLocaleString('en-US')} of its lines are not ESTABLISHED TCP entries`;
        return stop.reason === null;
      }
      listed += 1;
      if (!isIdle(entry, oldTimeout, newTimeout)) return true;
      if (candidates.length >= limits.maxCandidates) {
        stop.reason = `more than ${limits.maxCandidates.toLocaleString('en-US')} entries would be deleted`;
        return false;
      }
      candidates.push(entry);
      return true;
    },
    limits.maxLineBytes,
  ).catch((err: unknown) => {
    abort();
    throw err;
  });
  if (read.stopped) abort();
  const exit = await done;
  unparsed += read.overlong;
  if (stop.reason !== null) {
    throw new ListingRefusedError(`"${cmd.label}" on ${session.gatewayName}: ${stop.reason} (read ${read.bytes.toLocaleString('en-US')} bytes); the bot stopped reading and deleted nothing.`);
  }
  if (exit.code !== 0) throw new CommandFailedError(cmd.label, exit.code, exit.stderr);
  return { listed, candidates, unparsed, bytes: read.bytes };
}

/** List, select and delete. Counts before/after come from nf_conntrack_count. */
export async function deleteIdleEntries(session: GatewaySession, opts: DeleteOptions): Promise<DeleteReport> {
  const started = performance.now();
  const countBefore = await readCount(session);
  const listing = await listIdleCandidates(session, opts.oldTimeout, opts.newTimeout);
  const candidates = listing.candidates;
  let result = { deleted: 0, missing: 0, failed: 0 };
  if (candidates.length > 0) {
    if (opts.method === 'netlink') {
      const r = await session.exec(commands.netlinkDelete(NETLINK_DELETE_SCRIPT), {
        stdin: candidates.map(netlinkLine).join('\n') + '\n',
        timeoutMs: 120_000 + candidates.length,
      });
      result = netlinkResultSchema.parse(r.stdout.trim());
    } else {
      const limit = opts.maxSlowDeletes ?? DEFAULT_MAX_SLOW_DELETES;
      if (candidates.length > limit) {
        throw new TooManySlowDeletesError(
          `${candidates.length} idle entries to delete, but this session only has the slow path (conntrack -R: one full table walk per entry, ` +
            `0.04-0.8 s each); limit ${limit}. Apply as root on a gateway with python3 (netlink path: ~100k in seconds), or let the entries expire on their old timers.`,
        );
      }
      const r = await session.exec(commands.conntrackLoadFile(), {
        stdin: candidates.map(conntrackDeleteLine).join('\n') + '\n',
        timeoutMs: 60_000 + candidates.length * 2_000,
        allowFailure: true,
      });
      // conntrack prints each deleted entry on stdout.
      const deleted = r.stdout.split('\n').filter((l) => /^\s*tcp\s+6\s/.test(l)).length;
      result = { deleted, missing: candidates.length - deleted, failed: r.code === 0 ? 0 : candidates.length - deleted };
    }
  }
  const countAfter = await readCount(session);
  return {
    method: opts.method,
    listed: listing.listed,
    candidates: candidates.length,
    deleted: result.deleted,
    missing: result.missing,
    failed: result.failed,
    countBefore,
    countAfter,
    durationMs: Math.round(performance.now() - started),
    rule: selectionRule(opts.oldTimeout, opts.newTimeout),
  };
}
