/**
 * The plugin as one plain JavaScript file: the install step strips the types of the plugin's entry
 * and of every module it imports, and joins them, dependencies first, into a single CommonJS
 * script that the launcher runs. Every ADD and DEL starts the plugin, so its start-up counts:
 * against the TypeScript entry Node would load its type stripper, resolve, read, compile and link
 * each module through the ES module loader, and build an ES module facade for each built-in it
 * imports (the one of `node:fs` alone loads Node's whole streams and promises stack), several ms
 * each (measured by `npm run bench -- cni`). A built-in is taken with `process.getBuiltinModule`.
 *
 * This is not a general bundler. It accepts exactly the module forms the plugin uses and rejects
 * every other with a ValidationError naming the file: named imports (`import { a, b as c } from`)
 * of relative `.ts` modules and of `node:` built-ins, exported top-level declarations (`export
 * function|class|const|let`), and `import.meta.main`. All modules share one scope, so a top-level
 * name declared by two modules is rejected too; a cycle between modules is rejected.
 *
 * Where Bun's compiler is at hand, install-cni builds the standalone executable instead
 * (buildStandalonePlugin, below), and this bundle is not used.
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import * as nodeModule from 'node:module';
import { dirname, relative, resolve, sep } from 'node:path';
import { ValidationError } from '../util/errors.ts';
import type { CommandRunner } from '../util/exec.ts';

type Strip = (code: string, options: { mode: 'strip' }) => string;

/** Node's type stripper (node:module, Node ≥ 22.13), or undefined where it is missing. */
export function typeStripper(): Strip | undefined {
  const fn = (nodeModule as { stripTypeScriptTypes?: Strip }).stripTypeScriptTypes;
  return typeof fn === 'function' ? fn : undefined;
}

/** A static import statement: `import { ... } from '...'` (specifier list may span lines). */
const NAMED_IMPORT = /^import\s*\{([^}]*)\}\s*from\s*(['"])([^'"\n]+)\2\s*;?/gm;
/** Any other use of `import` as a statement or expression (rejected). */
const OTHER_IMPORT = /^import\b|\bimport\s*\(|\bimport\.meta\b/m;
/** Exported declarations, and every other export form (rejected). */
const EXPORTED_DECLARATION = /^export\s+(?=(?:async\s+)?function\b|class\b|const\b|let\b)/gm;
const OTHER_EXPORT = /^export\b/m;
/** Top-level declarations (the sources are formatted: top level is column 0). */
const TOP_LEVEL_NAME = /^(?:async\s+)?(?:function\s*\*?|class|const|let|var)\s+([A-Za-z_$][\w$]*)/gm;
const TOP_LEVEL_PATTERN = /^(?:const|let|var)\s*[[{]/m;

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

interface Binding {
  readonly imported: string;
  readonly local: string;
}

interface Module {
  readonly file: string;
  /** The code with its imports removed and its exports made plain declarations. */
  readonly body: string;
  readonly deps: readonly string[];
  readonly builtins: readonly { readonly id: string; readonly bindings: readonly Binding[] }[];
  /** `const local = imported;` for renamed relative imports. */
  readonly aliases: readonly Binding[];
  readonly declared: readonly string[];
}

function unsupported(file: string, what: string): ValidationError {
  return new ValidationError('pluginEntry', `cannot bundle ${file}: ${what}`);
}

function parseBindings(file: string, list: string): Binding[] {
  const out: Binding[] = [];
  for (const part of list.split(',')) {
    const spec = part.trim();
    if (spec === '') continue; // a stripped `type X` leaves an empty slot
    const m = /^([A-Za-z_$][\w$]*)(?:\s+as\s+([A-Za-z_$][\w$]*))?$/.exec(spec);
    if (m === null) throw unsupported(file, `import specifier "${spec}"`);
    out.push({ imported: m[1] ?? '', local: m[2] ?? m[1] ?? '' });
  }
  return out;
}

function parseModule(file: string, strip: Strip): Module {
  let code: string;
  try {
    code = strip(readFileSync(file, 'utf8'), { mode: 'strip' });
  } catch (err) {
    throw new ValidationError('pluginEntry', `cannot compile ${file}: ${String(err)}`, { cause: err });
  }
  const deps: string[] = [];
  const builtins: { id: string; bindings: Binding[] }[] = [];
  const aliases: Binding[] = [];
  let body = code.replace(NAMED_IMPORT, (_m, list: string, _q: string, spec: string) => {
    const bindings = parseBindings(file, list);
    if (spec.startsWith('node:')) {
      if (bindings.length > 0) builtins.push({ id: spec, bindings });
    } else if (/^\.{1,2}\/.*\.ts$/.test(spec)) {
      deps.push(resolve(dirname(file), spec));
      for (const b of bindings) if (b.local !== b.imported) aliases.push(b);
    } else {
      throw unsupported(file, `import of "${spec}" (only relative .ts modules and node: built-ins)`);
    }
    return '';
  });
  body = body.replaceAll('import.meta.main', '(require.main === module)');
  if (OTHER_IMPORT.test(body)) throw unsupported(file, 'an import form other than `import { ... } from`');
  body = body.replace(EXPORTED_DECLARATION, '');
  if (OTHER_EXPORT.test(body)) throw unsupported(file, 'an export form other than an exported declaration');
  if (TOP_LEVEL_PATTERN.test(body)) throw unsupported(file, 'a top-level destructuring declaration');
  const declared = [...body.matchAll(TOP_LEVEL_NAME)].map((m) => m[1] ?? '');
  return { file, body, deps, builtins, aliases, declared };
}

/**
 * Bundles `entry` and the modules it imports into `outFile` (one CommonJS script); returns
 * `outFile`. The file is written to a temporary name and renamed, so a plugin running meanwhile
 * never reads half a file. Throws a ValidationError naming `pluginEntry` when a module cannot be
 * read or uses a form the bundle does not support, and one naming the stripper when Node has none
 * (`strip` null).
 */
export function compilePlugin(entry: string, outFile: string, strip: Strip | null = typeStripper() ?? null): string {
  if (strip === null) {
    throw new ValidationError('stripTypeScriptTypes', 'this Node cannot strip TypeScript types (needs Node ≥ 22.13)');
  }
  const modules = new Map<string, Module>();
  const order: Module[] = [];
  const visiting = new Set<string>();
  const visit = (file: string): void => {
    if (modules.has(file)) return;
    if (visiting.has(file)) throw unsupported(file, 'an import cycle');
    visiting.add(file);
    const m = parseModule(file, strip);
    for (const d of m.deps) visit(d);
    visiting.delete(file);
    modules.set(file, m);
    order.push(m);
  };
  visit(resolve(entry));
  const base = commonDir(order.map((m) => m.file));
  const name = (file: string): string => relative(base, file).split(sep).join('/');

  // One scope: every top-level name, built-in binding and alias must be declared once.
  const owner = new Map<string, string>();
  const claim = (local: string, by: string, file: string): boolean => {
    const prev = owner.get(local);
    if (prev === undefined) {
      owner.set(local, by);
      return true;
    }
    if (prev === by) return false; // the same built-in binding imported again
    throw unsupported(file, `top-level name "${local}" is also declared by ${prev.replace(/^module /, '')}`);
  };
  const header: string[] = [];
  for (const m of order) {
    for (const d of m.declared) claim(d, `module ${name(m.file)}`, m.file);
    for (const a of m.aliases) claim(a.local, `module ${name(m.file)}`, m.file);
  }
  for (const m of order) {
    for (const { id, bindings } of m.builtins) {
      const fresh = bindings.filter((b) => claim(b.local, `${id} ${b.imported}`, m.file));
      if (fresh.length === 0) continue;
      const list = fresh.map((b) => (b.local === b.imported ? b.local : `${b.imported}: ${b.local}`)).join(', ');
      header.push(`const { ${list} } = process.getBuiltinModule(${JSON.stringify(id)});`);
    }
  }
  const parts = [
    `'use strict';`,
    `// antrea CNI plugin, bundled by antrea-ts install-cni from ${order.length} modules of ${base}.`,
    ...header,
  ];
  for (const m of order) {
    parts.push(`// ==== ${name(m.file)}`);
    for (const a of m.aliases) parts.push(`const ${a.local} = ${a.imported};`);
    parts.push(m.body);
  }
  mkdirSync(dirname(outFile), { recursive: true });
  const tmp = `${outFile}.tmp-${process.pid}`;
  writeFileSync(tmp, parts.join('\n'));
  renameSync(tmp, outFile);
  return outFile;
}

/**
 * Builds the standalone plugin: `entry` (src/cmd/antrea-cni-standalone.ts) and its imports compiled
 * by Bun into one executable (`bun build --compile`, minified, with bytecode, reading no .env or
 * bunfig.toml at run time), with `cniSocket`
 * baked in as its default endpoint (BUILT_IN_CNI_SOCKET), written under a temporary name, checked
 * by running it (VERSION must list the supported versions) and renamed to `outFile`. Resolves with
 * `outFile`. Rejects when the build or the check fails (the runner's ExecError, or an Error saying
 * what the check got); `outFile` is then left as it was.
 */
export async function buildStandalonePlugin(
  runner: CommandRunner,
  bunPath: string,
  entry: string,
  outFile: string,
  cniSocket?: string,
): Promise<string> {
  mkdirSync(dirname(outFile), { recursive: true });
  const tmp = `${outFile}.tmp-${process.pid}`;
  const define = cniSocket === undefined ? [] : ['--define', `BUILT_IN_CNI_SOCKET=${JSON.stringify(cniSocket)}`];
  try {
    // A CNI plugin must not read a .env or bunfig.toml from whatever directory the runtime runs it
    // in (Bun's executables do by default).
    const noAutoload = ['--no-compile-autoload-dotenv', '--no-compile-autoload-bunfig'];
    await runner.run(
      bunPath,
      ['build', '--compile', '--minify', '--bytecode', ...noAutoload, ...define, entry, '--outfile', tmp],
      { timeoutMs: 120_000 },
    );
    const v = await runner.run(tmp, [], { env: { CNI_COMMAND: 'VERSION' }, replaceEnv: true, timeoutMs: 30_000 });
    let versions: unknown;
    try {
      versions = (JSON.parse(v.stdout) as { supportedVersions?: unknown }).supportedVersions;
    } catch {
      versions = undefined;
    }
    if (!Array.isArray(versions)) {
      throw new Error(`the built plugin answered VERSION with ${JSON.stringify(v.stdout.slice(0, 200))}`);
    }
    renameSync(tmp, outFile);
    return outFile;
  } finally {
    rmSync(tmp, { force: true });
  }
}
