import { type Clock, type TimerHandle, sleepWith } from '../../src/common/util/clock.ts';

/** A clock that only moves when told to. Timers fire in due order during {@link FakeClock.advance}. */
export class FakeClock implements Clock {
  private nowMs: number;
  private mono = 0;
  private seq = 0;
  private timers: { due: number; seq: number; fn: () => void }[] = [];

  constructor(startMs = Date.UTC(2026, 0, 1)) {
    this.nowMs = startMs;
  }

  now(): number {
    return this.nowMs;
  }
  monotonic(): number {
    return this.mono;
  }
  setTimer(ms: number, fn: () => void): TimerHandle {
    const entry = { due: this.mono + Math.max(0, ms), seq: this.seq++, fn };
    this.timers.push(entry);
    return { cancel: () => void (this.timers = this.timers.filter((t) => t !== entry)) };
  }
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return sleepWith(this, ms, signal);
  }
  /** Number of pending timers. */
  get pending(): number {
    return this.timers.length;
  }
  /** Moves time forward by `ms`, firing due timers in order and letting promise callbacks run in between. */
  async advance(ms: number): Promise<void> {
    const target = this.mono + ms;
    for (;;) {
      await flushMicrotasks();
      this.timers.sort((a, b) => a.due - b.due || a.seq - b.seq);
      const next = this.timers[0];
      if (next === undefined || next.due > target) break;
      this.timers.shift();
      this.nowMs += next.due - this.mono;
      this.mono = next.due;
      next.fn();
    }
    this.nowMs += target - this.mono;
    this.mono = target;
    await flushMicrotasks();
  }
}

export async function flushMicrotasks(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}
