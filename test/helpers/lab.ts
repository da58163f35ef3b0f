/**
 * Helpers for the antrea-lab end-to-end tests: the CLI run as a child process (as a user runs it),
 * a lab per test file in its own short data directory that is torn down even when the test fails,
 * and the inventory of everything a lab may leave on the machine.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Test } from 'tap';
import type { ExecResult } from '../../src/common/util/exec.ts';
import { labNamespaces } from '../../src/lab/fabric.ts';
import { KubeClient } from '../../src/lab/kube-client.ts';
import { processCommandLine, processesInNetns, processesMentioning } from '../../src/lab/processes.ts';
import { LabPaths } from '../../src/lab/state.ts';
import { labPrefix } from '../../src/lab/topology.ts';
import { netns, runner } from './env.ts';
import { until } from './wait.ts';

export const ROOT = join(import.meta.dirname, '..', '..');
export const LAB_CLI = join(ROOT, 'src', 'cmd', 'antrea-lab.ts');

/** Runs `antrea-lab ARGS` to completion; never rejects on a non-zero exit (the result says). */
export function labCli(args: readonly string[], timeoutMs = 300_000): Promise<ExecResult> {
  return runner.run(process.execPath, [LAB_CLI, ...args], {
    timeoutMs,
    okExitCodes: [1, 2, 3, 130],
    env: { ANTREA_LAB_DATA_DIR: '' },
  });
}

/** A fresh short data directory path (not created). */
export function labDataDir(tag: string): string {
  return `/tmp/alab-${tag}-${randomBytes(3).toString('hex')}`;
}

export interface TestLab {
  readonly dataDir: string;
  readonly paths: LabPaths;
  readonly prefix: string;
  readonly upOutput: string;
  readonly client: KubeClient;
}

/** Brings a lab up with the CLI (`up ARGS`) and takes it down at teardown. */
export async function startLab(t: Test, tag: string, args: readonly string[] = []): Promise<TestLab> {
  const dataDir = labDataDir(tag);
  t.teardown(async () => {
    await labCli(['down', '--data-dir', dataDir]);
  });
  const r = await labCli(['up', '--data-dir', dataDir, ...args]);
  if (r.exitCode !== 0) throw new Error(`antrea-lab up failed (${r.exitCode}):\n${r.stdout}\n${r.stderr}`);
  const paths = new LabPaths(dataDir);
  const client = KubeClient.fromKubeconfig(paths.adminKubeconfig);
  t.teardown(() => client.close());
  return { dataDir, paths, prefix: labPrefix(dataDir), upOutput: r.stdout, client };
}

/** Mount points under /run/netns (or anywhere) that belong to the lab. */
export function labMounts(dataDir: string): string[] {
  const prefix = labPrefix(dataDir);
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.includes(`/${prefix}`) || l.includes(dataDir));
}

/** Everything of the lab still on the machine: namespaces, links, processes, mounts, files. */
export async function labInventory(dataDir: string): Promise<string[]> {
  const prefix = labPrefix(dataDir);
  const left: string[] = [];
  const names = labNamespaces(netns, prefix);
  left.push(...names.map((n) => `namespace ${n}`));
  const links = await runner.run('ip', ['-o', 'link', 'show']);
  for (const l of links.stdout.split('\n')) if (l.includes(prefix)) left.push(`link ${l.split(':')[1]?.trim() ?? l}`);
  const procs = new Set([...processesInNetns(names), ...processesMentioning(dataDir)]);
  for (const p of procs) {
    const cmd = processCommandLine(p) ?? '';
    if (!cmd.includes(' down ')) left.push(`process ${p} ${cmd}`);
  }
  left.push(...labMounts(dataDir).map((m) => `mount ${m}`));
  if (existsSync(dataDir)) left.push(`directory ${dataDir}`);
  return left;
}

/** The root namespace's routes (IPv4 and IPv6, all tables), one per line, sorted. */
export async function rootRoutes(): Promise<string[]> {
  const out: string[] = [];
  for (const fam of ['-4', '-6']) {
    const r = await runner.run('ip', [fam, 'route', 'show', 'table', 'all']);
    out.push(
      ...r.stdout
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l !== ''),
    );
  }
  return out.sort();
}

/** Address ranges the labs use (Pods, underlays, external, control); none may gain a root route but the control one. */
const LAB_RANGES = /(^|[\s/])(10\.10\.|203\.0\.113\.|192\.0\.2\.|198\.51\.100\.)/;

/**
 * The root namespace's routes that concern the lab with `prefix`: every route on one of its devices,
 * and every route towards a lab address range except those on another lab's devices (other labs
 * run concurrently in the test suite). Without `prefix`: only the latter.
 */
export async function labRoutes(prefix?: string): Promise<string[]> {
  return (await rootRoutes()).filter((r) => {
    if (prefix !== undefined && r.includes(` dev ${prefix}`)) return true;
    if (/ dev al[0-9a-f]{5}-/.test(r)) return false;
    return LAB_RANGES.test(r);
  });
}

/** Waits for `cond` to hold, polling. */

/** Waits (polling every 100 ms, up to 30 s by default) until `cond` holds; throws naming `what`. */
export const eventually = (what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> =>
  until(what, cond, timeoutMs, 100);
