/**
 * In-process locks: a mutex per key (Antrea's containerAccessArbitrator: one CNI operation per
 * container at a time) and a readers-writer lock (CNI operations share it; start-up reconciliation
 * and GC take it alone).
 */

/** Runs functions one at a time per key, in arrival order; different keys run concurrently. */
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<void>>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tail = prev.then(() => mine);
    this.tails.set(key, tail);
    await prev;
    try {
      return await fn();
    } finally {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }

  /** Whether an operation for `key` is running or queued. */
  busy(key: string): boolean {
    return this.tails.has(key);
  }
}

/**
 * Shared/exclusive lock. Writers are not starved: once a writer waits, new readers queue behind it.
 */
export class RwLock {
  private readers = 0;
  private writer = false;
  private readonly queue: { exclusive: boolean; wake: () => void }[] = [];

  private grant(): void {
    while (this.queue.length > 0) {
      const next = this.queue[0];
      if (next === undefined) return;
      if (next.exclusive) {
        if (this.writer || this.readers > 0) return;
        this.queue.shift();
        this.writer = true;
        next.wake();
        return;
      }
      if (this.writer) return;
      this.queue.shift();
      this.readers++;
      next.wake();
    }
  }

  private acquire(exclusive: boolean): Promise<void> {
    return new Promise((wake) => {
      this.queue.push({ exclusive, wake });
      this.grant();
    });
  }

  async shared<T>(fn: () => Promise<T>): Promise<T> {
    await this.acquire(false);
    try {
      return await fn();
    } finally {
      this.readers--;
      this.grant();
    }
  }

  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    await this.acquire(true);
    try {
      return await fn();
    } finally {
      this.writer = false;
      this.grant();
    }
  }
}
