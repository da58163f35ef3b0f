/**
 * The one structured logger. Every component takes a {@link Logger}; there is no console use in src/
 * outside the composition roots in src/cmd. Lines are JSON by default (one object per line), or a
 * compact text form for humans.
 */
import { type Clock, systemClock } from './clock.ts';
import { serializeError } from './errors.ts';

export const LOG_LEVELS = ['error', 'warn', 'info', 'debug', 'trace'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export type LogFields = Readonly<Record<string, unknown>>;

export interface Logger {
  error(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  debug(msg: string, fields?: LogFields): void;
  trace(msg: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every line; it shares its parent's level and sink. */
  child(fields: LogFields): Logger;
  /** Whether a line at `level` would be written (to skip building expensive fields). */
  enabled(level: LogLevel): boolean;
  /** Changes the level of this logger, its parent and all their children. */
  setLevel(level: LogLevel): void;
  readonly level: LogLevel;
}

export interface LogSink {
  write(line: string): void;
}

export interface LoggerOptions {
  readonly level?: LogLevel;
  readonly format?: 'json' | 'text';
  readonly sink?: LogSink;
  readonly clock?: Pick<Clock, 'now'>;
  readonly fields?: LogFields;
}

const rank: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3, trace: 4 };

/** Parses a level name, or a klog-style verbosity number (0-1 info, 2-3 debug, 4+ trace). */
export function parseLogLevel(value: string): LogLevel {
  const v = value.trim().toLowerCase();
  if ((LOG_LEVELS as readonly string[]).includes(v)) return v as LogLevel;
  if (/^\d+$/.test(v)) {
    const n = Number(v);
    return n <= 1 ? 'info' : n <= 3 ? 'debug' : 'trace';
  }
  throw new RangeError(`unknown log level "${value}" (expected one of ${LOG_LEVELS.join(', ')} or a number)`);
}

interface SharedState {
  level: LogLevel;
  readonly format: 'json' | 'text';
  readonly sink: LogSink;
  readonly clock: Pick<Clock, 'now'>;
}

class StructuredLogger implements Logger {
  private readonly state: SharedState;
  private readonly fields: LogFields;

  constructor(state: SharedState, fields: LogFields) {
    this.state = state;
    this.fields = fields;
  }

  get level(): LogLevel {
    return this.state.level;
  }
  setLevel(level: LogLevel): void {
    this.state.level = level;
  }
  enabled(level: LogLevel): boolean {
    return rank[level] <= rank[this.state.level];
  }
  child(fields: LogFields): Logger {
    return new StructuredLogger(this.state, { ...this.fields, ...fields });
  }
  error(msg: string, fields?: LogFields): void {
    this.log('error', msg, fields);
  }
  warn(msg: string, fields?: LogFields): void {
    this.log('warn', msg, fields);
  }
  info(msg: string, fields?: LogFields): void {
    this.log('info', msg, fields);
  }
  debug(msg: string, fields?: LogFields): void {
    this.log('debug', msg, fields);
  }
  trace(msg: string, fields?: LogFields): void {
    this.log('trace', msg, fields);
  }

  private log(level: LogLevel, msg: string, fields: LogFields | undefined): void {
    if (!this.enabled(level)) return;
    const ts = new Date(this.state.clock.now()).toISOString();
    const all: Record<string, unknown> = { ...this.fields, ...fields };
    for (const [k, v] of Object.entries(all)) if (v instanceof Error) all[k] = serializeError(v);
    let line: string;
    if (this.state.format === 'json') {
      line = safeStringify({ ts, level, msg, ...all });
    } else {
      const kv = Object.entries(all)
        .map(([k, v]) => `${k}=${typeof v === 'string' && !/\s/.test(v) ? v : safeStringify(v)}`)
        .join(' ');
      line = `${ts} ${level.toUpperCase().padEnd(5)} ${msg}${kv === '' ? '' : ' ' + kv}`;
    }
    this.state.sink.write(line + '\n');
  }
}

function safeStringify(v: unknown): string {
  try {
    if (v === undefined) return 'undefined';
    return JSON.stringify(v, (_k, val: unknown) => (typeof val === 'bigint' ? val.toString() : val));
  } catch {
    return '"[unserializable]"';
  }
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const state: SharedState = {
    level: opts.level ?? 'info',
    format: opts.format ?? 'json',
    sink: opts.sink ?? { write: (line) => process.stderr.write(line) },
    clock: opts.clock ?? systemClock,
  };
  return new StructuredLogger(state, opts.fields ?? {});
}

/** A logger that drops everything (for tests and for libraries given no logger). */
export const nullLogger: Logger = createLogger({ level: 'error', sink: { write: () => undefined } });

/** A logger that keeps lines in memory (for tests that assert on logs). */
export function memoryLogger(level: LogLevel = 'trace'): Logger & { readonly lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({
    level,
    sink: { write: (line) => lines.push(JSON.parse(line) as Record<string, unknown>) },
  });
  return Object.assign(logger, { lines });
}
