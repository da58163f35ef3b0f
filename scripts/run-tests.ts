/**
 * The test command behind `npm test`. It runs the static checks (type-check, lint, format, layers)
 * and the tap suites (unit, integration, e2e), then prints one closing line:
 * `N passed, N failed, N skipped`. A "test" is an innermost `t.test` block (or a whole file whose
 * assertions sit at its top level); a file that skips itself as a whole counts as one skipped test.
 *
 * Usage: node scripts/run-tests.ts [--no-static] [--only-static] [FILE|DIR ...]
 *   Files or directories restrict the tap run (and imply --no-static).
 */
import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Parser, type Result } from 'tap-parser';

interface Counts {
  passed: number;
  failed: number;
  skipped: number;
  failures: string[];
  skips: string[];
}

const root = join(import.meta.dirname, '..');
const bin = (name: string): string => join(root, 'node_modules', '.bin', name);
const args = process.argv.slice(2);
// A directory stands for the test files under it (tap itself only takes files or globs).
const paths = args
  .filter((a) => !a.startsWith('--'))
  .flatMap((a) =>
    existsSync(a) && statSync(a).isDirectory()
      ? readdirSync(a, { recursive: true, encoding: 'utf8' })
          .filter((f) => f.endsWith('.test.ts'))
          .map((f) => join(a, f))
          .sort()
      : [a],
  );
const runStatic = !args.includes('--no-static') && paths.length === 0;
const runTap = !args.includes('--only-static');
const counts: Counts = { passed: 0, failed: 0, skipped: 0, failures: [], skips: [] };
const say = (s: string): void => void process.stdout.write(s + '\n');
// Children (tap, tsc, eslint) must run on the project's pinned Node, not the machine's.
const env = { ...process.env, PATH: `${join(root, 'node_modules', '.bin')}:${process.env['PATH'] ?? ''}` };

function staticCheck(name: string, cmd: string, cmdArgs: string[]): void {
  const t0 = performance.now();
  const r = spawnSync(cmd, cmdArgs, { cwd: root, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const secs = ((performance.now() - t0) / 1000).toFixed(1);
  if (r.status === 0) {
    counts.passed++;
    say(`ok     static: ${name} (${secs}s)`);
  } else {
    counts.failed++;
    counts.failures.push(`static: ${name}`);
    say(`FAILED static: ${name} (${secs}s)`);
    say((r.stdout + r.stderr + (r.error?.message ?? '')).trim().split('\n').slice(0, 60).join('\n'));
  }
}

if (runStatic) {
  staticCheck('typecheck', bin('tsc'), ['-p', 'tsconfig.json', '--noEmit']);
  staticCheck('lint', bin('eslint'), ['--max-warnings=0', '.']);
  staticCheck('format', bin('prettier'), ['--check', '--log-level=warn', '.']);
  staticCheck('layers', process.execPath, [join(root, 'scripts', 'check-layers.ts')]);
}

/** Counts innermost subtests of a parsed TAP tree. */
function countTap(text: string): void {
  interface Node {
    name: string;
    children: Node[];
    asserts: Result[];
    parser: Parser;
  }
  const top: Node = { name: '', children: [], asserts: [], parser: new Parser() };
  const attach = (node: Node): void => {
    node.parser.on('child', (p: Parser) => {
      const child: Node = { name: p.name, children: [], asserts: [], parser: p };
      node.children.push(child);
      attach(child);
    });
    node.parser.on('assert', (r: Result) => node.asserts.push(r));
  };
  attach(top);
  top.parser.end(text);

  // A subtest's own result line is an assert in its parent carrying the subtest's name, in order.
  const visit = (node: Node, path: string[], result: Result | undefined): void => {
    const childNames = new Map<string, Node[]>();
    for (const c of node.children) childNames.set(c.name, [...(childNames.get(c.name) ?? []), c]);
    const subtestAsserts: { res: Result; child: Node }[] = [];
    const plainAsserts: Result[] = [];
    for (const a of node.asserts) {
      const queue = childNames.get(a.name);
      const child = queue?.shift();
      if (child !== undefined) subtestAsserts.push({ res: a, child });
      else plainAsserts.push(a);
    }
    const label = path.join(' > ');
    if (subtestAsserts.length === 0) {
      // innermost: this node is one test (its own result decides; fall back to its assertions)
      if (result === undefined) return;
      const skipped = result.skip !== false || result.todo !== false || node.parser.planEnd === 0;
      if (!result.ok) {
        counts.failed++;
        const why = plainAsserts.filter((a) => !a.ok).map((a) => `      not ok ${a.id} - ${a.name}`);
        counts.failures.push([label, ...why].join('\n'));
      } else if (skipped) {
        counts.skipped++;
        const reason =
          typeof result.skip === 'string'
            ? result.skip
            : typeof result.todo === 'string'
              ? result.todo
              : node.parser.planComment.replace(/^SKIP\s*/i, '');
        counts.skips.push(`${label}${reason === '' ? '' : ' (' + reason + ')'}`);
      } else counts.passed++;
      return;
    }
    for (const { res, child } of subtestAsserts) visit(child, [...path, res.name], res);
    // A subtest without a result line was cut short (its process died): it failed.
    for (const [name, rest] of childNames) {
      for (let i = 0; i < rest.length; i++) {
        counts.failed++;
        counts.failures.push(`${[...path, name].join(' > ')} (did not finish)`);
      }
    }
    // In a node that also has subtests, a skipped assertion is a subtest skipped without running
    // (`t.test(name, { skip })`); the other direct assertions count as one test together.
    const skippedHere = plainAsserts.filter((a) => a.skip !== false || a.todo !== false);
    for (const a of skippedHere) {
      counts.skipped++;
      const reason = typeof a.skip === 'string' ? a.skip : typeof a.todo === 'string' ? a.todo : '';
      counts.skips.push(`${[...path, a.name].join(' > ')}${reason === '' ? '' : ' (' + reason + ')'}`);
    }
    const direct = plainAsserts.filter((a) => !skippedHere.includes(a));
    if (direct.length > 0 && path.length > 0) {
      const failed = direct.filter((a) => !a.ok);
      if (failed.length > 0) {
        counts.failed++;
        counts.failures.push(
          [`${label} (top-level assertions)`, ...failed.map((a) => `      not ok ${a.id} - ${a.name}`)].join('\n'),
        );
      } else counts.passed++;
    }
  };
  visit(top, [], undefined);
}

if (runTap) {
  const outDir = join(root, '.tap');
  mkdirSync(outDir, { recursive: true });
  const tapOut = join(outDir, 'last-run.tap');
  rmSync(tapOut, { force: true });
  const common = ['--coverage-report=text-summary', '--allow-incomplete-coverage', ...paths];
  const tapEnv = { ...env, FORCE_COLOR: '0' };
  let status: number | string;
  let streamed: Buffer[] | undefined;
  if (process.stdout.isTTY) {
    // A terminal gets the terse live view; tap writes the raw stream to the file.
    const r = spawnSync(bin('tap'), ['--reporter=terse', `--output-file=${tapOut}`, ...common], {
      cwd: root,
      stdio: 'inherit',
      env: tapEnv,
    });
    status = r.status ?? r.signal ?? 'unknown';
  } else {
    // A log (CI) gets the plain TAP stream, with every diagnostic and no cursor-control codes; it is
    // teed into the file that the summary below is computed from.
    const file = createWriteStream(tapOut);
    const child = spawn(bin('tap'), ['--reporter=tap', '--no-color', ...common], {
      cwd: root,
      stdio: ['inherit', 'pipe', 'inherit'],
      env: tapEnv,
    });
    const chunks: Buffer[] = [];
    streamed = chunks;
    child.stdout.on('data', (chunk: Buffer) => {
      process.stdout.write(chunk);
      file.write(chunk);
      chunks.push(chunk);
    });
    status = await new Promise<number | string>((resolve) => {
      child.on('close', (code, signal) => resolve(code ?? signal ?? 'unknown'));
    });
    await new Promise<void>((resolve) => file.end(resolve));
  }
  // Counted from what this run produced (the streamed copy when there is one), never from a file
  // another run may have replaced meanwhile.
  let text = '';
  if (streamed !== undefined) text = Buffer.concat(streamed).toString('utf8');
  else {
    try {
      text = readFileSync(tapOut, 'utf8');
    } catch {
      // reported below
    }
  }
  if (text === '') {
    counts.failed++;
    counts.failures.push(`tap produced no output (exit ${status})`);
  }
  if (text !== '') countTap(text);
  if (status !== 0 && counts.failed === 0) {
    counts.failed++;
    counts.failures.push(`tap exited with ${status} (see above)`);
  }
}

if (counts.skips.length > 0) {
  say('\nskipped:');
  for (const s of counts.skips) say(`  - ${s}`);
}
if (counts.failures.length > 0) {
  say('\nfailed:');
  for (const f of counts.failures) say(`  - ${f}`);
}
say(`\n${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped`);
process.exitCode = counts.failed === 0 ? 0 : 1;
