/**
 * `npm run bench -- <name> [args...]` runs test/bench/<name>.bench.ts. Each benchmark module exports
 * `run(args: string[]): Promise<void>` and prints one JSON object per line per measured case, with a
 * baseline measured in the same run and a ratio (>1 means better than the baseline); see
 * test/bench/lib.ts.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const [name, ...args] = process.argv.slice(2);
const available = readdirSync(import.meta.dirname)
  .filter((f) => f.endsWith('.bench.ts'))
  .map((f) => f.replace(/\.bench\.ts$/, ''))
  .sort();
if (name === undefined || !existsSync(join(import.meta.dirname, `${name}.bench.ts`))) {
  console.error(`usage: npm run bench -- <name> [args...]\nbenchmarks: ${available.join(', ') || '(none yet)'}`);
  process.exit(2);
}
const mod = (await import(`./${name}.bench.ts`)) as { run: (args: string[]) => Promise<void> };
await mod.run(args);
