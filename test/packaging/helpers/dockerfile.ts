/**
 * Just enough of the Dockerfile and .dockerignore formats to check ours: instructions
 * per stage (continuation lines joined), exec-form (JSON) commands, and the plain
 * path / `*.ext` patterns our .dockerignore uses (anything else is refused, not guessed).
 */
import { cp } from 'node:fs/promises';
import { join, relative } from 'node:path';

export interface Instruction {
  keyword: string;
  args: string;
}

export interface Stage {
  name: string;
  instructions: Instruction[];
}

export function parseDockerfile(text: string): Stage[] {
  const logical = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const stages: Stage[] = [];
  for (const line of logical) {
    const m = /^(\S+)\s+(.*)$/.exec(line);
    if (!m) throw new Error(`unparsed Dockerfile line: ${line}`);
    const keyword = m[1]!.toUpperCase();
    const args = m[2]!;
    if (keyword === 'FROM') {
      const as = /\s+AS\s+(\S+)$/i.exec(args);
      stages.push({ name: as ? as[1]! : String(stages.length), instructions: [] });
      continue;
    }
    const stage = stages.at(-1);
    if (!stage) throw new Error(`${keyword} before FROM`);
    stage.instructions.push({ keyword, args });
  }
  return stages;
}

/** CMD ["node", "x.js"] -> ['node', 'x.js']; shell form is refused (signals would go to sh). */
export function execForm(args: string): string[] {
  const parsed: unknown = JSON.parse(args);
  if (!Array.isArray(parsed) || !parsed.every((a) => typeof a === 'string')) throw new Error(`not an exec-form command: ${args}`);
  return parsed;
}

/** HEALTHCHECK [--opt=v ...] CMD [...] -> the command. */
export function healthcheckCommand(args: string): string[] {
  const m = /^(?:--\S+\s+)*CMD\s+(.*)$/.exec(args);
  if (!m) throw new Error(`unparsed HEALTHCHECK: ${args}`);
  return execForm(m[1]!);
}

export interface DockerIgnore {
  ignored(path: string): boolean;
  patterns: string[];
}

export function parseDockerignore(text: string): DockerIgnore {
  const patterns = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  for (const p of patterns) {
    if (p.startsWith('!') || p.includes('**') || p.includes('?') || p.includes('[') || (p.includes('*') && !/^\*\.[\w.]+$/.test(p))) {
      throw new Error(`.dockerignore pattern this check does not understand: ${p}`);
    }
  }
  return {
    patterns,
    ignored(path: string): boolean {
      return patterns.some((p) => (p.startsWith('*.') ? !path.includes('/') && path.endsWith(p.slice(1)) : path === p || path.startsWith(`${p}/`)));
    },
  };
}

/** Copies context/source to target as `COPY source target` would with this .dockerignore. */
export async function copyFromContext(context: string, source: string, target: string, ignore: DockerIgnore): Promise<void> {
  await cp(join(context, source), target, {
    recursive: true,
    filter: (src) => {
      const rel = relative(context, src);
      return rel === '' || !ignore.ignored(rel);
    },
  });
}
