/**
 * Golden files: expected text kept beside the tests (ovs-ofctl flows, command lines, PowerShell
 * transcripts, JSON). `UPDATE_GOLDEN=1` rewrites them from the current output, to be reviewed in the
 * diff; a missing file fails the test rather than passing silently.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Test } from 'tap';

/**
 * Reads the golden `file` (after rewriting it from `text` when UPDATE_GOLDEN=1), or records a
 * failure and returns undefined when it does not exist.
 */
export function readGolden(t: Test, file: string, text: string): string | undefined {
  if (process.env['UPDATE_GOLDEN'] === '1') {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, text);
  }
  if (!existsSync(file)) {
    t.fail(`missing golden ${file} (run with UPDATE_GOLDEN=1 and review it)`);
    return undefined;
  }
  return readFileSync(file, 'utf8');
}

/** Asserts that `text` equals the golden `file`, byte for byte. */
export function matchesGolden(t: Test, file: string, text: string): void {
  const want = readGolden(t, file, text);
  if (want !== undefined) t.equal(text, want, `matches ${basename(file)}`);
}
