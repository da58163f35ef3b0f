/**
 * Bun's compiler, which builds the standalone antrea-cni executable: where the tests find it, and a
 * skip reason naming what is missing when they do not.
 */
import { join } from 'node:path';
import { findBun, type StandaloneBuild } from '../../src/common/cni/install.ts';

const ROOT = join(import.meta.dirname, '..', '..');

/** The Bun executable from the optional `bun` package, if installed for this OS and CPU. */
export const BUN = findBun(ROOT, process.platform, process.arch);

/** A tap skip value: false when Bun is here, else why the test cannot run. */
export const NO_BUN: string | false =
  process.platform !== 'linux'
    ? 'the standalone plugin is built for Linux'
    : BUN === undefined
      ? 'Bun is not installed (the optional npm package "bun")'
      : false;

/** installCni's `standalone` option, when Bun is here. */
export const STANDALONE: StandaloneBuild | undefined =
  BUN === undefined ? undefined : { bunPath: BUN, entry: join(ROOT, 'src', 'cmd', 'antrea-cni-standalone.ts') };
