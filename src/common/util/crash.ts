/**
 * Named crash points for fault-injection tests: the process kills itself with SIGKILL when it
 * reaches the point named in the environment variable ANTREA_CRASH_POINT, so a test can stop the
 * agent deterministically at each step of an operation (reliability.md §6.3, scenario S6).
 * Without the variable, a crash point costs one comparison.
 */
export const CRASH_POINT_ENV = 'ANTREA_CRASH_POINT';

export interface CrashPoints {
  /** Dies here if this point is armed. */
  hit(name: string): void;
}

export const noCrashPoints: CrashPoints = { hit: () => undefined };

/** Crash points armed by `env[ANTREA_CRASH_POINT]` (a name, or several separated by commas). */
export function crashPointsFromEnv(
  env: Readonly<Record<string, string | undefined>>,
  die: (name: string) => void = () => process.kill(process.pid, 'SIGKILL'),
): CrashPoints {
  const armed = new Set(
    (env[CRASH_POINT_ENV] ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== ''),
  );
  if (armed.size === 0) return noCrashPoints;
  return {
    hit(name) {
      if (armed.has(name)) die(name);
    },
  };
}
