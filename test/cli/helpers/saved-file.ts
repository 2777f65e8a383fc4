/**
 * Saved files for the analyze tests, assembled the way the collect script writes them:
 * the magic and time lines, the recorded facts run, the table dump header lines and
 * entries (recorded or generated), the end marker.
 */
import { createWriteStream, readFileSync } from 'node:fs';
import { once } from 'node:events';
import { generateLines } from '../../support/synthetic-conntrack.js';

export const recordedFacts = (): string => readFileSync(new URL('../../fixtures/facts-netns.txt', import.meta.url), 'utf8');

export function savedText(facts: string, dump: string, rc = 0, stderr = 'conntrack v1.4.7 (conntrack-tools): 0 flow entries have been shown.', collectedAt = '2026-11-24T15:00:00Z'): string {
  return `@@conntrack-ops-saved 1@@\n@@collected-at ${collectedAt}@@\n${facts.endsWith('\n') ? facts : `${facts}\n`}@@table-dump@@\n${dump}\n@@end table-dump rc=${rc}@@\n@@section table-dump-stderr@@\n${stderr}\n@@end table-dump-stderr rc=0@@\n`;
}

/** A saved file with `lines` generated entries, written in 64 KB batches (never held whole). */
export async function writeGeneratedSaved(path: string, lines: number): Promise<void> {
  const out = createWriteStream(path);
  const write = async (text: string): Promise<void> => {
    if (!out.write(text)) await once(out, 'drain');
  };
  await write(`@@conntrack-ops-saved 1@@\n@@collected-at 2026-11-24T15:00:00Z@@\n${recordedFacts()}@@table-dump@@\n@@established-timeout 432000\n@@short-timer 300 300\n`);
  let batch: string[] = [];
  let size = 0;
  for (const line of generateLines(lines, { sources: 250, destinations: 250, seed: 7, format: 'conntrack' })) {
    batch.push(line);
    size += line.length + 1;
    if (size >= 64 * 1024) {
      await write(`${batch.join('\n')}\n`);
      batch = [];
      size = 0;
    }
  }
  await write(`${batch.join('\n')}\n\n@@end table-dump rc=0@@\n@@section table-dump-stderr@@\nconntrack v1.4.7 (conntrack-tools): ${lines} flow entries have been shown.\n@@end table-dump-stderr rc=0@@\n`);
  out.end();
  await once(out, 'close');
}
