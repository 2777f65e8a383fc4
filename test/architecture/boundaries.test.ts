/**
 * The product (src/, jobs/) stands on its own: nothing in it may import from the lab, the
 * tests or the benchmarks. They may import from src/, never the other way round.
 * Reads every .ts file under src/ and jobs/ and names each file and import that crosses.
 */
import { readdir, readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const PRODUCT_DIRS = ['src', 'jobs'];
const FORBIDDEN_DIRS = ['lab', 'test', 'bench'];

/** Every module a source file names: static and type imports, re-exports, import(), require(), new URL(..., import.meta.url). */
const SPECIFIER_PATTERNS = [
  /\b(?:import|export)\s+(?:type\s+)?(?:[^'"`;]*?\s+from\s+)?['"]([^'"]+)['"]/g,
  /\bimport\s*\(\s*['"`]([^'"`]+)['"`]\s*\)/g,
  /\brequire\s*\(\s*['"`]([^'"`]+)['"`]\s*\)/g,
  /\bnew\s+URL\s*\(\s*['"`]([^'"`]+)['"`]\s*,\s*import\.meta\.url/g,
];

function moduleSpecifiers(source: string): string[] {
  return SPECIFIER_PATTERNS.flatMap((re) => [...source.matchAll(re)].map((m) => m[1] ?? ''));
}

/** `<file>: imports '<specifier>' (lab/...)` for each specifier of `file` that lands in a forbidden folder. */
function boundaryViolations(file: string, source: string, forbidden: readonly string[] = FORBIDDEN_DIRS): string[] {
  const out: string[] = [];
  for (const spec of moduleSpecifiers(source)) {
    if (!spec.startsWith('.') && !isAbsolute(spec)) continue; // a package
    const target = relative(REPO_ROOT, resolve(dirname(join(REPO_ROOT, file)), spec));
    const path = target.split(sep).join('/');
    if (forbidden.some((dir) => path === dir || path.startsWith(`${dir}/`))) out.push(`${file}: imports '${spec}' (${path})`);
  }
  return out;
}

async function tsFilesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(join(REPO_ROOT, dir), { withFileTypes: true, recursive: true });
  return entries
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => relative(REPO_ROOT, join(e.parentPath, e.name)).split(sep).join('/'))
    .sort();
}

describe('import boundaries', () => {
  it('finds what crosses: a product file reaching lab/, test/ or bench/ is named with its import', () => {
    const source = [
      "import { labUp } from '../../lab/index.js';",
      "import type {\n  Fixture,\n} from '../../test/support/fixture.js';",
      "export { run } from '../bench/run.js';",
      "const m = await import('../../lab/vm/index.js');",
      "const agent = new URL('../../lab/agents/tcpgen.mjs', import.meta.url);",
      "import { z } from 'zod';",
      "import { CliError } from './errors.js';",
      "import { labelOf } from '../labels/index.js';",
    ].join('\n');
    expect(boundaryViolations('src/cli/example.ts', source)).toEqual([
      "src/cli/example.ts: imports '../../lab/index.js' (lab/index.js)",
      "src/cli/example.ts: imports '../../test/support/fixture.js' (test/support/fixture.js)",
      "src/cli/example.ts: imports '../../lab/vm/index.js' (lab/vm/index.js)",
      "src/cli/example.ts: imports '../../lab/agents/tcpgen.mjs' (lab/agents/tcpgen.mjs)",
    ]);
    expect(boundaryViolations('jobs/example.ts', "export { run } from '../bench/run.js';")).toEqual([
      "jobs/example.ts: imports '../bench/run.js' (bench/run.js)",
    ]);
  });

  it('nothing in src/ or jobs/ imports from lab/, test/ or bench/', async () => {
    const files = (await Promise.all(PRODUCT_DIRS.map(tsFilesUnder))).flat();
    expect(files).toContain('src/cli/main.ts');
    expect(files).toContain('jobs/worker.ts');
    const violations: string[] = [];
    for (const file of files) violations.push(...boundaryViolations(file, await readFile(join(REPO_ROOT, file), 'utf8')));
    expect(violations).toEqual([]);
  });
});

/** Inside the product: a layer does not reach into the layers that use it. */
const LAYERS: ReadonlyArray<{ dir: string; forbidden: readonly string[]; why: string }> = [
  { dir: 'src/core', forbidden: ['src/analysis', 'src/apply', 'src/check', 'src/gateway', 'src/plan', 'src/queue', 'src/slack', 'src/worker'], why: 'the model stands alone' },
  { dir: 'src/apply', forbidden: ['src/queue', 'src/worker', 'src/slack'], why: 'the engine reports through ports (follow-up scheduler, progress)' },
  { dir: 'src/gateway', forbidden: ['src/check', 'src/apply', 'src/worker'], why: 'the session contract lives with the sessions' },
];

describe('layers', () => {
  for (const layer of LAYERS) {
    it(`${layer.dir} imports nothing from ${layer.forbidden.join(', ')} (${layer.why})`, async () => {
      const files = await tsFilesUnder(layer.dir);
      expect(files.length).toBeGreaterThan(0);
      const violations: string[] = [];
      for (const file of files) violations.push(...boundaryViolations(file, await readFile(join(REPO_ROOT, file), 'utf8'), layer.forbidden));
      expect(violations).toEqual([]);
    });
  }

  it('a layer violation is named with its import', () => {
    expect(boundaryViolations('src/apply/engine.ts', "import { enqueueCheck } from '../queue/producer.js';", ['src/queue'])).toEqual([
      "src/apply/engine.ts: imports '../queue/producer.js' (src/queue/producer.js)",
    ]);
  });
});
