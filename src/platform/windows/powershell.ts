/**
 * The PowerShell port of the Windows strategy. Every host change on Windows (HNS, NetTCPIP, NetNat,
 * firewall, Hyper-V switch) is a PowerShell script sent through a {@link PowerShellRunner}; the
 * scripts are built by the modules of this directory with every interpolated value quoted by
 * {@link psQuote}, so the unit tests compare them as golden text and answer them with captured
 * cmdlet output.
 *
 * Protocol of one call (Antrea runs `powershell.exe -Command` per call with
 * `$ErrorActionPreference="Stop"; try {...} catch {...}`; we keep one long-lived session instead):
 * {@link wrapScript} turns the script into ONE line that
 * - sets `$ErrorActionPreference='Stop'` (every error terminates the script) and silences the
 *   progress, warning and information streams (they would otherwise reach stdout),
 * - runs the script as a script block decoded from Base64 (so quotes, newlines and here-strings in
 *   the script cannot break the line protocol of the session's stdin),
 * - collects the pipeline output into an array, and
 * - prints one line `<marker>{"ok":true,"value":[...]}` or `<marker>{"ok":false,"error":{...}}`
 *   written by `ConvertTo-Json -Depth 10 -Compress`.
 * {@link parseEnvelope} reads that line back: the value, or a {@link PowerShellError} carrying the
 * exception type, error category, FullyQualifiedErrorId and HResult.
 */
import { AntreaError, ValidationError } from '../../common/util/errors.ts';

export type PowerShellErrorCode =
  /** The script ran and threw (a cmdlet error, a failed HNS call, a `throw`). */
  | 'POWERSHELL_COMMAND_FAILED'
  /** The session could not start, died, or timed out; the next call starts a new one. */
  | 'POWERSHELL_SESSION_FAILED'
  /** The session answered something that is not the expected JSON envelope. */
  | 'POWERSHELL_BAD_OUTPUT';

/** What PowerShell said about a failure (from the ErrorRecord). */
export interface PowerShellErrorInfo {
  readonly message: string;
  /** The .NET exception type, e.g. Microsoft.Management.Infrastructure.CimException. */
  readonly exceptionType: string;
  /** The ErrorCategory name, e.g. ObjectNotFound, InvalidArgument, ResourceExists. */
  readonly category: string;
  /** FullyQualifiedErrorId, e.g. "Windows System Error 87,New-NetRoute". */
  readonly errorId: string;
  readonly hresult: number;
  /** The command that failed (cmdlet or function name), when known. */
  readonly command: string;
}

export class PowerShellError extends AntreaError<PowerShellErrorCode> {
  /** Present for POWERSHELL_COMMAND_FAILED. */
  readonly info: PowerShellErrorInfo | undefined;

  constructor(
    code: PowerShellErrorCode,
    message: string,
    opts: { info?: PowerShellErrorInfo; script?: string; cause?: unknown } = {},
  ) {
    super(code, message, {
      ...(opts.cause === undefined ? {} : { cause: opts.cause }),
      details: {
        ...(opts.info === undefined ? {} : { ...opts.info }),
        ...(opts.script === undefined ? {} : { script: opts.script }),
      },
    });
    this.info = opts.info;
  }

  /** Whether PowerShell classified the failure as "not found" (ErrorCategory ObjectNotFound). */
  get notFound(): boolean {
    return this.info?.category === 'ObjectNotFound';
  }

  /** Whether the failure says the object already exists (ErrorCategory ResourceExists). */
  get alreadyExists(): boolean {
    return this.info?.category === 'ResourceExists';
  }
}

/**
 * Runs PowerShell scripts and returns their pipeline output as parsed JSON, one array element per
 * output object (an empty array when the script outputs nothing). Calls are serialized: one script
 * runs at a time, in call order. A script that throws rejects with PowerShellError
 * POWERSHELL_COMMAND_FAILED; a dead session with POWERSHELL_SESSION_FAILED.
 */
export interface PowerShellRunner {
  invoke(script: string): Promise<unknown[]>;
  /** Ends the session. Idempotent; a later invoke starts a new session. */
  close(): Promise<void>;
}

/** Characters PowerShell accepts as a single quote: ' and the typographic ‘ ’ ‚ ‛. */
const SINGLE_QUOTES = /['\u2018\u2019\u201a\u201b]/g;

/**
 * A PowerShell single-quoted string literal holding exactly `value`: inside single quotes nothing
 * is expanded ($, `, ", newlines are literal) and a quote character is escaped by doubling it.
 * PowerShell also treats the typographic quotes U+2018..U+201B as single quotes, so they are doubled
 * too. NUL cannot be passed safely and is rejected with a ValidationError naming `field`.
 */
export function psQuote(value: string, field = 'value'): string {
  if (typeof value !== 'string') throw new ValidationError(field, `expected a string, got ${typeof value}`);
  if (value.includes('\0')) throw new ValidationError(field, 'must not contain NUL characters');
  return `'${value.replace(SINGLE_QUOTES, (q) => q + q)}'`;
}

/** A PowerShell array literal of quoted strings: @('a','b'). */
export function psArray(values: readonly string[], field = 'values'): string {
  return `@(${values.map((v, i) => psQuote(v, `${field}[${i}]`)).join(',')})`;
}

/** An integer literal, checked to be an integer in [min, max]. */
export function psInt(value: number, field: string, min = 0, max = 2 ** 31 - 1): string {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ValidationError(field, `expected an integer in [${min}, ${max}], got ${String(value)}`);
  }
  return String(value);
}

/** $True / $False. */
export function psBool(value: boolean): string {
  return value ? '$True' : '$False';
}

/**
 * The one-line command that runs `script` in the session and prints the JSON envelope after
 * `marker`. `dotSource` runs it in the session scope (for the prelude that defines functions).
 */
export function wrapScript(script: string, marker: string, dotSource = false): string {
  if (!/^[A-Za-z0-9_-]{8,64}$/.test(marker)) throw new ValidationError('marker', 'must be 8-64 [A-Za-z0-9_-]');
  const b64 = Buffer.from(script, 'utf8').toString('base64');
  const block = `([scriptblock]::Create([Text.Encoding]::UTF8.GetString([Convert]::FromBase64String('${b64}'))))`;
  return [
    "$ErrorActionPreference='Stop'",
    "$ProgressPreference='SilentlyContinue'",
    "$WarningPreference='SilentlyContinue'",
    "$InformationPreference='SilentlyContinue'",
    `try{$__antrea_r=@(${dotSource ? '.' : '&'} ${block});$__antrea_o=@{ok=$true;value=$__antrea_r}}` +
      'catch{$__antrea_e=$_;$__antrea_o=@{ok=$false;error=@{' +
      'message=[string]$__antrea_e.Exception.Message;' +
      'exceptionType=$__antrea_e.Exception.GetType().FullName;' +
      'category=[string]$__antrea_e.CategoryInfo.Category;' +
      'errorId=[string]$__antrea_e.FullyQualifiedErrorId;' +
      'hresult=[int]$__antrea_e.Exception.HResult;' +
      'command=[string]$__antrea_e.InvocationInfo.MyCommand}}}',
    `[Console]::Out.WriteLine('${marker}'+(ConvertTo-Json -InputObject $__antrea_o -Depth 10 -Compress))`,
  ].join(';');
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : v === undefined || v === null ? '' : JSON.stringify(v);
}

/**
 * Reads the envelope line from the session's output (other lines, e.g. from a native command
 * writing to the console, are ignored; Windows line endings are fine). Returns the output objects
 * or throws PowerShellError (COMMAND_FAILED with the error record, BAD_OUTPUT when no envelope).
 */
export function parseEnvelope(output: string, marker: string, script: string): unknown[] {
  const line = output
    .split(/\r?\n/)
    .map((l) => l.trim())
    .find((l) => l.startsWith(marker));
  if (line === undefined) {
    throw new PowerShellError('POWERSHELL_BAD_OUTPUT', `PowerShell printed no result: ${output.slice(0, 500)}`, {
      script,
    });
  }
  let env: unknown;
  try {
    env = JSON.parse(line.slice(marker.length));
  } catch (err) {
    throw new PowerShellError('POWERSHELL_BAD_OUTPUT', `PowerShell printed invalid JSON: ${line.slice(0, 500)}`, {
      script,
      cause: err,
    });
  }
  if (typeof env !== 'object' || env === null || !('ok' in env)) {
    throw new PowerShellError('POWERSHELL_BAD_OUTPUT', `unexpected PowerShell envelope: ${line.slice(0, 500)}`, {
      script,
    });
  }
  const e = env as { ok: unknown; value?: unknown; error?: Record<string, unknown> };
  if (e.ok === true) return asList(e.value);
  const r = e.error ?? {};
  const info: PowerShellErrorInfo = {
    message: str(r['message']),
    exceptionType: str(r['exceptionType']),
    category: str(r['category']),
    errorId: str(r['errorId']),
    hresult: typeof r['hresult'] === 'number' ? r['hresult'] : 0,
    command: str(r['command']),
  };
  throw new PowerShellError(
    'POWERSHELL_COMMAND_FAILED',
    `${info.command === '' ? 'PowerShell' : info.command}: ${info.message}`,
    {
      info,
      script,
    },
  );
}

/**
 * ConvertTo-Json prints one object as an object and several as an array (and nothing as null):
 * this returns a list in every case.
 */
export function asList(v: unknown): unknown[] {
  if (v === undefined || v === null || v === '') return [];
  return Array.isArray(v) ? (v as unknown[]) : [v];
}
