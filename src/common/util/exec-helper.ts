/**
 * The exec helper: a small child process that runs commands for {@link createHelperRunner} (see
 * exec.ts for why). It serves requests over the IPC channel until the channel closes, then exits.
 */
import { createCommandRunner, ExecError, type HelperReply, type HelperRequest } from './exec.ts';

const runner = createCommandRunner();
const running = new Map<number, AbortController>();

function reply(m: HelperReply): void {
  if (process.connected) process.send?.(m);
}

process.on('message', (m: HelperRequest) => {
  if (m.abort === true) {
    running.get(m.id)?.abort();
    return;
  }
  const ac = new AbortController();
  running.set(m.id, ac);
  runner
    .run(m.cmd ?? '', m.args ?? [], { ...m.opts, signal: ac.signal })
    .then(
      (result) => reply({ id: m.id, result }),
      (err: unknown) => {
        const e =
          err instanceof ExecError
            ? err
            : new ExecError('EXEC_FAILED', m.cmd ?? '', err instanceof Error ? err.message : String(err));
        reply({
          id: m.id,
          error: {
            code: e.code,
            command: e.command,
            message: e.message,
            exitCode: e.exitCode,
            stderr: e.stderr,
            stdout: e.stdout,
          },
        });
      },
    )
    .finally(() => running.delete(m.id));
});
process.on('disconnect', () => process.exit(0));
