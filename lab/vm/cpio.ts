/**
 * A minimal writer for the "newc" cpio format the kernel unpacks as an initramfs.
 * Entries are written in the order given; parents must come before their children
 * (the kernel does not create missing directories). Owner is always root.
 */

export type CpioEntry =
  | { type: 'dir'; path: string; mode: number }
  | { type: 'file'; path: string; mode: number; data: Buffer }
  | { type: 'symlink'; path: string; target: string };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}

function pad4(len: number): Buffer {
  const rem = len % 4;
  return Buffer.alloc(rem === 0 ? 0 : 4 - rem);
}

function header(ino: number, mode: number, nlink: number, size: number, name: string): Buffer {
  const nameBuf = Buffer.from(`${name}\0`, 'utf8');
  const fields = [
    ino, mode, 0 /* uid */, 0 /* gid */, nlink, 0 /* mtime: reproducible */, size,
    0, 0, 0, 0, nameBuf.length, 0,
  ];
  const head = Buffer.from(`070701${fields.map(hex8).join('')}`, 'ascii');
  const both = Buffer.concat([head, nameBuf]);
  return Buffer.concat([both, pad4(both.length)]);
}

/** Serialises entries (with the TRAILER!!! record). */
export function writeCpio(entries: Iterable<CpioEntry>): Buffer {
  const parts: Buffer[] = [];
  let ino = 1;
  for (const e of entries) {
    const name = e.path.replace(/^\/+/, '');
    if (!name) continue;
    if (e.type === 'dir') {
      parts.push(header(ino++, S_IFDIR | (e.mode & 0o7777), 2, 0, name));
    } else if (e.type === 'file') {
      parts.push(header(ino++, S_IFREG | (e.mode & 0o7777), 1, e.data.length, name), e.data, pad4(e.data.length));
    } else {
      const target = Buffer.from(e.target, 'utf8');
      parts.push(header(ino++, S_IFLNK | 0o777, 1, target.length, name), target, pad4(target.length));
    }
  }
  parts.push(header(0, 0, 1, 0, 'TRAILER!!!'));
  return Buffer.concat(parts);
}

/**
 * Collects entries by path, adds missing parent directories, and orders them so that
 * every parent precedes its children.
 */
export class CpioTree {
  private readonly entries = new Map<string, CpioEntry>();

  has(path: string): boolean {
    return this.entries.has(norm(path));
  }

  get(path: string): CpioEntry | undefined {
    return this.entries.get(norm(path));
  }

  dir(path: string, mode = 0o755): void {
    const p = norm(path);
    if (!p) return;
    const existing = this.entries.get(p);
    if (existing && existing.type !== 'dir') throw new Error(`cpio: ${p} exists and is not a directory`);
    this.parents(p);
    this.entries.set(p, { type: 'dir', path: p, mode });
  }

  file(path: string, data: Buffer | string, mode = 0o644): void {
    const p = norm(path);
    this.parents(p);
    this.entries.set(p, { type: 'file', path: p, mode, data: typeof data === 'string' ? Buffer.from(data) : data });
  }

  symlink(path: string, target: string): void {
    const p = norm(path);
    this.parents(p);
    this.entries.set(p, { type: 'symlink', path: p, target });
  }

  private parents(p: string): void {
    const parts = p.split('/');
    for (let i = 1; i < parts.length; i++) {
      const d = parts.slice(0, i).join('/');
      const e = this.entries.get(d);
      if (!e) this.entries.set(d, { type: 'dir', path: d, mode: 0o755 });
      else if (e.type !== 'dir') throw new Error(`cpio: ${d} is a ${e.type}, cannot hold ${p}`);
    }
  }

  /** Sorted so that "a" < "a/b"; "/" sorts before any other character we use. */
  sorted(): CpioEntry[] {
    return [...this.entries.values()].sort((a, b) => {
      const x = a.path.split('/');
      const y = b.path.split('/');
      for (let i = 0; i < Math.min(x.length, y.length); i++) {
        if (x[i] !== y[i]) return (x[i] as string) < (y[i] as string) ? -1 : 1;
      }
      return x.length - y.length;
    });
  }

  toBuffer(): Buffer {
    return writeCpio(this.sorted());
  }

  get size(): number {
    return this.entries.size;
  }
}

function norm(path: string): string {
  return path.replace(/^\/+/, '').replace(/\/+$/, '');
}
