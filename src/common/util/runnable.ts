/**
 * The contract of every long-running component: `run(signal)` starts it and resolves once it has
 * stopped after `signal` aborted (or rejects if it failed). It never leaves background work behind.
 */
export interface Runnable {
  run(signal: AbortSignal): Promise<void>;
}

/** Resolves when `signal` aborts (at once if it already has). */
export function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

/** Reads `signal.aborted` (a call, so the compiler does not narrow it across awaits). */
export function isAborted(signal: AbortSignal): boolean {
  return signal.aborted;
}
