/** Entry counts per protocol and state ("tcp ESTABLISHED", "udp"), keyed without composite strings. */
import { detachString } from './detach-string.js';

export type StateCounts = Map<string, Map<string, { n: number }>>;

export function countState(states: StateCounts, proto: string, state: string): void {
  let byState = states.get(proto);
  if (byState === undefined) {
    byState = new Map();
    states.set(detachString(proto), byState);
  }
  const c = byState.get(state);
  if (c === undefined) byState.set(detachString(state), { n: 1 });
  else c.n++;
}

export function flattenStates(states: StateCounts): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [proto, byState] of states) {
    for (const [state, c] of byState) out[state === '' ? proto : `${proto} ${state}`] = c.n;
  }
  return out;
}
