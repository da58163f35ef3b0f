/**
 * The kubectl binaries tests run against: the machine's `kubectl` (on these machines a gcloud
 * dispatcher that picks a release by the server's version) and Debian's `kubernetes-client`
 * (kubectl 1.20, what scripts/bootstrap.sh installs on a fresh machine), fetched with
 * `apt-get download` + `dpkg-deb -x` into .cache/ (git-ignored) when it is not there yet.
 */
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createCommandRunner, type CommandRunner } from '../../src/common/util/exec.ts';
import { errorMessage } from '../../src/common/util/errors.ts';

export interface KubectlBinary {
  /** For test names: `kubectl 1.32 (/usr/bin/kubectl)`. */
  readonly label: string;
  readonly path: string;
  readonly minor: number;
}

const root = join(import.meta.dirname, '..', '..');
const debianDir = join(root, '.cache', 'kubectl-1.20');
const debianKubectl = join(debianDir, 'root', 'usr', 'bin', 'kubectl');

function onPath(cmd: string): string | undefined {
  for (const d of [...(process.env['PATH'] ?? '').split(':'), '/usr/bin', '/usr/local/bin']) {
    if (d !== '' && existsSync(join(d, cmd))) return join(d, cmd);
  }
  return undefined;
}

async function minorOf(runner: CommandRunner, path: string): Promise<number> {
  const r = await runner.run(path, ['version', '--client', '-o', 'json'], { timeoutMs: 30_000 });
  const v = JSON.parse(r.stdout) as { clientVersion?: { minor?: string } };
  return Number.parseInt(v.clientVersion?.minor ?? '', 10);
}

/** Fetches Debian's kubernetes-client into .cache/ (idempotent). Returns the binary or why it could not. */
export async function debianKubectlBinary(
  runner: CommandRunner = createCommandRunner(),
): Promise<string | { skip: string }> {
  if (existsSync(debianKubectl)) return debianKubectl;
  try {
    mkdirSync(debianDir, { recursive: true });
    await runner.run('apt-get', ['download', 'kubernetes-client'], { cwd: debianDir, timeoutMs: 120_000 });
    const deb = readdirSync(debianDir).find((f) => f.startsWith('kubernetes-client_') && f.endsWith('.deb'));
    if (deb === undefined) return { skip: 'apt-get download kubernetes-client produced no .deb' };
    await runner.run('dpkg-deb', ['-x', join(debianDir, deb), join(debianDir, 'root')], { timeoutMs: 60_000 });
  } catch (err) {
    return {
      skip: `cannot fetch Debian's kubernetes-client (kubectl 1.20): ${errorMessage(err).split('\n')[0] ?? ''}`,
    };
  }
  return existsSync(debianKubectl) ? debianKubectl : { skip: 'dpkg-deb did not produce usr/bin/kubectl' };
}

/** Every distinct kubectl release available, and why others are missing. */
export async function kubectlBinaries(): Promise<{ binaries: KubectlBinary[]; missing: string[] }> {
  const runner = createCommandRunner();
  const binaries: KubectlBinary[] = [];
  const missing: string[] = [];
  const add = async (path: string): Promise<void> => {
    try {
      const minor = await minorOf(runner, path);
      if (!binaries.some((b) => b.minor === minor))
        binaries.push({ label: `kubectl 1.${minor} (${path})`, path, minor });
    } catch (err) {
      missing.push(`${path} does not run: ${errorMessage(err)}`);
    }
  };
  const system = onPath('kubectl');
  if (system === undefined) missing.push('no kubectl on PATH (.ci/run installs one)');
  else await add(system);
  const debian = await debianKubectlBinary(runner);
  if (typeof debian === 'string') await add(debian);
  else missing.push(debian.skip);
  return { binaries, missing };
}
