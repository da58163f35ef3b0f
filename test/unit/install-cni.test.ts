/**
 * The install step: the launcher and conflist texts (golden), the files it writes with their modes,
 * companion plugins copied, and the installed plugin answering VERSION exactly as a runtime runs it.
 */
import t from 'tap';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { antreaConflist, installCni, pluginLauncher } from '../../src/common/cni/install.ts';
import { createCommandRunner } from '../../src/common/util/exec.ts';
import { main as installMain } from '../../src/cmd/install-cni.ts';

const entry = join(import.meta.dirname, '..', '..', 'src', 'cmd', 'antrea-cni.ts');

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
: "\${ANTREA_CNI_SOCKET:=/run/a/cni.sock}"
: "\${NODE_COMPILE_CACHE:=/var/cache/x}"
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

t.test('installCni writes an executable plugin that answers VERSION', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ats-install-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'src'));
  writeFileSync(join(dir, 'src', 'loopback'), '#!/bin/sh\n');
  const runner = createCommandRunner();
  const r = await installCni({
    binDir: join(dir, 'bin'),
    confDir: join(dir, 'net.d'),
    nodePath: process.execPath,
    pluginEntry: entry,
    cniSocket: join(dir, 'cni.sock'),
    compileCacheDir: join(dir, 'cache'),
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
  t.match(msg, /installed .*b2\/antrea and .*c2\/10-antrea\.conflist/);
  await t.rejects(installMain(['--bin-dir', dir]), /--bin-dir and --conf-dir are required/);
});
