/**
 * Time, injected. Components take a {@link Clock} instead of calling Date.now/setTimeout so tests can
 * drive time explicitly (see test/helpers/fake-clock.ts).
 */

export interface TimerHandle {
  /** Cancels the timer. Idempotent; a no-op after the timer fired. */
  cancel(): void;
}

export interface Clock {
  /** Wall-clock time in milliseconds since the epoch. */
  now(): number;
  /** Monotonic time in milliseconds, for measuring durations. */
  monotonic(): number;
  /** Calls `fn` once after `ms`. A pending timer keeps the process alive; cancel it when done. */
  setTimer(ms: number, fn: () => void): TimerHandle;
  /**
   * Resolves after `ms`. Rejects with the signal's reason if `signal` aborts first (immediately if it
   * is already aborted).
   */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  setTimer(ms, fn) {
    const t = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(t) };
  },
  sleep(ms, signal) {
    return sleepWith(this, ms, signal);
  },
};

/** Implements `sleep` on top of `setTimer`, honouring an abort signal. */
export function sleepWith(clock: Pick<Clock, 'setTimer'>, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(abortReason(signal));
      return;
    }
    const onAbort = (): void => {
      timer.cancel();
      reject(abortReason(signal));
    };
    const timer = clock.setTimer(ms, () => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    });
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** The reason of an aborted signal, always as an Error. */
export function abortReason(signal: AbortSignal | undefined): Error {
  const r: unknown = signal?.reason;
  if (r instanceof Error) return r;
  const e = new Error(typeof r === 'string' ? r : 'aborted');
  e.name = 'AbortError';
  return e;
}

/** Formats a duration in ms for humans: 850ms, 2.5s, 3m5s. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)}s`;
  const m = Math.floor(ms / 60_000);
  return `${m}m${Math.round((ms - m * 60_000) / 1000)}s`;
}
