/**
 * Polling waits for tests that watch real components (daemons, servers, the kernel) converge. Unit
 * tests on a FakeClock advance the clock instead.
 */
import type { Test } from 'tap';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Resolves once `cond` holds; throws `timed out waiting for <what>` after `timeoutMs`. */
export async function until(
  what: string,
  cond: () => boolean | Promise<boolean>,
  timeoutMs = 20_000,
  intervalMs = 50,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/** Like {@link until}, but records the outcome as one assertion named `what` instead of throwing. */
export async function eventually(
  t: Test,
  cond: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 15_000,
  intervalMs = 20,
): Promise<void> {
  try {
    await until(what, cond, timeoutMs, intervalMs);
    t.pass(what);
  } catch {
    t.fail(`timed out waiting for ${what}`);
  }
}
