import { type Clock, systemClock } from './clock.ts';

export interface BackoffOptions {
  /** First delay in ms. */
  readonly initialMs: number;
  /** Upper bound for any delay in ms. */
  readonly maxMs: number;
  /** Growth factor per attempt (default 2). */
  readonly factor?: number;
  /** Fraction of random jitter added to each delay, 0..1 (default 0.1). */
  readonly jitter?: number;
  /** Random source in [0,1) (injected for tests). */
  readonly random?: () => number;
}

/** Exponential backoff with jitter. Not thread-safe by design: one Backoff per retry loop. */
export class Backoff {
  private attempt = 0;
  private readonly opts: Required<BackoffOptions>;

  constructor(opts: BackoffOptions) {
    if (!(opts.initialMs > 0)) throw new RangeError('initialMs must be > 0');
    if (opts.maxMs < opts.initialMs) throw new RangeError('maxMs must be >= initialMs');
    this.opts = { factor: 2, jitter: 0.1, random: Math.random, ...opts };
  }

  /** The delay before the next attempt; each call grows the next delay. */
  next(): number {
    const { initialMs, maxMs, factor, jitter, random } = this.opts;
    const base = Math.min(maxMs, initialMs * factor ** this.attempt);
    this.attempt++;
    return Math.min(maxMs, base * (1 + jitter * random()));
  }

  /** Starts over from the initial delay (call after a success). */
  reset(): void {
    this.attempt = 0;
  }

  get attempts(): number {
    return this.attempt;
  }
}

export interface RetryOptions {
  readonly backoff: Backoff;
  readonly clock?: Clock;
  readonly signal?: AbortSignal;
  /** Give up after this many attempts (default: unlimited). */
  readonly maxAttempts?: number;
  /** Give up after this long, in ms (default: unlimited). */
  readonly deadlineMs?: number;
  /** Return false to stop retrying and rethrow this error (default: always retry). */
  readonly shouldRetry?: (err: unknown) => boolean;
  /** Called before each wait. */
  readonly onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
}

/** Calls `fn` until it succeeds, waiting between attempts. Rethrows the last error when giving up. */
export async function retry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  const clock = opts.clock ?? systemClock;
  const start = clock.monotonic();
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (opts.signal?.aborted === true) throw err;
      if (opts.shouldRetry !== undefined && !opts.shouldRetry(err)) throw err;
      if (opts.maxAttempts !== undefined && attempt >= opts.maxAttempts) throw err;
      const delay = opts.backoff.next();
      if (opts.deadlineMs !== undefined && clock.monotonic() - start + delay > opts.deadlineMs) throw err;
      opts.onRetry?.(err, attempt, delay);
      await clock.sleep(delay, opts.signal);
    }
  }
}
