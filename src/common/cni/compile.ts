/**
 * The plugin as plain JavaScript: the install step strips the types of the plugin's entry and of
 * every module it imports (relative `.ts` imports only; the plugin uses nothing else but node:
 * built-ins), writes them as `.mjs` files whose imports name the `.mjs` copies, and runs that
 * entry. Node then never loads its TypeScript stripper when a runtime runs the plugin, which is
 * most of the plugin's start-up beyond bare Node (measured by `npm run bench -- cni`).
 *
 * Types are replaced by spaces (Node's `strip` mode), so line and column numbers in stack traces
 * stay those of the sources.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import * as nodeModule from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { ValidationError } from '../util/errors.ts';

/** Relative `.ts` specifiers of static imports, re-exports, side-effect and dynamic imports. */
const RELATIVE_TS_IMPORT = /(\bfrom\s*|\bimport\s*\(?\s*)(['"])(\.{1,2}\/[^'"\n]+)\.ts\2/g;

type Strip = (code: string, options: { mode: 'strip' }) => string;

/** Node's type stripper (node:module, Node ≥ 22.13), or undefined where it is missing. */
export function typeStripper(): Strip | undefined {
  const fn = (nodeModule as { stripTypeScriptTypes?: Strip }).stripTypeScriptTypes;
  return typeof fn === 'function' ? fn : undefined;
}

/** The longest directory holding all `files`. */
function commonDir(files: readonly string[]): string {
  let parts = dirname(files[0] ?? '').split(sep);
  for (const f of files.slice(1)) {
    const p = dirname(f).split(sep);
    let i = 0;
    while (i < parts.length && i < p.length && parts[i] === p[i]) i++;
    parts = parts.slice(0, i);
  }
  return parts.join(sep) || sep;
}

/**
 * Compiles `entry` and its relative imports into `outDir` (same layout under it, `.mjs`); returns
 * the compiled entry's path. Files are written to a temporary name and renamed, so a plugin
 * running meanwhile never reads half a file. Throws a ValidationError naming `pluginEntry` when a
 * module cannot be read, and one naming the stripper when Node has none (`strip` null).
 */
export function compilePlugin(entry: string, outDir: string, strip: Strip | null = typeStripper() ?? null): string {
  if (strip === null) {
    throw new ValidationError('stripTypeScriptTypes', 'this Node cannot strip TypeScript types (needs Node ≥ 22.13)');
  }
  const sources = new Map<string, string>();
  const pending = [resolve(entry)];
  for (let file = pending.pop(); file !== undefined; file = pending.pop()) {
    if (sources.has(file)) continue;
    let code: string;
    try {
      code = strip(readFileSync(file, 'utf8'), { mode: 'strip' });
    } catch (err) {
      throw new ValidationError('pluginEntry', `cannot compile ${file}: ${String(err)}`, { cause: err });
    }
    const from = dirname(file);
    sources.set(
      file,
      code.replace(RELATIVE_TS_IMPORT, (_m, lead: string, q: string, spec: string) => {
        pending.push(resolve(from, `${spec}.ts`));
        return `${lead}${q}${spec}.mjs${q}`;
      }),
    );
  }
  const root = commonDir([...sources.keys()]);
  for (const [file, code] of sources) {
    const out = join(outDir, relative(root, file)).replace(/\.ts$/, '.mjs');
    mkdirSync(dirname(out), { recursive: true });
    const tmp = `${out}.tmp-${process.pid}`;
    writeFileSync(tmp, code);
    renameSync(tmp, out);
  }
  return join(outDir, relative(root, resolve(entry))).replace(/\.ts$/, '.mjs');
}
