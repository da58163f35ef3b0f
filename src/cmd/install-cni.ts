/**
 * install-cni: writes the antrea CNI plugin and 10-antrea.conflist (as Antrea's install_cni init
 * container does).
 *
 *   install-cni --bin-dir DIR --conf-dir DIR [--cni-socket PATH] [--compile-cache DIR]
 *               [--copy-plugins NAME,NAME --copy-from DIR] [--portmap] [--bandwidth]
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { installCni } from '../common/cni/install.ts';
import { createCommandRunner } from '../common/util/exec.ts';
import { DEFAULT_CNI_SOCKET } from './antrea-cni.ts';

export const USAGE = `usage: install-cni --bin-dir DIR --conf-dir DIR [--cni-socket PATH] [--compile-cache DIR]
                   [--copy-plugins NAME,NAME --copy-from DIR] [--portmap] [--bandwidth]`;

export async function main(argv: readonly string[]): Promise<string> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      'bin-dir': { type: 'string' },
      'conf-dir': { type: 'string' },
      'cni-socket': { type: 'string' },
      'compile-cache': { type: 'string' },
      'copy-plugins': { type: 'string' },
      'copy-from': { type: 'string' },
      portmap: { type: 'boolean' },
      bandwidth: { type: 'boolean' },
    },
    strict: true,
  });
  const binDir = values['bin-dir'];
  const confDir = values['conf-dir'];
  if (binDir === undefined || confDir === undefined) throw new Error(`--bin-dir and --conf-dir are required\n${USAGE}`);
  const copy = (values['copy-plugins'] ?? '').split(',').filter((s) => s !== '');
  const r = await installCni({
    binDir,
    confDir,
    nodePath: process.execPath,
    pluginEntry: join(import.meta.dirname, 'antrea-cni.ts'),
    cniSocket: values['cni-socket'] ?? DEFAULT_CNI_SOCKET,
    compileCacheDir: values['compile-cache'] ?? join(binDir, '.antrea-cni-cache'),
    chainPortmap: values.portmap === true,
    chainBandwidth: values.bandwidth === true,
    copyPlugins: copy,
    ...(values['copy-from'] === undefined ? {} : { copyFrom: values['copy-from'] }),
    runner: createCommandRunner(),
  });
  return `installed ${r.pluginPath} and ${r.conflistPath}${r.copied.length > 0 ? ` (copied ${r.copied.join(', ')})` : ''}`;
}

if (import.meta.main) {
  main(process.argv.slice(2)).then(
    (msg) => console.log(msg),
    (err: unknown) => {
      console.error(`install-cni: ${err instanceof Error ? err.message : String(err)}`);
      process.exitCode = 1;
    },
  );
}
