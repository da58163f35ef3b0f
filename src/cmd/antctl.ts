/**
 * antctl (and kubectl-antctl, the kubectl plugin: `kubectl antctl get netpol`): the CLI to inspect
 * antrea-controller and antrea-agent. See src/antctl/args.ts for the commands and flags. The name
 * shown in messages is `kubectl antctl` when run as the plugin (ANTCTL_PROG, set by the
 * bin/kubectl-antctl wrapper, or an argv[1] named kubectl-antctl).
 */
import { basename } from 'node:path';
import { runAntctl } from '../antctl/main.ts';

function programName(): string {
  const fromEnv = process.env['ANTCTL_PROG'];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  const base = basename(process.argv[1] ?? 'antctl').replace(/\.ts$/, '');
  return base.startsWith('kubectl-') ? `kubectl ${base.slice('kubectl-'.length)}` : 'antctl';
}

if (import.meta.main) {
  runAntctl(
    process.argv.slice(2),
    {
      stdout: (s) => process.stdout.write(s),
      stderr: (s) => process.stderr.write(s),
      env: process.env,
    },
    programName(),
  ).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      console.error(`Error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      process.exitCode = 1;
    },
  );
}
