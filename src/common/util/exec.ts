/**
 * The one place that spawns processes. Everything else takes a {@link CommandRunner} (short commands)
 * or a {@link ProcessLauncher} (long-running daemons), so tests can record command lines (golden
 * text) and the platform layers can wrap commands (for example to run inside a network namespace).
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { AntreaError } from './errors.ts';
import { abortReason } from './clock.ts';

export type ExecErrorCode = 'EXEC_FAILED' | 'EXEC_NOT_FOUND' | 'EXEC_TIMEOUT' | 'EXEC_ABORTED';

export class ExecError extends AntreaError<ExecErrorCode> {
  readonly command: string;
  readonly exitCode: number | null;
  readonly stderr: string;
  readonly stdout: string;

  constructor(
    code: ExecErrorCode,
    command: string,
    message: string,
    extra: { exitCode?: number | null; stderr?: string; stdout?: string; cause?: unknown } = {},
  ) {
    super(code, message, {
      cause: extra.cause,
      details: { command, exitCode: extra.exitCode ?? null, stderr: truncate(extra.stderr ?? '', 2000) },
    });
    this.command = command;
    this.exitCode = extra.exitCode ?? null;
    this.stderr = extra.stderr ?? '';
    this.stdout = extra.stdout ?? '';
  }
}

export interface ExecOptions {
  /** Written to the command's stdin, which is then closed. */
  readonly input?: string | Uint8Array;
  /** Kill the command (SIGKILL) after this long; the call then fails with EXEC_TIMEOUT. */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
  /** Environment variables; replaces the inherited environment when `replaceEnv` is true. */
  readonly env?: Readonly<Record<string, string>>;
  readonly replaceEnv?: boolean;
  readonly cwd?: string;
  /** Exit codes other than 0 that are not errors (the result carries the code). */
  readonly okExitCodes?: readonly number[];
}

export interface ExecResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number;
}

export interface CommandRunner {
  /**
   * Runs `cmd` with `args` (no shell) and resolves with its output. Rejects with an ExecError when the
   * command cannot be started (EXEC_NOT_FOUND), exits with a code not in `okExitCodes`
   * (EXEC_FAILED, carrying stderr), times out (EXEC_TIMEOUT) or is aborted (EXEC_ABORTED).
   */
  run(cmd: string, args: readonly string[], opts?: ExecOptions): Promise<ExecResult>;
}

/** Renders a command line for logs, errors and golden files (arguments quoted only when needed). */
export function formatCommand(cmd: string, args: readonly string[]): string {
  return [cmd, ...args].map(quoteArg).join(' ');
}

function quoteArg(a: string): string {
  return a === '' || /[^\w@%+=:,./-]/.test(a) ? `'${a.replaceAll("'", `'\\''`)}'` : a;
}

function truncate(s: string, n: number): string {
  return s.length <= n ? s : s.slice(0, n) + `... (${s.length - n} more bytes)`;
}

function buildEnv(opts: { env?: Readonly<Record<string, string>>; replaceEnv?: boolean }): NodeJS.ProcessEnv {
  return opts.replaceEnv === true ? { ...opts.env } : { ...process.env, ...opts.env };
}

/** A runner that spawns real processes. */
export function createCommandRunner(): CommandRunner {
  return {
    run(cmd, args, opts = {}) {
      const command = formatCommand(cmd, args);
      return new Promise<ExecResult>((resolve, reject) => {
        if (opts.signal?.aborted === true) {
          reject(new ExecError('EXEC_ABORTED', command, `${command}: aborted`, { cause: abortReason(opts.signal) }));
          return;
        }
        let child: ChildProcess;
        try {
          child = spawn(cmd, args, {
            env: buildEnv(opts),
            cwd: opts.cwd,
            stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
          });
        } catch (err) {
          reject(new ExecError('EXEC_NOT_FOUND', command, `${command}: ${String(err)}`, { cause: err }));
          return;
        }
        const out: Buffer[] = [];
        const errOut: Buffer[] = [];
        child.stdout?.on('data', (b: Buffer) => out.push(b));
        child.stderr?.on('data', (b: Buffer) => errOut.push(b));
        let timedOut = false;
        let aborted = false;
        const timer =
          opts.timeoutMs === undefined
            ? undefined
            : setTimeout(() => {
                timedOut = true;
                child.kill('SIGKILL');
              }, opts.timeoutMs);
        const onAbort = (): void => {
          aborted = true;
          child.kill('SIGKILL');
        };
        opts.signal?.addEventListener('abort', onAbort, { once: true });
        const finish = (): void => {
          if (timer !== undefined) clearTimeout(timer);
          opts.signal?.removeEventListener('abort', onAbort);
        };
        child.on('error', (err: NodeJS.ErrnoException) => {
          finish();
          const code = err.code === 'ENOENT' ? 'EXEC_NOT_FOUND' : 'EXEC_FAILED';
          reject(new ExecError(code, command, `${command}: ${err.message}`, { cause: err }));
        });
        child.on('close', (exitCode, sig) => {
          finish();
          const stdout = Buffer.concat(out).toString('utf8');
          const stderr = Buffer.concat(errOut).toString('utf8');
          if (timedOut) {
            reject(
              new ExecError('EXEC_TIMEOUT', command, `${command}: timed out after ${opts.timeoutMs}ms`, {
                stderr,
                stdout,
              }),
            );
          } else if (aborted) {
            reject(new ExecError('EXEC_ABORTED', command, `${command}: aborted`, { stderr, stdout }));
          } else if (exitCode === 0 || (exitCode !== null && opts.okExitCodes?.includes(exitCode) === true)) {
            resolve({ stdout, stderr, exitCode });
          } else {
            const why = exitCode === null ? `killed by ${sig ?? 'signal'}` : `exit status ${exitCode}`;
            const detail = stderr.trim() === '' ? '' : `: ${truncate(stderr.trim(), 500)}`;
            reject(new ExecError('EXEC_FAILED', command, `${command}: ${why}${detail}`, { exitCode, stderr, stdout }));
          }
        });
        if (opts.input !== undefined && child.stdin !== null) {
          child.stdin.on('error', () => undefined); // EPIPE when the command exits early; its exit status tells.
          child.stdin.end(opts.input);
        }
      });
    },
  };
}

export interface ExitInfo {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface LaunchOptions {
  readonly env?: Readonly<Record<string, string>>;
  readonly replaceEnv?: boolean;
  readonly cwd?: string;
  /** Append stdout and stderr to this file; otherwise they are discarded. */
  readonly logFile?: string;
  /** Run in a new process group so {@link ProcessHandle.stop} also reaches its children. */
  readonly newProcessGroup?: boolean;
  /** Share this process's stdin, stdout and stderr (an interactive command); `logFile` is then ignored. */
  readonly inheritStdio?: boolean;
}

export interface ProcessHandle {
  readonly pid: number;
  readonly command: string;
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<ExitInfo>;
  /** Whether the process is still running. */
  running(): boolean;
  /**
   * Sends SIGTERM, then SIGKILL after `graceMs` (default 5000), and resolves once the process exited.
   * Idempotent; resolves at once if it already exited.
   */
  stop(graceMs?: number): Promise<ExitInfo>;
}

export interface ProcessLauncher {
  /** Starts a long-running process. Rejects with EXEC_NOT_FOUND if it cannot be started. */
  launch(cmd: string, args: readonly string[], opts?: LaunchOptions): Promise<ProcessHandle>;
}

export function createProcessLauncher(): ProcessLauncher {
  return {
    async launch(cmd, args, opts = {}) {
      const command = formatCommand(cmd, args);
      const fd = opts.logFile === undefined || opts.inheritStdio === true ? undefined : openSync(opts.logFile, 'a');
      let child: ChildProcess;
      try {
        child = spawn(cmd, args, {
          env: buildEnv(opts),
          cwd: opts.cwd,
          stdio: opts.inheritStdio === true ? 'inherit' : ['ignore', fd ?? 'ignore', fd ?? 'ignore'],
          detached: opts.newProcessGroup === true,
        });
      } finally {
        if (fd !== undefined) closeSync(fd);
      }
      let exitInfo: ExitInfo | undefined;
      const exited = new Promise<ExitInfo>((resolve) => {
        child.on('exit', (code, signal) => {
          exitInfo = { code, signal };
          resolve(exitInfo);
        });
      });
      const pid = await new Promise<number>((resolve, reject) => {
        child.once('spawn', () => resolve(child.pid ?? -1));
        child.once('error', (err: NodeJS.ErrnoException) => {
          const code = err.code === 'ENOENT' ? 'EXEC_NOT_FOUND' : 'EXEC_FAILED';
          reject(new ExecError(code, command, `${command}: ${err.message}`, { cause: err }));
        });
      });
      const group = opts.newProcessGroup === true;
      const signalIt = (sig: NodeJS.Signals): void => {
        try {
          if (group) process.kill(-pid, sig);
          else child.kill(sig);
        } catch {
          // already gone
        }
      };
      return {
        pid,
        command,
        exited,
        running: () => exitInfo === undefined,
        async stop(graceMs = 5000) {
          if (exitInfo !== undefined) return exitInfo;
          signalIt('SIGTERM');
          const t = setTimeout(() => signalIt('SIGKILL'), graceMs);
          const info = await exited;
          clearTimeout(t);
          if (group) signalIt('SIGKILL'); // stragglers in the group
          return info;
        },
      };
    },
  };
}

/** A request to the exec helper (exec-helper.ts). */
export interface HelperRequest {
  readonly id: number;
  readonly cmd?: string;
  readonly args?: readonly string[];
  readonly opts?: Omit<ExecOptions, 'signal'>;
  /** Abort the request `id`. */
  readonly abort?: true;
}

/** The exec helper's answer. */
export interface HelperReply {
  readonly id: number;
  readonly result?: ExecResult;
  readonly error?: {
    readonly code: ExecErrorCode;
    readonly command: string;
    readonly message: string;
    readonly exitCode: number | null;
    readonly stderr: string;
    readonly stdout: string;
  };
}

/**
 * A CommandRunner that starts commands from a small helper process (exec-helper.ts) instead of
 * this one. Spawning from a process costs time in proportion to its memory (fork copies the page
 * tables): from a ~120 MB agent a short command takes ~20 ms to start, from the ~40 MB helper
 * ~4 ms. Semantics are those of {@link createCommandRunner}. The helper starts on first use and
 * again if it dies (calls in flight then fail with EXEC_FAILED); {@link close} stops it.
 */
export function createHelperRunner(): CommandRunner & { close(): void } {
  let child: ChildProcess | undefined;
  let seq = 0;
  const pending = new Map<
    number,
    { resolve: (r: ExecResult) => void; reject: (e: ExecError) => void; command: string }
  >();
  const refresh = (c: ChildProcess): void => {
    // Keep the process alive only while commands are in flight.
    if (pending.size > 0) {
      c.ref();
      c.channel?.ref();
    } else {
      c.unref();
      c.channel?.unref();
    }
  };
  const start = (): ChildProcess => {
    const c = fork(fileURLToPath(new URL('./exec-helper.ts', import.meta.url)), [], {
      serialization: 'advanced',
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    c.on('message', (m: HelperReply) => {
      const p = pending.get(m.id);
      if (p === undefined) return;
      pending.delete(m.id);
      if (m.result !== undefined) p.resolve(m.result);
      else {
        const e = m.error;
        p.reject(
          new ExecError(e?.code ?? 'EXEC_FAILED', e?.command ?? p.command, e?.message ?? `${p.command}: failed`, {
            exitCode: e?.exitCode ?? null,
            stderr: e?.stderr ?? '',
            stdout: e?.stdout ?? '',
          }),
        );
      }
      refresh(c);
    });
    const fail = (): void => {
      if (child === c) child = undefined;
      for (const [id, p] of pending) {
        pending.delete(id);
        p.reject(new ExecError('EXEC_FAILED', p.command, `${p.command}: the exec helper exited`));
      }
    };
    c.on('exit', fail);
    c.on('error', fail);
    return c;
  };
  return {
    run(cmd, args, opts = {}) {
      const command = formatCommand(cmd, args);
      if (opts.signal?.aborted === true) {
        return Promise.reject(
          new ExecError('EXEC_ABORTED', command, `${command}: aborted`, { cause: abortReason(opts.signal) }),
        );
      }
      child ??= start();
      const c = child;
      const id = ++seq;
      const { signal, ...rest } = opts;
      return new Promise<ExecResult>((resolve, reject) => {
        const onAbort = (): void => {
          if (c.connected) c.send({ id, abort: true } satisfies HelperRequest);
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        pending.set(id, {
          resolve: (r) => {
            signal?.removeEventListener('abort', onAbort);
            resolve(r);
          },
          reject: (e) => {
            signal?.removeEventListener('abort', onAbort);
            reject(e);
          },
          command,
        });
        refresh(c);
        c.send({ id, cmd, args, opts: rest } satisfies HelperRequest);
      });
    },
    close() {
      const c = child;
      child = undefined;
      if (c?.connected === true) c.disconnect();
      c?.kill();
    },
  };
}
