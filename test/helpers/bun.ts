/**
 * Bun's compiler, which builds the standalone antrea-cni executable: where the tests find it, and a
 * skip reason naming what is missing when they do not.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { findBun, type StandaloneBuild } from '../../src/common/cni/install.ts';

const ROOT = join(import.meta.dirname, '..', '..');

/** Why the Bun executable at `path` cannot run here, or undefined when it runs. */
function cannotRun(path: string): string | undefined {
  try {
    execFileSync(path, ['--version'], { stdio: 'ignore', timeout: 30_000 });
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

const FOUND = findBun(ROOT, process.platform, process.arch);
const BROKEN = FOUND === undefined ? undefined : cannotRun(FOUND);

/** The Bun executable from the optional `bun` package, if installed for this OS and CPU and it runs. */
export const BUN = BROKEN === undefined ? FOUND : undefined;

/** A tap skip value: false when Bun is here, else why the test cannot run. */
export const NO_BUN: string | false =
  process.platform !== 'linux'
    ? 'the standalone plugin is built for Linux'
    : FOUND === undefined
      ? 'Bun is not installed (the optional npm package "bun")'
      : BROKEN !== undefined
        ? `Bun is installed but does not run here (${BROKEN})`
        : false;

/** installCni's `standalone` option, when Bun is here. */
export const STANDALONE: StandaloneBuild | undefined =
  BUN === undefined ? undefined : { bunPath: BUN, entry: join(ROOT, 'src', 'cmd', 'antrea-cni-standalone.ts') };
