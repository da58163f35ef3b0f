/**
 * Typed errors. Every error raised by antrea-ts code is an {@link AntreaError} (or a subclass) with a
 * stable machine-readable `code`; boundaries (CNI, HTTP, CLI) map codes to their own error spaces
 * exactly once.
 */

/** Extra, structured context attached to an error (field names, values, the failing request...). */
export type ErrorDetails = Readonly<Record<string, unknown>>;

export interface AntreaErrorOptions {
  readonly cause?: unknown;
  readonly details?: ErrorDetails;
}

export class AntreaError<C extends string = string> extends Error {
  readonly code: C;
  readonly details: ErrorDetails;

  constructor(code: C, message: string, options: AntreaErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.details = options.details ?? {};
  }

  /** A plain object for structured logs and JSON error bodies. */
  toJSON(): Record<string, unknown> {
    const out: Record<string, unknown> = { name: this.name, code: this.code, message: this.message };
    if (Object.keys(this.details).length > 0) out['details'] = this.details;
    if (this.cause !== undefined) out['cause'] = serializeError(this.cause);
    return out;
  }
}

/** Raised when a caller passes something invalid; `field` names the offending field or argument. */
export class ValidationError extends AntreaError<'INVALID_ARGUMENT'> {
  readonly field: string;

  constructor(field: string, message: string, options: AntreaErrorOptions = {}) {
    super('INVALID_ARGUMENT', `${field}: ${message}`, {
      ...options,
      details: { field, ...options.details },
    });
    this.field = field;
  }
}

/** True if `err` is an AntreaError, optionally with the given code. */
export function isAntreaError(err: unknown, code?: string): err is AntreaError {
  return err instanceof AntreaError && (code === undefined || err.code === code);
}

/** The message of any thrown value. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return typeof err === 'string' ? err : JSON.stringify(err);
}

/** A JSON-safe description of any thrown value, with its cause chain. */
export function serializeError(err: unknown, depth = 0): unknown {
  if (err instanceof AntreaError) return depth > 4 ? err.message : err.toJSON();
  if (err instanceof Error) {
    const out: Record<string, unknown> = { name: err.name, message: err.message };
    const code = (err as { code?: unknown }).code;
    if (code !== undefined) out['code'] = code;
    if (err.cause !== undefined && depth < 4) out['cause'] = serializeError(err.cause, depth + 1);
    return out;
  }
  return err;
}
