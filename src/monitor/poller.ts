/**
 * One poll of one watched gateway: the light reading (src/diagnostics/poll-script.ts) on the
 * warm session, turned into a sample and folded into the gateway's episode state.
 */
import type { PollReading } from '../diagnostics/poll-script.js';
import { newTableFullLines } from '../diagnostics/poll-script.js';
import type { PollOutcome, PollSample, WatchState } from './episodes.js';

/**
 * The sample of a reading. `at` is the bot's clock (orders samples across workers); "new"
 * table-full lines are judged on the gateway's clock against the previous poll's. Counters
 * that could not be read repeat the previous ones (no increase) rather than read as zero,
 * which would look like a reset.
 */
export function sampleOf(reading: PollReading, previous: WatchState, at: Date): PollSample {
  const last = previous.lastSample;
  const stats = reading.stats ?? last?.stats ?? { drop: 0, earlyDrop: 0, insertFailed: 0 };
  return {
    at: at.toISOString(),
    gatewayAtMs: reading.gatewayAtMs,
    count: reading.count,
    max: reading.max,
    stats,
    tableFullLines: newTableFullLines(reading, last?.gatewayAtMs ?? null),
  };
}

export function failureOf(err: unknown, at: Date): PollOutcome {
  const message = err instanceof Error ? err.message : String(err);
  return { ok: false, at: at.toISOString(), error: message.split('\n')[0]!.slice(0, 300) };
}
