/** Helpers shared by benchmarks: JSON-line output, percentiles and timing. */

export interface BenchRecord {
  readonly bench: string;
  readonly case: string;
  readonly baseline?: Record<string, unknown>;
  /** How many times better (>1) or worse (<1) than the baseline. */
  readonly ratio?: number;
  readonly [figure: string]: unknown;
}

/** Prints one benchmark record as a JSON line on stdout. */
export function emit(record: BenchRecord): void {
  console.log(JSON.stringify(record));
}

/** The p-th percentile (0..100) of `values` (nearest-rank). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

/** Runs `fn` and returns its result with the elapsed milliseconds. */
export async function timed<T>(fn: () => Promise<T>): Promise<{ result: T; ms: number }> {
  const t0 = performance.now();
  const result = await fn();
  return { result, ms: performance.now() - t0 };
}

/** Rounds for display. */
export function round(n: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
