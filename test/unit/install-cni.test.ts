/**
 * The install step: the launcher and conflist texts (golden), the files it writes with their modes,
 * companion plugins copied, and the installed plugin answering VERSION exactly as a runtime runs it.
 */
import t from 'tap';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import {
  antreaConflist,
  installCni,
  type InstallCniOptions,
  pluginLauncher,
  WINDOWS_LAUNCHER_CONFIG,
  windowsLauncherConfig,
} from '../../src/common/cni/install.ts';
import { compilePlugin } from '../../src/common/cni/compile.ts';
import { createCommandRunner } from '../../src/common/util/exec.ts';
import { main as installMain } from '../../src/cmd/install-cni.ts';
import { NO_BUN, STANDALONE } from '../helpers/bun.ts';

const WINDOWS = process.platform === 'win32';
const LAUNCHER_SOURCE = join(import.meta.dirname, '..', '..', 'build', 'images', 'windows', 'antrea-cni-launcher.c');
const MINGW = 'x86_64-w64-mingw32-gcc';
const entry = join(import.meta.dirname, '..', '..', 'src', 'cmd', 'antrea-cni.ts');

/** installCni's options for an install under `dir`: bin/, net.d/, cache/ and cni.sock there. */
function installIn(dir: string): InstallCniOptions {
  return {
    binDir: join(dir, 'bin'),
    confDir: join(dir, 'net.d'),
    nodePath: process.execPath,
    pluginEntry: entry,
    cniSocket: join(dir, 'cni.sock'),
    compileCacheDir: join(dir, 'cache'),
  };
}

t.test('the launcher and the conflist', (t) => {
  t.equal(
    pluginLauncher({
      nodePath: '/opt/node',
      pluginEntry: "/src/it's/antrea-cni.ts",
      cniSocket: '/run/a/cni.sock',
      compileCacheDir: '/var/cache/x',
    }),
    `#!/bin/sh
# antrea CNI plugin launcher, written by antrea-ts install-cni: runs the plugin on the pinned Node.
[ -n "$ANTREA_CNI_SOCKET" ] || ANTREA_CNI_SOCKET='/run/a/cni.sock'
[ -n "$NODE_COMPILE_CACHE" ] || NODE_COMPILE_CACHE='/var/cache/x'
export ANTREA_CNI_SOCKET NODE_COMPILE_CACHE
exec '/opt/node' '/src/it'\\''s/antrea-cni.ts' "$@"
`,
  );
  t.same(JSON.parse(antreaConflist({})), {
    cniVersion: '1.0.0',
    name: 'antrea',
    cniVersions: ['1.0.0', '1.1.0'],
    plugins: [{ type: 'antrea', ipam: { type: 'host-local' } }],
  });
  t.same((JSON.parse(antreaConflist({ dnsCapability: true })) as { plugins: unknown[] }).plugins[0], {
    type: 'antrea',
    ipam: { type: 'host-local' },
    capabilities: { dns: true },
  });
  t.same(
    (JSON.parse(antreaConflist({ primaryPlugin: { type: 'ptp' }, chainPortmap: true })) as { plugins: unknown[] })
      .plugins,
    [{ type: 'ptp' }, { type: 'antrea' }, { type: 'portmap', capabilities: { portMappings: true } }],
    'chained after a primary plugin: antrea has no IPAM',
  );
  t.throws(() => antreaConflist({ primaryPlugin: { type: 'antrea' } }), { message: /^primaryPlugin\.type: / });
  t.throws(() => antreaConflist({ primaryPlugin: {} }), { message: /^primaryPlugin\.type: must be a plugin name/ });
  t.same(JSON.parse(antreaConflist({ cniVersion: '0.3.0', chainPortmap: true, chainBandwidth: true })), {
    cniVersion: '0.3.0',
    name: 'antrea',
    plugins: [
      { type: 'antrea', ipam: { type: 'host-local' } },
      { type: 'portmap', capabilities: { portMappings: true } },
      { type: 'bandwidth', capabilities: { bandwidth: true } },
    ],
  });
  t.end();
});

t.test(
  'installCni writes an executable plugin that answers VERSION',
  {
    skip: WINDOWS ? 'the POSIX launcher runs on Linux; the Windows form is tested below' : false,
  },
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'ats-install-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    mkdirSync(join(dir, 'src'));
    writeFileSync(join(dir, 'src', 'loopback'), '#!/bin/sh\n');
    const runner = createCommandRunner();
    const r = await installCni({
      ...installIn(dir),
      copyPlugins: ['loopback'],
      copyFrom: join(dir, 'src'),
      runner,
    });
    t.equal(r.pluginPath, join(dir, 'bin', 'antrea'));
    t.equal(r.conflistPath, join(dir, 'net.d', '10-antrea.conflist'));
    t.same(r.copied, ['loopback']);
    t.equal(statSync(r.pluginPath).mode & 0o777, 0o755);
    t.equal(statSync(join(dir, 'bin', 'loopback')).mode & 0o777, 0o755);
    t.equal(statSync(r.conflistPath).mode & 0o777, 0o644);
    t.equal((JSON.parse(readFileSync(r.conflistPath, 'utf8')) as { cniVersion: string }).cniVersion, '1.0.0');
    const v = await runner.run(r.pluginPath, [], { env: { CNI_COMMAND: 'VERSION' }, replaceEnv: true });
    t.same(JSON.parse(v.stdout), {
      cniVersion: '1.1.0',
      supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'],
    });
    t.equal(r.entry, join(dir, 'cache', 'antrea-cni.cjs'), 'the launcher runs the bundled plugin');
    t.match(readFileSync(r.pluginPath, 'utf8'), `'${r.entry}'`);
    const ts = await installCni({
      binDir: join(dir, 'bin-ts'),
      confDir: join(dir, 'net.d'),
      nodePath: process.execPath,
      pluginEntry: entry,
      cniSocket: join(dir, 'cni.sock'),
      compileCacheDir: join(dir, 'cache-ts'),
      compile: false,
      runner,
    });
    t.equal(ts.entry, entry, 'compile: false runs the TypeScript entry');
    const vts = await runner.run(ts.pluginPath, [], { env: { CNI_COMMAND: 'VERSION' }, replaceEnv: true });
    t.equal(vts.stdout, v.stdout, 'both forms answer alike');
    await t.rejects(
      installCni({
        binDir: dir,
        confDir: dir,
        nodePath: '/no/node',
        pluginEntry: entry,
        cniSocket: 's',
        compileCacheDir: dir,
      }),
      { message: /^nodePath: / },
    );
    await t.rejects(
      installCni({
        binDir: dir,
        confDir: dir,
        nodePath: process.execPath,
        pluginEntry: entry,
        cniSocket: 's',
        compileCacheDir: dir,
        copyPlugins: ['x'],
        copyFrom: dir,
      }),
      { message: /^copyPlugins: / },
    );
    const msg = await installMain([
      '--bin-dir',
      join(dir, 'b2'),
      '--conf-dir',
      join(dir, 'c2'),
      '--cni-socket',
      '/x.sock',
    ]);
    t.match(msg, /installed .*b2\/antrea \((standalone executable|on Node)\) and .*c2\/10-antrea\.conflist/);
    t.match(
      await installMain(['--bin-dir', join(dir, 'b4'), '--conf-dir', join(dir, 'c4'), '--node-plugin']),
      /installed .*b4\/antrea \(on Node\) and /,
      '--node-plugin: the plugin runs on Node',
    );
    await t.rejects(
      installMain(['--bin-dir', dir, '--conf-dir', dir, '--bun', join(dir, 'no-bun')]),
      /--bun: .*no-bun does not exist/,
    );
    await t.rejects(
      installMain(['--bin-dir', dir, '--conf-dir', dir, '--bun', process.execPath, '--node-plugin']),
      /--bun and --node-plugin exclude each other/,
    );
    // A chained conflist (networkPolicyOnly): the primary plugin first, antrea after it.
    const primary = { type: 'ptp', ipMasq: false, ipam: { type: 'host-local', ranges: [[{ subnet: '10.1.0.0/24' }]] } };
    await installMain([
      '--bin-dir',
      join(dir, 'b3'),
      '--conf-dir',
      join(dir, 'c3'),
      '--primary-plugin',
      JSON.stringify(primary),
    ]);
    t.same(JSON.parse(readFileSync(join(dir, 'c3', '10-antrea.conflist'), 'utf8')), {
      cniVersion: '1.0.0',
      name: 'antrea',
      plugins: [primary, { type: 'antrea' }],
    });
    await t.rejects(
      installMain(['--bin-dir', dir, '--conf-dir', dir, '--primary-plugin', '[1]']),
      /--primary-plugin: must be a JSON object/,
    );
    await t.rejects(installMain(['--bin-dir', dir]), /--bin-dir and --conf-dir are required/);
  },
);

t.test('installCni builds the standalone plugin executable with Bun', { skip: NO_BUN }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ats-install-standalone-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const runner = createCommandRunner();
  const standalone = STANDALONE ?? { bunPath: 'bun', entry: '' };
  const r = await installCni({ ...installIn(dir), standalone, runner });
  t.equal(r.form, 'standalone');
  t.same(r.notes, []);
  t.equal(r.entry, r.pluginPath, 'the plugin is the executable itself');
  t.equal(statSync(r.pluginPath).mode & 0o777, 0o755);
  t.equal(readFileSync(r.pluginPath).subarray(0, 4).toString('latin1'), '\x7fELF', 'an ELF executable, not a script');
  t.same(readdirSync(join(dir, 'bin')), ['antrea'], 'no temporary file left');
  const v = await runner.run(r.pluginPath, [], { env: { CNI_COMMAND: 'VERSION' }, replaceEnv: true });
  t.same(JSON.parse(v.stdout), {
    cniVersion: '1.1.0',
    supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'],
  });
  const about = await runner.run(r.pluginPath, [], { env: {}, replaceEnv: true });
  t.match(
    about.stderr,
    /^Antrea CNI \(antrea-ts\)\nCNI protocol versions supported: 0\.3\.0, /,
    'no command: the about text',
  );
  // Bad input is answered by the executable alone, as the spec says (no agent needed).
  // One run of the installed plugin with only `env` set, `input` on stdin: its printed JSON.
  const run = async (env: Record<string, string>, input: string, cwd?: string): Promise<unknown> => {
    const out = await runner.run(r.pluginPath, [], {
      env,
      replaceEnv: true,
      input,
      okExitCodes: [1],
      ...(cwd === undefined ? {} : { cwd }),
    });
    return JSON.parse(out.stdout);
  };
  const addEnv = {
    CNI_COMMAND: 'ADD',
    CNI_CONTAINERID: 'c1',
    CNI_NETNS: '/x',
    CNI_IFNAME: 'eth0',
    CNI_PATH: '/opt/cni/bin',
  };
  t.match(
    await run(addEnv, '{"cniVersion":"1.0.0"'),
    { cniVersion: '1.1.0', code: 6 },
    'unparseable config: DECODING_FAILURE',
  );
  t.match(
    await run(addEnv, '{"cniVersion":"1.0.0","name":"antrea","type":"antrea"}'),
    { code: 11, msg: `connect ENOENT ${join(dir, 'cni.sock')}` },
    'no agent: try again later, at the socket baked in',
  );
  const status = '{"cniVersion":"1.1.0","name":"antrea","type":"antrea"}';
  t.match(
    await run({ CNI_COMMAND: 'STATUS', ANTREA_CNI_SOCKET: join(dir, 'other.sock') }, status),
    { code: 50, msg: /other\.sock/ },
    '$ANTREA_CNI_SOCKET overrides it',
  );
  // Bun's executables read .env and bunfig.toml from their working directory unless built not to.
  const cwd = join(dir, 'cwd');
  mkdirSync(cwd);
  writeFileSync(join(cwd, '.env'), `ANTREA_CNI_SOCKET=${join(dir, 'evil.sock')}\n`);
  writeFileSync(join(cwd, 'bunfig.toml'), 'preload = ["./evil.ts"]\n');
  t.match(
    await run({ CNI_COMMAND: 'STATUS' }, status, cwd),
    { code: 50, msg: `connect ENOENT ${join(dir, 'cni.sock')}` },
    'a .env or bunfig.toml where the runtime runs it changes nothing',
  );
});

t.test('a standalone build that fails or does not run leaves the plugin on Node, and says why', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ats-install-fallback-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const runner = createCommandRunner();
  // A "compiler" that fails, and one that writes an executable which does not answer VERSION.
  const failing = join(dir, 'bun-fails');
  writeFileSync(failing, '#!/bin/sh\necho "error: cannot compile" >&2\nexit 3\n', { mode: 0o755 });
  const broken = join(dir, 'bun-broken');
  writeFileSync(
    broken,
    '#!/bin/sh\nwhile [ "$1" != --outfile ]; do shift; done\nprintf \'#!/bin/sh\\necho garbage\\n\' > "$2"\nchmod +x "$2"\n',
    { mode: 0o755 },
  );
  for (const [name, bunPath, why] of [
    ['fails', failing, /standalone plugin was not built, it runs on Node: .*cannot compile/s],
    [
      'broken',
      broken,
      /standalone plugin was not built, it runs on Node: the built plugin answered VERSION with "garbage/,
    ],
  ] as const) {
    const r = await installCni({ ...installIn(join(dir, name)), standalone: { bunPath, entry }, runner });
    t.equal(r.form, 'node-bundle', `${name}: on Node`);
    t.match(r.notes.join('\n'), why);
    t.same(
      readdirSync(join(dir, name, 'bin')).filter((f) => f.includes('.tmp')),
      [],
      'no half-built file left',
    );
    const v = await runner.run(r.pluginPath, [], { env: { CNI_COMMAND: 'VERSION' }, replaceEnv: true });
    t.match(JSON.parse(v.stdout), { cniVersion: '1.1.0' }, `${name}: the installed plugin works`);
  }
  const base = {
    binDir: join(dir, 'x'),
    confDir: join(dir, 'x'),
    nodePath: process.execPath,
    pluginEntry: entry,
    cniSocket: 's',
    compileCacheDir: join(dir, 'x'),
  };
  await t.rejects(installCni({ ...base, standalone: { bunPath: failing, entry } }), {
    name: 'ValidationError',
    message: /^runner: is required to build the standalone plugin/,
  });
  await t.rejects(installCni({ ...base, standalone: { bunPath: join(dir, 'nope'), entry }, runner }), {
    name: 'ValidationError',
    message: /^standalone\.bunPath: .*nope does not exist/,
  });
  t.notOk(existsSync(join(dir, 'x')), 'a refused install writes nothing');
});

t.test('compilePlugin bundles the plugin and its imports into one CommonJS script', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ats-compile-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const src = join(dir, 'src');
  mkdirSync(join(src, 'lib'), { recursive: true });
  const write = (name: string, code: string): string => {
    writeFileSync(join(src, name), code);
    return join(src, name);
  };
  write(
    'main.ts',
    [
      "import { type T, double, half as halve } from './lib/util.ts';",
      "import type { U } from './lib/types.ts';",
      "import { readFileSync } from 'node:fs';",
      "import { join as joinPath } from 'node:path';",
      'const x: T = double(21);',
      'if (import.meta.main) {',
      "  process.stdout.write(JSON.stringify([x satisfies U, halve(x), typeof readFileSync, joinPath('a', 'b')]));",
      '}',
      '',
    ].join('\n'),
  );
  write(
    'lib/util.ts',
    [
      "import { readFileSync } from 'node:fs';",
      'export type T = number;',
      'export function double(n: number): T {',
      '  return n * 2;',
      '}',
      'export const half = (n: number): number => n / 2;',
      'export class Unused {',
      '  read = readFileSync;',
      '}',
      '',
    ].join('\n'),
  );
  write('lib/types.ts', 'export type U = number;\n');
  const out = compilePlugin(join(src, 'main.ts'), join(dir, 'out', 'plugin.cjs'));
  t.equal(out, join(dir, 'out', 'plugin.cjs'));
  const code = readFileSync(out, 'utf8');
  t.notMatch(code, /^\s*(import|export)\b/m, 'no module syntax is left');
  t.notMatch(code, ': number', 'types are gone');
  t.equal(code.match(/getBuiltinModule\("node:fs"\)/g)?.length, 1, 'a built-in binding imported twice is taken once');
  t.ok(code.indexOf('// ==== lib/util.ts') < code.indexOf('// ==== main.ts'), 'dependencies come first');
  const run = await createCommandRunner().run(process.execPath, [out]);
  t.same(JSON.parse(run.stdout), [42, 21, 'function', join('a', 'b')], 'the bundle runs as the entry would');

  const lead = compilePlugin(
    write('lead.ts', "import.meta.main && process.stdout.write('main');\n"),
    join(dir, 'out', 'lead.cjs'),
  );
  t.equal((await createCommandRunner().run(process.execPath, [lead])).stdout, 'main', 'import.meta.main anywhere');

  const rejects = (entry: string, message: RegExp, what: string): void => {
    t.throws(() => compilePlugin(entry, join(dir, 'bad', 'x.cjs')), { name: 'ValidationError', message }, what);
  };
  rejects(
    write('missing.ts', "import { x } from './nope.ts';\n"),
    /^pluginEntry: cannot compile .*nope\.ts/,
    'missing',
  );
  rejects(write('reexport.ts', "export { double } from './lib/util.ts';\n"), /an export form/, 're-export');
  rejects(write('default.ts', "import fs from 'node:fs';\nfs;\n"), /an import form/, 'default import');
  rejects(write('dynamic.ts', "await import('./lib/util.ts');\n"), /an import form/, 'dynamic import');
  rejects(write('meta.ts', 'import.meta.dirname;\n'), /an import form/, 'import.meta other than main');
  rejects(
    write('pkg.ts', "import { Server } from '@grpc/grpc-js';\nServer;\n"),
    /import of "@grpc\/grpc-js"/,
    'package',
  );
  rejects(
    write(
      'clash.ts',
      "import { double } from './lib/util.ts';\nfunction half(): number {\n  return double(1);\n}\nhalf();\n",
    ),
    /top-level name "half" is also declared by lib\/util\.ts/,
    'two modules declare one name',
  );
  rejects(write('destructure.ts', 'const { a } = { a: 1 };\na;\n'), /destructuring/, 'destructuring');
  write('cycle-b.ts', "import { a } from './cycle-a.ts';\nexport const b = a;\n");
  rejects(
    write('cycle-a.ts', "import { b } from './cycle-b.ts';\nexport const a = 1;\nb;\n"),
    /an import cycle/,
    'cycle',
  );
  t.throws(() => compilePlugin(join(src, 'main.ts'), join(dir, 'out3', 'x.cjs'), null), {
    message: /^stripTypeScriptTypes: /,
  });
});

t.test('the Windows launcher configuration', (t) => {
  const o = {
    nodePath: 'C:\\k\\antrea\\node\\node.exe',
    pluginEntry: 'C:\\k\\antrea\\antrea-ts\\src\\cmd\\antrea-cni.ts',
    cniSocket: '\\\\.\\pipe\\cnisock',
    compileCacheDir: 'C:\\k\\antrea\\cni-cache',
  };
  t.equal(
    windowsLauncherConfig(o),
    [
      '# antrea CNI plugin launcher configuration, written by antrea-ts install-cni (read by antrea.exe).',
      'node=C:\\k\\antrea\\node\\node.exe',
      'entry=C:\\k\\antrea\\antrea-ts\\src\\cmd\\antrea-cni.ts',
      'env=ANTREA_CNI_SOCKET=\\\\.\\pipe\\cnisock',
      'env=NODE_COMPILE_CACHE=C:\\k\\antrea\\cni-cache',
      '',
    ].join('\r\n'),
  );
  t.throws(() => windowsLauncherConfig({ ...o, cniSocket: 'a\nnode=evil.exe' }), {
    name: 'ValidationError',
    message: /^cniSocket: /,
  });
  t.throws(() => windowsLauncherConfig({ ...o, nodePath: '' }), { message: /^nodePath: / });
  t.end();
});

t.test('installCni for Windows writes antrea.exe, its configuration and a dns-capable conflist', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ats-install-win-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const launcher = join(dir, 'antrea-cni-launcher.exe');
  const exe = Buffer.from('MZ\x90\x00 a stand-in for the compiled launcher');
  writeFileSync(launcher, exe);
  const base = {
    binDir: join(dir, 'bin'),
    confDir: join(dir, 'net.d'),
    nodePath: process.execPath,
    pluginEntry: entry,
    cniSocket: '\\\\.\\pipe\\cnisock',
    compileCacheDir: join(dir, 'cache'),
    targetOs: 'windows' as const,
  };
  const r = await installCni({ ...base, launcherExe: launcher });
  t.equal(r.pluginPath, join(dir, 'bin', 'antrea.exe'));
  t.same(readFileSync(r.pluginPath), exe, 'antrea.exe is the launcher');
  t.notOk(existsSync(join(dir, 'bin', 'antrea')), 'no POSIX launcher');
  t.equal(r.entry, join(dir, 'cache', 'antrea-cni.cjs'), 'runs the bundled plugin');
  t.equal(
    readFileSync(join(dir, 'bin', WINDOWS_LAUNCHER_CONFIG), 'utf8'),
    windowsLauncherConfig({ ...base, pluginEntry: r.entry }),
  );
  t.same(JSON.parse(readFileSync(r.conflistPath, 'utf8')), {
    cniVersion: '1.0.0',
    name: 'antrea',
    cniVersions: ['1.0.0', '1.1.0'],
    plugins: [{ type: 'antrea', ipam: { type: 'host-local' }, capabilities: { dns: true } }],
  });
  await t.rejects(installCni(base), { name: 'ValidationError', message: /^launcherExe: is required/ });
  await t.rejects(installCni({ ...base, launcherExe: join(dir, 'nope.exe') }), {
    message: /^launcherExe: .* does not exist/,
  });

  const args = ['--bin-dir', join(dir, 'b2'), '--conf-dir', join(dir, 'c2'), '--os', 'windows'];
  await t.rejects(installMain(args), /--launcher is required for --os windows/);
  await t.rejects(installMain(['--bin-dir', dir, '--conf-dir', dir, '--os', 'plan9']), /--os must be linux or windows/);
  t.match(await installMain([...args, '--launcher', launcher]), /installed .*antrea\.exe \(on Node\) and /);
  t.match(
    readFileSync(join(dir, 'b2', WINDOWS_LAUNCHER_CONFIG), 'utf8'),
    /\r\nenv=ANTREA_CNI_SOCKET=\\\\\.\\pipe\\cnisock\r\n/,
  );
});

function onPath(cmd: string): boolean {
  return (process.env['PATH'] ?? '').split(delimiter).some((d) => d !== '' && existsSync(join(d, cmd)));
}

t.test(
  'the launcher compiles with mingw-w64 into a 64-bit console executable',
  {
    skip: onPath(MINGW) ? false : `needs ${MINGW} (Debian package gcc-mingw-w64-x86-64, in scripts/bootstrap.sh)`,
  },
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'ats-launcher-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const out = join(dir, 'antrea.exe');
    await createCommandRunner().run(
      MINGW,
      ['-O2', '-Wall', '-Wextra', '-Werror', '-municode', '-o', out, LAUNCHER_SOURCE],
      {
        timeoutMs: 120_000,
      },
    );
    const pe = readFileSync(out);
    t.equal(pe.subarray(0, 2).toString('latin1'), 'MZ', 'a DOS header');
    const at = pe.readUInt32LE(0x3c);
    t.equal(pe.subarray(at, at + 4).toString('latin1'), 'PE\0\0', 'a PE signature');
    t.equal(pe.readUInt16LE(at + 4), 0x8664, 'machine x86-64');
    t.equal(pe.readUInt16LE(at + 24), 0x20b, 'PE32+');
    t.equal(pe.readUInt16LE(at + 24 + 68), 3, 'console subsystem (stdio is inherited)');
    const text = pe.toString('latin1');
    for (const fn of ['CreateProcessW', 'AssignProcessToJobObject', 'GetExitCodeProcess', 'SetHandleInformation']) {
      t.ok(text.includes(fn), `imports ${fn}`);
    }
  },
);

// The launcher at work needs Windows: it runs here only on a Windows runner with a MinGW gcc (the
// GitHub windows images have one on PATH).
const WIN_GCC = ['x86_64-w64-mingw32-gcc.exe', 'gcc.exe'].find((c) => WINDOWS && onPath(c));

t.test(
  'antrea.exe passes stdin, stdout, environment, arguments and the exit code through',
  {
    skip: WIN_GCC === undefined ? 'needs Windows and a MinGW gcc on PATH' : false,
  },
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'ats-launcher-run-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const runner = createCommandRunner();
    const exe = join(dir, 'antrea.exe');
    await runner.run(WIN_GCC ?? 'gcc', ['-O2', '-municode', '-o', exe, LAUNCHER_SOURCE], { timeoutMs: 120_000 });
    const script = join(dir, 'echo-plugin.mjs');
    writeFileSync(
      script,
      [
        "let input = '';",
        "process.stdin.on('data', (d) => (input += d));",
        "process.stdin.on('end', () => {",
        '  process.stdout.write(JSON.stringify({ input, socket: process.env.ANTREA_CNI_SOCKET, cmd: process.env.CNI_COMMAND, args: process.argv.slice(2) }));',
        '  process.exit(7);',
        '});',
        '',
      ].join('\n'),
    );
    writeFileSync(
      join(dir, WINDOWS_LAUNCHER_CONFIG),
      windowsLauncherConfig({
        nodePath: process.execPath,
        pluginEntry: script,
        cniSocket: '\\\\.\\pipe\\cnisock',
        compileCacheDir: join(dir, 'cache'),
      }),
    );
    const r = await runner.run(exe, ['a b', 'c"d'], {
      env: { CNI_COMMAND: 'ADD' },
      input: '{"cniVersion":"1.0.0"}',
      okExitCodes: [7],
    });
    t.equal(r.exitCode, 7, 'the exit code');
    t.same(JSON.parse(r.stdout), {
      input: '{"cniVersion":"1.0.0"}',
      socket: '\\\\.\\pipe\\cnisock',
      cmd: 'ADD',
      args: ['a b', 'c"d'],
    });
    const mine = await runner.run(exe, [], { env: { ANTREA_CNI_SOCKET: 'mine' }, input: '', okExitCodes: [7] });
    t.equal((JSON.parse(mine.stdout) as { socket: string }).socket, 'mine', 'a set variable is not overridden');
    rmSync(join(dir, WINDOWS_LAUNCHER_CONFIG));
    const broken = await runner.run(exe, [], { input: '', okExitCodes: [1] });
    t.match(JSON.parse(broken.stdout), { code: 999, msg: /antrea launcher: cannot open its configuration/ });
  },
);
