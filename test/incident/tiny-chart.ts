/**
 * A small but real chart renderer for tests, used until src/incident/chart.ts is merged: a
 * valid PNG (signature, IHDR, IDAT deflated with node:zlib, IEND, CRCs) with one column per
 * sample (utilisation, red where drops rose) and the warn / crit lines; the alt text states
 * the numbers. Not the product's chart: it proves the upload and the port.
 */
import { deflateSync } from 'node:zlib';
import type { ChartInput, RenderedChart } from '../../src/incident/chart-port.js';

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'ascii');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

export function encodePng(width: number, height: number, rgb: (x: number, y: number) => [number, number, number]): Uint8Array {
  const raw = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) {
    raw[y * (width * 3 + 1)] = 0; // filter: none
    for (let x = 0; x < width; x++) raw.set(rgb(x, y), y * (width * 3 + 1) + 1 + x * 3);
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', new Uint8Array())]);
}

export async function tinyChart(input: ChartInput): Promise<RenderedChart> {
  const width = 320;
  const height = 120;
  const pcts = input.samples.map((s) => (s.count / s.max) * 100);
  const dropped = input.samples.map((s, i) => i > 0 && s.drop + s.earlyDrop > input.samples[i - 1]!.drop + input.samples[i - 1]!.earlyDrop);
  const yOf = (pct: number) => Math.round(height - 1 - (pct / 100) * (height - 1));
  const png = encodePng(width, height, (x, y) => {
    if (y === yOf(input.critPercent)) return [200, 0, 0];
    if (y === yOf(input.warnPercent)) return [230, 160, 0];
    const i = pcts.length === 0 ? -1 : Math.floor((x / width) * pcts.length);
    if (i >= 0 && y >= yOf(pcts[i]!)) return dropped[i] ? [220, 40, 40] : [40, 110, 200];
    return [255, 255, 255];
  });
  const last = input.samples[input.samples.length - 1];
  const first = input.samples[0];
  const drops = last && first ? last.drop - first.drop + last.earlyDrop - first.earlyDrop : 0;
  const altText =
    `Conntrack utilisation of ${input.gateway} over the episode: peak ${input.episode.peakPercent} % of ${input.episode.max.toLocaleString('en-US')} entries, ` +
    `${drops.toLocaleString('en-US')} packets dropped, warn line ${input.warnPercent} %, crit line ${input.critPercent} %, ${input.samples.length} polls, ${input.marks.length} plan mark(s).`;
  return { png, altText };
}
