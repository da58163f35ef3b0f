import {
  type CommandRunner,
  type ExecOptions,
  type ExecResult,
  ExecError,
  formatCommand,
} from '../../src/common/util/exec.ts';

export interface Reply {
  readonly stdout?: string;
  readonly stderr?: string;
  readonly exitCode?: number;
}

/**
 * A CommandRunner that records every command line (as golden text) and answers from a table of
 * replies keyed by a regular expression over the command line. Unmatched commands succeed with no
 * output unless `strict` is set.
 */
export class RecordingRunner implements CommandRunner {
  readonly commands: string[] = [];
  readonly inputs: (string | undefined)[] = [];
  private readonly replies: { re: RegExp; reply: Reply | ((cmd: string) => Reply) }[] = [];
  private readonly strict: boolean;

  constructor(strict = false) {
    this.strict = strict;
  }

  on(re: RegExp, reply: Reply | ((cmd: string) => Reply)): this {
    this.replies.push({ re, reply });
    return this;
  }

  run(cmd: string, args: readonly string[], opts?: ExecOptions): Promise<ExecResult> {
    const line = formatCommand(cmd, args);
    this.commands.push(line);
    this.inputs.push(typeof opts?.input === 'string' ? opts.input : opts?.input === undefined ? undefined : '<bytes>');
    const match = this.replies.find((r) => r.re.test(line));
    if (match === undefined && this.strict) {
      return Promise.reject(new ExecError('EXEC_NOT_FOUND', line, `unexpected command: ${line}`));
    }
    const reply = match === undefined ? {} : typeof match.reply === 'function' ? match.reply(line) : match.reply;
    const result = { stdout: reply.stdout ?? '', stderr: reply.stderr ?? '', exitCode: reply.exitCode ?? 0 };
    if (result.exitCode !== 0 && opts?.okExitCodes?.includes(result.exitCode) !== true) {
      return Promise.reject(
        new ExecError('EXEC_FAILED', line, `${line}: exit status ${result.exitCode}: ${result.stderr}`, result),
      );
    }
    return Promise.resolve(result);
  }

  /** The recorded command lines as one text block (for golden comparisons). */
  get transcript(): string {
    return this.commands.join('\n') + (this.commands.length > 0 ? '\n' : '');
  }
}
