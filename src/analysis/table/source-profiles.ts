import type { ConntrackEntry, TableSummary } from '../../core/model.js';
import { detachString } from './detach-string.js';
import { SpaceSaving } from './space-saving.js';
import { countState, flattenStates, type StateCounts } from './state-counts.js';

type SourceProfile = NonNullable<TableSummary['sourceProfiles']>[number];

interface ProfileNode {
  source: string;
  /** The source's count in the sources tracker (orders the profiles). */
  rank: number;
  pos: number;
  states: StateCounts;
  profiled: number;
  natted: number;
  destinations: SpaceSaving;
}

const PROFILE_DESTINATIONS = 64;
const PROFILE_TOP_DESTINATIONS = 5;

/**
 * Detail (states, destinations, NAT share) for the `capacity` sources with the highest
 * counts so far. A source is admitted when its count passes the smallest profiled one,
 * so the heavy hitters are profiled from early on; a profile covers the entries seen
 * since admission (`count` in the output), exact for gateways with fewer sources than
 * capacity. Cost for a source that is not profiled: one Map lookup.
 */
export class ProfileTracker {
  private readonly map = new Map<string, ProfileNode>();
  private readonly heap: ProfileNode[] = [];
  private evictions = 0;
  constructor(private readonly capacity: number) {}

  get partial(): boolean {
    return this.evictions > 0;
  }

  add(entry: ConntrackEntry, sourceCount: number): void {
    const src = entry.orig.src;
    let node = this.map.get(src);
    if (node !== undefined) {
      node.rank = sourceCount;
      this.siftDown(node.pos);
    } else {
      const heap = this.heap;
      if (heap.length >= this.capacity) {
        const root = heap[0] as ProfileNode;
        if (sourceCount <= root.rank) return;
        this.map.delete(root.source);
        this.evictions++;
        node = this.newNode(src, sourceCount);
        heap[0] = node;
        node.pos = 0;
        this.siftDown(0);
      } else {
        node = this.newNode(src, sourceCount);
        node.pos = heap.length;
        heap.push(node);
        this.siftUp(node.pos);
      }
      this.map.set(node.source, node);
    }
    node.profiled++;
    countState(node.states, entry.proto, entry.state ?? '');
    if (entry.reply.dst !== src || entry.reply.src !== entry.orig.dst) node.natted++;
    node.destinations.add(entry.orig.dst);
  }

  profile(source: string): SourceProfile | undefined {
    const p = this.map.get(source);
    if (p === undefined) return undefined;
    return {
      source,
      count: p.profiled,
      states: flattenStates(p.states),
      topDestinations: p.destinations.top(PROFILE_TOP_DESTINATIONS).map(({ key, count }) => ({ key, count })),
      natted: p.natted,
    };
  }

  private newNode(src: string, rank: number): ProfileNode {
    return {
      source: detachString(src),
      rank,
      pos: -1,
      states: new Map(),
      profiled: 0,
      natted: 0,
      destinations: new SpaceSaving(PROFILE_DESTINATIONS),
    };
  }

  private siftUp(start: number): void {
    const heap = this.heap;
    let i = start;
    const node = heap[i] as ProfileNode;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = heap[p] as ProfileNode;
      if (parent.rank <= node.rank) break;
      heap[i] = parent;
      parent.pos = i;
      i = p;
    }
    heap[i] = node;
    node.pos = i;
  }

  private siftDown(start: number): void {
    const heap = this.heap;
    const n = heap.length;
    let i = start;
    const node = heap[i] as ProfileNode;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let m = l;
      let child = heap[l] as ProfileNode;
      if (r < n && (heap[r] as ProfileNode).rank < child.rank) {
        m = r;
        child = heap[r] as ProfileNode;
      }
      if (child.rank >= node.rank) break;
      heap[i] = child;
      child.pos = i;
      i = m;
    }
    heap[i] = node;
    node.pos = i;
  }
}
