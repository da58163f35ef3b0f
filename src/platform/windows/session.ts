/**
 * The PowerShellRunner over one long-lived PowerShell process (node-powershell): started on first
 * use, given the prelude once (functions the scripts call, see hns.ts), fed one wrapped script at a
 * time (calls are queued, never interleaved), and replaced by a new process after it died or
 * stopped answering (the failed call rejects with POWERSHELL_SESSION_FAILED; the next one starts a
 * fresh session and runs the prelude again).
 *
 * The process is reached through a small {@link ShellSession} port so the queueing, prelude and
 * restart logic is unit-tested on Linux with a fake session; {@link nodePowerShellSession} is the
 * real one.
 */
import { randomBytes } from 'node:crypto';
import { PowerShell } from 'node-powershell';
import { errorMessage } from '../../common/util/errors.ts';
import { type Logger, nullLogger } from '../../common/util/log.ts';
import { parseEnvelope, PowerShellError, type PowerShellRunner, wrapScript } from './powershell.ts';

/** One PowerShell process that runs a one-line command and returns what it printed. */
export interface ShellSession {
  /** Runs `command`; rejects when the process died or the call timed out. */
  invoke(command: string): Promise<{ readonly stdout: string; readonly stderr: string }>;
  dispose(): Promise<void>;
}

export interface NodePowerShellOptions {
  /** powershell.exe (Windows PowerShell 5.1, the default on Windows) or pwsh. */
  readonly executable?: string;
  /** Kill the call (and the session) after this long (default 120 s; HNS calls can be slow). */
  readonly invocationTimeoutMs?: number;
}

/** A session over node-powershell: `powershell -NoLogo -NoProfile -NonInteractive -ExecutionPolicy Bypass -Command -`. */
export function nodePowerShellSession(opts: NodePowerShellOptions = {}): ShellSession {
  const shell = new PowerShell({
    executable: opts.executable ?? 'powershell',
    executableOptions: { '-NoProfile': true, '-NonInteractive': true, '-ExecutionPolicy': 'Bypass' },
    invocationTimeout: opts.invocationTimeoutMs ?? 120_000,
    throwOnInvocationError: false,
  });
  return {
    async invoke(command) {
      const r = await shell.invoke(command);
      return {
        stdout: r.raw !== '' ? r.raw : (r.stdout?.toString('utf8') ?? ''),
        stderr: r.stderr?.toString('utf8') ?? '',
      };
    },
    async dispose() {
      await shell.dispose();
    },
  };
}

export interface SessionRunnerOptions {
  /** Starts a new session (default: {@link nodePowerShellSession}). */
  readonly start?: () => ShellSession;
  /** A script run once in every new session, in the session scope (defines global functions). */
  readonly prelude?: string;
  readonly logger?: Logger;
}

/** The PowerShellRunner of the agent: one session, serialized calls, restart after a failure. */
export class SessionPowerShellRunner implements PowerShellRunner {
  private readonly start: () => ShellSession;
  private readonly prelude: string | undefined;
  private readonly logger: Logger;
  private readonly marker = `ANTREA-PS-${randomBytes(8).toString('hex')}`;
  private session: ShellSession | undefined;
  private tail: Promise<unknown> = Promise.resolve();
  /** Sessions started so far (observability and tests). */
  sessionsStarted = 0;

  constructor(opts: SessionRunnerOptions = {}) {
    this.start = opts.start ?? (() => nodePowerShellSession());
    this.prelude = opts.prelude;
    this.logger = (opts.logger ?? nullLogger).child({ component: 'powershell' });
  }

  invoke(script: string): Promise<unknown[]> {
    const run = this.tail.then(() => this.invokeNow(script));
    this.tail = run.catch(() => undefined);
    return run;
  }

  private async send(session: ShellSession, script: string, dotSource: boolean): Promise<unknown[]> {
    let out;
    try {
      out = await session.invoke(wrapScript(script, this.marker, dotSource));
    } catch (err) {
      await this.drop(session);
      throw new PowerShellError('POWERSHELL_SESSION_FAILED', `PowerShell session failed: ${errorMessage(err)}`, {
        script,
        cause: err,
      });
    }
    try {
      return parseEnvelope(out.stdout, this.marker, script);
    } catch (err) {
      if (err instanceof PowerShellError && err.code === 'POWERSHELL_BAD_OUTPUT') {
        // The session's state is unknown (a half-read answer would shift every later one).
        await this.drop(session);
        if (out.stderr !== '') this.logger.warn('PowerShell wrote to stderr', { stderr: out.stderr.slice(0, 1000) });
      }
      throw err;
    }
  }

  private async invokeNow(script: string): Promise<unknown[]> {
    let session = this.session;
    if (session === undefined) {
      try {
        session = this.start();
      } catch (err) {
        throw new PowerShellError('POWERSHELL_SESSION_FAILED', `cannot start PowerShell: ${errorMessage(err)}`, {
          cause: err,
        });
      }
      this.session = session;
      this.sessionsStarted++;
      this.logger.info('PowerShell session started', { sessions: this.sessionsStarted });
      if (this.prelude !== undefined) await this.send(session, this.prelude, true);
    }
    return this.send(session, script, false);
  }

  private async drop(session: ShellSession): Promise<void> {
    if (this.session === session) this.session = undefined;
    try {
      await session.dispose();
    } catch (err) {
      this.logger.debug('disposing a failed PowerShell session', { err: errorMessage(err) });
    }
  }

  async close(): Promise<void> {
    await this.tail;
    const s = this.session;
    if (s !== undefined) await this.drop(s);
  }
}
