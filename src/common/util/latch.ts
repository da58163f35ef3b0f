/** A one-shot latch: closed until `open()`, then open for good. Waiters honour an abort signal. */
import { abortReason } from './clock.ts';

export class Latch {
  private isOpen = false;
  private waiters: (() => void)[] = [];

  get opened(): boolean {
    return this.isOpen;
  }

  /** Opens the latch and releases every waiter. Idempotent. */
  open(): void {
    if (this.isOpen) return;
    this.isOpen = true;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** Resolves once open (at once if it is); rejects with the signal's reason if `signal` aborts first. */
  wait(signal?: AbortSignal): Promise<void> {
    if (this.isOpen) return Promise.resolve();
    if (signal?.aborted === true) return Promise.reject(abortReason(signal));
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        this.waiters = this.waiters.filter((w) => w !== done);
        reject(abortReason(signal));
      };
      const done = (): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(done);
    });
  }
}
