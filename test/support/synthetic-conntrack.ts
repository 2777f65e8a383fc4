/**
 * Synthetic conntrack tables, deterministic (seeded-random.ts), for tests and
 * benchmarks. Two shapes:
 *
 *   generateLines  the exact line shapes recorded in test/fixtures/conntrack-L.txt and
 *                  proc-nf_conntrack.txt, with chosen numbers of distinct sources and
 *                  destinations (addresses in 198.18.0.0/15 only): exactness, memory and
 *                  parser-throughput tests.
 *   generateDump   a realistic `conntrack -L` dump written to a file for the parser
 *                  benchmark, made from the real fixture lines: each generated line is one of
 *                  them with its addresses, ports, ids and timeouts replaced, so every
 *                  protocol, flag and field layout of the fixtures appears.
 *                    sources       ~8,000 client addresses, skewed (one heavy hitter ~6 %, then a long tail)
 *                    destinations  ~3,000 servers; the fixture's destination port is kept
 *                    NAT           the reply goes to one of 4 external addresses (about 5 % not NATed)
 *                    timeouts      ESTABLISHED 0..432,000 s, TIME_WAIT 0..120 s, UDP 0..180 s
 *                  Written to a temporary directory at bench time, never to git.
 */
import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';
import { mulberry32, seededRandom } from './seeded-random.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/conntrack-L.txt', import.meta.url));

// ---------------------------------------------------------------- generateLines

export interface GenerateOptions {
  /** 'conntrack' = `conntrack -L`, 'proc' = /proc/net/nf_conntrack. */
  format?: 'conntrack' | 'proc';
  /** Distinct client addresses (orig.src); defaults to 250. */
  sources?: number;
  /** Distinct destination addresses; defaults to 50. */
  destinations?: number;
  /** Seed of the PRNG (mulberry32). */
  seed?: number;
}

function addr(base: number, n: number): string {
  // 198.18.0.0/15: 131,072 addresses; base 0 = 198.18.x.x, base 1 = 198.19.x.x
  const v = n % 65536;
  return `198.${18 + base}.${v >> 8}.${v & 255}`;
}

/** Line number i of a synthetic table. */
export function* generateLines(count: number, opts: GenerateOptions = {}): Generator<string> {
  const rnd = mulberry32(opts.seed ?? 1);
  const sources = opts.sources ?? 250;
  const destinations = opts.destinations ?? 50;
  const proc = opts.format === 'proc';
  const nat = '198.19.255.1';
  for (let i = 0; i < count; i++) {
    const r = rnd();
    const src = addr(0, 2 + (r % sources));
    const dst = addr(1, 10 + ((r >>> 8) % destinations));
    const sport = 1024 + ((r >>> 3) % 64000);
    const nport = 1024 + (i % 64000);
    const kind = r % 10;
    let line: string;
    if (kind < 6) {
      const timeout = 432000 - ((r >>> 4) % 432000);
      line = `tcp      6 ${timeout} ESTABLISHED src=${src} dst=${dst} sport=${sport} dport=443 src=${dst} dst=${nat} sport=443 dport=${nport} [ASSURED] mark=0`;
    } else if (kind < 8) {
      line = `tcp      6 ${(r >>> 5) % 120} TIME_WAIT src=${src} dst=${dst} sport=${sport} dport=80 src=${dst} dst=${nat} sport=80 dport=${nport} [ASSURED] mark=0`;
    } else if (kind < 9) {
      line = `udp      17 ${(r >>> 5) % 30} src=${src} dst=${dst} sport=${sport} dport=53 [UNREPLIED] src=${dst} dst=${nat} sport=53 dport=${nport} mark=0`;
    } else {
      line = `icmp     1 ${(r >>> 5) % 30} src=${src} dst=${dst} type=8 code=0 id=${r & 0xffff} src=${dst} dst=${nat} type=0 code=0 id=${r & 0xffff} mark=0`;
    }
    yield proc ? `ipv4     2 ${line} zone=0 use=2` : `${line} use=1`;
  }
}

// ---------------------------------------------------------------- generateDump

interface Template {
  parts: string[];
  v6: boolean;
  weight: number;
  timeoutIdx: number;
  timeoutMax: number;
  /** Indexes of src=/dst=/sport=/dport=/id= tokens: [original, reply]. */
  src: number[];
  dst: number[];
  sport: number[];
  dport: number[];
  id: number[];
}

function templateOf(line: string): Template | null {
  const parts = line.split(' ');
  const t: Template = { parts, v6: false, weight: 1, timeoutIdx: -1, timeoutMax: 0, src: [], dst: [], sport: [], dport: [], id: [] };
  let word = 0;
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i] as string;
    if (p === '') continue;
    word++;
    if (word === 3) t.timeoutIdx = i;
    if (p.startsWith('src=')) t.src.push(i);
    else if (p.startsWith('dst=')) t.dst.push(i);
    else if (p.startsWith('sport=')) t.sport.push(i);
    else if (p.startsWith('dport=')) t.dport.push(i);
    else if (p.startsWith('id=')) t.id.push(i);
  }
  if (t.src.length !== 2 || t.dst.length !== 2 || t.timeoutIdx < 0) return null;
  t.v6 = (parts[t.src[0] as number] as string).includes(':');
  const proto = parts[0] as string;
  if (line.includes(' ESTABLISHED ') && proto === 'tcp') [t.weight, t.timeoutMax] = [t.v6 ? 3 : 14, 432_000];
  else if (line.includes(' TIME_WAIT ')) [t.weight, t.timeoutMax] = [8, 120];
  else if (proto === 'udp') [t.weight, t.timeoutMax] = [t.v6 ? 2 : 6, 180];
  else if (proto === 'tcp') [t.weight, t.timeoutMax] = [2, 120];
  else [t.weight, t.timeoutMax] = [0.5, 600];
  return t;
}

export interface GeneratedFile {
  path: string;
  lines: number;
  bytes: number;
  ms: number;
  templates: number;
}

/** Writes `lines` generated lines to `path`. */
export async function generateDump(path: string, lines: number, seed = 0x5eed): Promise<GeneratedFile> {
  const t0 = performance.now();
  const templates = (await readFile(FIXTURE, 'utf8'))
    .split('\n')
    .filter((l) => l.trim().length > 0)
    .map(templateOf)
    .filter((t): t is Template => t !== null);
  if (templates.length < 10) throw new Error(`expected the fixture lines of ${FIXTURE}, found ${templates.length} usable`);
  const totalWeight = templates.reduce((s, t) => s + t.weight, 0);
  const rnd = seededRandom(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
  const pick = (): Template => {
    let r = rnd() * totalWeight;
    for (const t of templates) {
      r -= t.weight;
      if (r <= 0) return t;
    }
    return templates[templates.length - 1] as Template;
  };
  const client = (v6: boolean): string => {
    // ~6 % from one heavy hitter, the rest skewed over ~8,000 clients (u^3: a long tail).
    const n = rnd() < 0.06 ? 0 : 1 + Math.floor(rnd() ** 3 * 8000);
    return v6 ? `2001:db8:10::${n.toString(16)}` : `10.${20 + (n >> 16)}.${(n >> 8) & 255}.${n & 255}`;
  };
  const server = (v6: boolean): string => {
    const n = Math.floor(rnd() ** 2 * 3000);
    return v6 ? `2001:db8:ff::${(n + 1).toString(16)}` : `${n < 1500 ? '203.0' : '198.51'}.${113 + (n % 5)}.${1 + (n % 250)}`;
  };
  const nat = (v6: boolean): string => (v6 ? `2001:db8:1::${int(1, 4)}` : `192.0.2.${int(1, 4)}`);

  const out = createWriteStream(path, { highWaterMark: 1 << 20 });
  let bytes = 0;
  const BATCH = 5000;
  for (let done = 0; done < lines; ) {
    const n = Math.min(BATCH, lines - done);
    const batch: string[] = new Array<string>(n);
    for (let k = 0; k < n; k++) {
      const t = pick();
      const p = t.parts.slice();
      const src = client(t.v6);
      const dst = server(t.v6);
      const natted = rnd() >= 0.05;
      const replyDst = natted ? nat(t.v6) : src;
      p[t.src[0] as number] = `src=${src}`;
      p[t.dst[0] as number] = `dst=${dst}`;
      p[t.src[1] as number] = `src=${dst}`;
      p[t.dst[1] as number] = `dst=${replyDst}`;
      if (t.sport.length === 2 && t.dport.length === 2) {
        const sport = int(1024, 65535);
        const natPort = natted && rnd() < 0.3 ? int(1024, 65535) : sport;
        p[t.sport[0] as number] = `sport=${sport}`;
        p[t.dport[1] as number] = `dport=${natPort}`;
      }
      if (t.id.length === 2) {
        const id = int(1, 65535);
        p[t.id[0] as number] = `id=${id}`;
        p[t.id[1] as number] = `id=${id}`;
      }
      p[t.timeoutIdx] = String(int(0, t.timeoutMax));
      batch[k] = p.join(' ');
    }
    const text = `${batch.join('\n')}\n`;
    bytes += Buffer.byteLength(text);
    if (!out.write(text)) await once(out, 'drain');
    done += n;
  }
  out.end();
  await once(out, 'finish');
  return { path, lines, bytes, ms: Math.round(performance.now() - t0), templates: templates.length };
}
