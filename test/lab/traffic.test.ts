import { describe, expect, it } from 'vitest';
import { splitByFlows, splitBySockets, type FlowGroup } from '../../lab/traffic.js';

/** Expands groups to flows the way ctgen / udpflood.mjs enumerate them. */
function flows(gs: FlowGroup[]): string[] {
  return gs.flatMap((g) =>
    Array.from({ length: g.count }, (_, i) => `${g.src}:${1024 + ((g.sportOffset + Math.floor(i / g.dportCount)) % 64512)}>${g.dportLo + (i % g.dportCount)}`),
  );
}

describe('splitBySockets', () => {
  it('keeps exactly the same flows and respects the socket budget', () => {
    const groups: FlowGroup[] = [
      { src: '198.18.1.34', count: 64_512 / 2, sportOffset: 0, dportLo: 20500, dportCount: 1 },
      { src: '198.18.1.35', count: 10_001, sportOffset: 500, dportLo: 20000, dportCount: 64 },
      { src: '198.18.1.36', count: 7, sportOffset: 64_510, dportLo: 20000, dportCount: 3 },
    ];
    const parts = splitBySockets(groups, 5000);
    for (const p of parts) {
      const sockets = new Set(flows(p).map((f) => f.split('>')[0]));
      expect(sockets.size).toBeLessThanOrEqual(5000);
    }
    expect(flows(parts.flat()).sort()).toEqual(flows(groups).sort());
  });
});

describe('splitByFlows', () => {
  it('keeps exactly the same flows in parts of bounded size', () => {
    const groups: FlowGroup[] = [
      { src: '198.18.1.34', count: 100_003, sportOffset: 17, dportLo: 20000, dportCount: 64 },
      { src: '198.18.1.35', count: 999, sportOffset: 0, dportLo: 20000, dportCount: 64 },
    ];
    const parts = splitByFlows(groups, 30_000);
    expect(parts.length).toBe(4);
    for (const p of parts) expect(p.reduce((a, g) => a + g.count, 0)).toBeLessThanOrEqual(30_000);
    expect(flows(parts.flat()).sort()).toEqual(flows(groups).sort());
  });
});
