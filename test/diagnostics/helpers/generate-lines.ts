/**
 * Deterministic synthetic conntrack lines in the exact shapes recorded in
 * test/fixtures/conntrack-L.txt / proc-nf_conntrack.txt, for throughput and memory tests.
 * Addresses are in 198.18.0.0/15 only.
 */

export interface GenerateOptions {
  /** 'conntrack' = `conntrack -L`, 'proc' = /proc/net/nf_conntrack. */
  format?: 'conntrack' | 'proc';
  /** Distinct client addresses (orig.src); defaults to 250. */
  sources?: number;
  /** Distinct destination addresses; defaults to 50. */
  destinations?: number;
  /** Seed for the xorshift generator. */
  seed?: number;
}

function xorshift(seed: number): () => number {
  let x = seed >>> 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

function addr(base: number, n: number): string {
  // 198.18.0.0/15: 131,072 addresses; base 0 = 198.18.x.x, base 1 = 198.19.x.x
  const v = n % 65536;
  return `198.${18 + base}.${v >> 8}.${v & 255}`;
}

/** Line number i of a synthetic table. */
export function* generateLines(count: number, opts: GenerateOptions = {}): Generator<string> {
  const rnd = xorshift(opts.seed ?? 1);
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
