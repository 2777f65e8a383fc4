#!/usr/bin/env node
// @ts-check
/**
 * The `conntrack-ops` command (package.json "bin"). It always runs the current code:
 *
 *   - the build (dist/src/cli/main.js, `npm run build`) when it exists and no source file
 *     (src/, jobs/, tsconfig*.json) is newer than it: plain node, the fast start;
 *   - else the TypeScript itself (src/cli/main.ts) through tsx, in this process.
 *
 * Where there is no source (the Docker image ships dist/ only), the build is what there is.
 * CONNTRACK_OPS_RUN=dist|source forces one of the two; CONNTRACK_OPS_RUN_VERBOSE=1 says on
 * stderr which one runs.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const built = join(root, 'dist', 'src', 'cli', 'main.js');
const source = join(root, 'src', 'cli', 'main.ts');

/**
 * Files under dir whose name passes keep (recursive; none if dir is absent).
 * @param {string} dir
 * @param {(name: string) => boolean} keep
 * @returns {string[]}
 */
function filesUnder(dir, keep) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return filesUnder(path, keep);
    return e.isFile() && keep(e.name) ? [path] : [];
  });
}

/** The oldest emitted file is when the last build started writing. */
function buildTime() {
  const outputs = filesUnder(join(root, 'dist'), (n) => n.endsWith('.js'));
  return outputs.length ? Math.min(...outputs.map((f) => statSync(f).mtimeMs)) : null;
}

function newestSourceTime() {
  const ts = (/** @type {string} */ n) => n.endsWith('.ts') && !n.endsWith('.d.ts');
  const inputs = [
    ...filesUnder(join(root, 'src'), ts),
    ...filesUnder(join(root, 'jobs'), ts),
    ...['tsconfig.json', 'tsconfig.build.json'].map((f) => join(root, f)).filter((f) => existsSync(f)),
  ];
  return inputs.length ? Math.max(...inputs.map((f) => statSync(f).mtimeMs)) : null;
}

/** 'dist' or 'source': what runs the current code. */
function choose() {
  const forced = process.env['CONNTRACK_OPS_RUN'];
  if (forced === 'dist' || forced === 'source') return forced;
  if (forced) throw new Error(`CONNTRACK_OPS_RUN must be dist or source, not ${forced}`);
  if (!existsSync(built)) return 'source';
  if (!existsSync(source)) return 'dist';
  const builtAt = buildTime();
  const changedAt = newestSourceTime();
  return builtAt !== null && changedAt !== null && changedAt <= builtAt ? 'dist' : 'source';
}

const mode = choose();
if (process.env['CONNTRACK_OPS_RUN_VERBOSE'] === '1') process.stderr.write(`conntrack-ops: running ${mode === 'dist' ? 'dist/src/cli/main.js' : 'src/cli/main.ts through tsx'}\n`);
if (mode === 'dist') {
  if (!existsSync(built)) throw new Error(`${built} does not exist: run npm run build`);
  await import(pathToFileURL(built).href);
} else {
  let register;
  try {
    ({ register } = await import('tsx/esm/api'));
  } catch {
    process.stderr.write(
      'conntrack-ops: the build (dist/) is missing or older than the source, and tsx (a dev dependency) is not installed.\n' +
        'Run `npm run build`, or `npm ci` with dev dependencies.\n',
    );
    process.exit(1);
  }
  register();
  await import(pathToFileURL(source).href);
}
