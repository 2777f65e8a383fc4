/** Entry counts per protocol and state ("tcp ESTABLISHED", "udp"), keyed without composite strings. */
import { detachString } from './detach-string.js';

export type StateCounts = Map<string, Map<string, { n: number }>>;

/** Count one entry of `proto` in `state`; returns its counter (a caller may count repeats on it directly). */
export function countState(states: StateCounts, proto: string, state: string): { n: number } {
  let byState = states.get(proto);
  if (byState === undefined) {
    byState = new Map();
    states.set(detachString(proto), byState);
  }
  let c = byState.get(state);
  if (c === undefined) {
    c = { n: 1 };
    byState.set(detachString(state), c);
  } else c.n++;
  return c;
}

export function flattenStates(states: StateCounts): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [proto, byState] of states) {
    for (const [state, c] of byState) out[state === '' ? proto : `${proto} ${state}`] = c.n;
  }
  return out;
}
