import t, { type Test } from 'tap';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { checkLayers } from '../../scripts/check-layers.ts';

const repoRoot = join(import.meta.dirname, '..', '..');

t.test('the real tree respects the layer rules', (t) => {
  const violations = checkLayers(repoRoot);
  t.same(violations, [], violations.map((v) => `${v.file}:${v.line} ${v.message}`).join('\n'));
  t.end();
});

function tree(t: Test, files: Record<string, string>): string {
  const dir = t.testdir();
  for (const [p, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, p)), { recursive: true });
    writeFileSync(join(dir, p), text);
  }
  return dir;
}

t.test('the check catches each kind of violation', (t) => {
  const dir = tree(t, {
    'src/common/a.ts': "import { x } from '../platform/linux/b.ts';\nexport const a = x;\n",
    'src/common/ok.ts': "import { a } from './a.ts';\nexport const ok = a;\n",
    'src/platform/linux/b.ts': "export { w } from '../windows/w.ts';\nexport const x = 1;\n",
    'src/platform/windows/w.ts': "import koffi from 'koffi';\nexport const w = koffi;\n",
    'src/controller/c.ts':
      "import { spawn } from 'node:child_process';\nexport const c = process.platform;\nexport const s = spawn;\n",
    'src/lab/l.ts':
      "import { x } from '../platform/linux/b.ts';\nimport { w } from '../platform/windows/w.ts';\nexport const l = [x, w];\n",
    'src/antctl/o.ts':
      "import { platform } from 'node:os';\nexport const o = platform();\nexport const d = import('../lab/l.ts');\n",
    'src/cmd/main.ts': "import { l } from '../lab/l.ts';\nexport const m = [l, process.platform];\n",
    'src/stray.ts': 'export const s = 1;\n',
  });
  const got = checkLayers(dir).map((v) => `${v.file}:${v.line}:${v.rule}`);
  t.same(got.sort(), [
    'src/antctl/o.ts:2:platform',
    'src/antctl/o.ts:3:layer',
    'src/common/a.ts:1:layer',
    'src/controller/c.ts:1:child-process',
    'src/controller/c.ts:2:platform',
    'src/lab/l.ts:2:layer',
    'src/platform/linux/b.ts:1:layer',
    'src/platform/windows/w.ts:1:package',
    'src/stray.ts:1:unknown-layer',
  ]);
  t.end();
});
