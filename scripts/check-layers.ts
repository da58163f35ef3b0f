/**
 * The layer check (ARCHITECTURE §2). It walks every TypeScript file under src/, reads its imports
 * with the TypeScript parser and reports each import that crosses a forbidden boundary, each
 * platform-only package used outside its platform, child_process outside common/util/exec, and every
 * read of process.platform outside src/cmd. `npm test` runs it (test/unit/layers.test.ts).
 *
 * Usage: node scripts/check-layers.ts [ROOT]   (exits 1 and lists violations if any)
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';

export interface Violation {
  readonly file: string;
  readonly line: number;
  readonly rule: string;
  readonly message: string;
}

type Layer = 'cmd' | 'common' | 'controller' | 'antctl' | 'lab' | 'linux' | 'windows';

/** Which layers each layer may import (besides itself). */
const allowed: Record<Layer, readonly Layer[]> = {
  common: [],
  linux: ['common'],
  windows: ['common'],
  controller: ['common'],
  antctl: ['common'],
  lab: ['common', 'controller', 'linux'],
  cmd: ['common', 'controller', 'antctl', 'lab', 'linux', 'windows'],
};

/** Packages only one layer may import. */
const packageOwners: Record<string, readonly Layer[]> = {
  netlink: ['linux'],
  koffi: ['linux'],
  'node-powershell': ['windows'],
};

const CHILD_PROCESS_OWNER = 'src/common/util/exec.ts';

function layerOf(relPath: string): Layer | undefined {
  const p = relPath.split(sep).join('/');
  if (p.startsWith('src/platform/linux/')) return 'linux';
  if (p.startsWith('src/platform/windows/')) return 'windows';
  for (const l of ['cmd', 'common', 'controller', 'antctl', 'lab'] as const) {
    if (p.startsWith(`src/${l}/`)) return l;
  }
  return undefined;
}

function listFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...listFiles(p));
    else if (/\.(c|m)?tsx?$/.test(name) && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

function packageName(spec: string): string {
  if (spec.startsWith('@')) return spec.split('/').slice(0, 2).join('/');
  return spec.split('/')[0] ?? spec;
}

/** Checks the tree under `root` (which contains src/) and returns every violation found. */
export function checkLayers(root: string): Violation[] {
  const srcDir = join(root, 'src');
  const violations: Violation[] = [];
  for (const file of listFiles(srcDir)) {
    const rel = relative(root, file).split(sep).join('/');
    const layer = layerOf(rel);
    const text = readFileSync(file, 'utf8');
    const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
    const report = (node: ts.Node, rule: string, message: string): void => {
      const { line } = sf.getLineAndCharacterOfPosition(node.getStart(sf));
      violations.push({ file: rel, line: line + 1, rule, message });
    };
    if (layer === undefined) {
      report(sf, 'unknown-layer', `${rel} is outside the layers of ARCHITECTURE §2`);
      continue;
    }
    const checkSpecifier = (node: ts.Node, spec: string): void => {
      if (spec.startsWith('.')) {
        const target = relative(root, resolve(dirname(file), spec))
          .split(sep)
          .join('/');
        const targetLayer = layerOf(target);
        if (targetLayer === undefined) {
          report(node, 'outside-src', `${rel} imports ${spec}, which is outside src/`);
        } else if (targetLayer !== layer && !allowed[layer].includes(targetLayer)) {
          report(node, 'layer', `${layer} may not import ${targetLayer} (${rel} imports ${spec})`);
        }
        return;
      }
      const pkg = packageName(spec.replace(/^node:/, ''));
      const owners = packageOwners[pkg];
      if (owners !== undefined && !owners.includes(layer) && layer !== 'cmd') {
        report(node, 'package', `only ${owners.join(', ')} may import ${pkg} (${rel})`);
      }
      if (pkg === 'child_process' && rel !== CHILD_PROCESS_OWNER) {
        report(node, 'child-process', `only ${CHILD_PROCESS_OWNER} may spawn processes (${rel} imports ${spec})`);
      }
    };
    const osPlatformNames = new Set<string>();
    const visit = (node: ts.Node): void => {
      if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier !== undefined) {
        if (ts.isStringLiteral(node.moduleSpecifier)) {
          const spec = node.moduleSpecifier.text;
          checkSpecifier(node, spec);
          if (ts.isImportDeclaration(node) && (spec === 'node:os' || spec === 'os')) {
            const b = node.importClause?.namedBindings;
            if (b !== undefined && ts.isNamedImports(b)) {
              for (const e of b.elements) {
                if ((e.propertyName ?? e.name).text === 'platform') osPlatformNames.add(e.name.text);
              }
            }
          }
        }
      } else if (ts.isCallExpression(node)) {
        const [arg] = node.arguments;
        const isImport = node.expression.kind === ts.SyntaxKind.ImportKeyword;
        const isRequire = ts.isIdentifier(node.expression) && node.expression.text === 'require';
        if ((isImport || isRequire) && arg !== undefined && ts.isStringLiteralLike(arg)) checkSpecifier(node, arg.text);
        if (layer !== 'cmd') {
          const callee = node.expression;
          const isOsPlatform =
            (ts.isIdentifier(callee) && osPlatformNames.has(callee.text)) ||
            (ts.isPropertyAccessExpression(callee) &&
              callee.name.text === 'platform' &&
              ts.isIdentifier(callee.expression) &&
              /^os$/i.test(callee.expression.text));
          if (isOsPlatform) report(node, 'platform', `only src/cmd may ask for the OS (${rel} calls os.platform())`);
        }
      } else if (
        layer !== 'cmd' &&
        ts.isPropertyAccessExpression(node) &&
        node.name.text === 'platform' &&
        ts.isIdentifier(node.expression) &&
        node.expression.text === 'process'
      ) {
        report(node, 'platform', `only src/cmd may read process.platform (${rel})`);
      }
      ts.forEachChild(node, visit);
    };
    visit(sf);
  }
  return violations;
}

if (import.meta.main) {
  const root = resolve(process.argv[2] ?? join(import.meta.dirname, '..'));
  const violations = checkLayers(root);
  for (const v of violations) process.stderr.write(`${v.file}:${v.line}: [${v.rule}] ${v.message}\n`);
  process.stdout.write(
    violations.length === 0 ? 'layer check: ok\n' : `layer check: ${violations.length} violation(s)\n`,
  );
  process.exitCode = violations.length === 0 ? 0 : 1;
}
